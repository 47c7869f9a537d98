//! The sleeping graph (`serve --wake-delay-ms`) and the request count
//! (`/_sandbox/`) that tests of clients rely on.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{Sandbox, TIMEOUT};

const ALICE: &[&str] = &[
    "--name",
    "Alice",
    "--email",
    "alice@example.com",
    "--org",
    "acme",
];

/// How long the sandbox under test takes to wake.
const WAKE_MS: &str = "1000";
/// Well inside the wake: a client that gives up this early gets nothing
/// (only ever asserted while the sandbox holds requests, so a slow machine
/// cannot make it fail).
const IMPATIENT: Duration = Duration::from_millis(200);

/// `GET /v1/me` from a client that waits only `IMPATIENT` for an answer:
/// whether any byte of one came.
fn answered_at_once(sb: &Sandbox, token: &str) -> bool {
    let mut stream = TcpStream::connect_timeout(&sb.addr, TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IMPATIENT)).expect("timeout");
    let req = format!(
        "GET /v1/me HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        sb.addr
    );
    stream.write_all(req.as_bytes()).expect("write");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(n) => n > 0,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("read: {e}"),
    }
}

fn count_of(sb: &Sandbox, route: &str) -> u64 {
    let r = sb.request("GET", "/_sandbox/requests", None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["requests"][route].as_u64().unwrap_or(0)
}

#[test]
fn a_sleeping_sandbox_holds_requests_until_it_wakes_and_counts_each() {
    let sb = Sandbox::start_with_args(&["--wake-delay-ms", WAKE_MS]);
    let token = sb.mint(ALICE);
    assert!(
        !answered_at_once(&sb, &token),
        "asleep from the start: the first request waits for the wake"
    );
    // The wake under way finishes; then it answers as usual.
    let r = sb.get("/v1/me", &token);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["org"], "acme");
    assert_eq!(sb.get("/v1/me", &token).status, 200, "awake now");
    assert_eq!(count_of(&sb, "GET /v1/me"), 3, "every request is counted");
    let r = sb.request("GET", "/_sandbox/requests", None);
    assert_eq!(
        r.json()["count"],
        3,
        "the controls count nothing: {}",
        r.text()
    );
}

#[test]
fn sleep_now_sends_it_back_to_sleep_with_another_delay() {
    let sb = Sandbox::start_with_args(&["--wake-delay-ms", "1", "--idle-secs", "600"]);
    let token = sb.mint(ALICE);
    assert_eq!(sb.get("/v1/me", &token).status, 200, "awake");
    let r = sb.request("POST", &format!("/_sandbox/sleep?wake_ms={WAKE_MS}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        serde_json::json!({ "asleep": true, "wake_ms": 1000 })
    );
    assert!(!answered_at_once(&sb, &token), "asleep again");
    let r = sb.request("POST", "/_sandbox/sleep?wake_ms=soon", None);
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn a_sandbox_started_awake_never_sleeps() {
    let sb = Sandbox::start();
    let token = sb.mint(ALICE);
    assert_eq!(sb.get("/v1/me", &token).status, 200);
    let r = sb.request("POST", "/_sandbox/sleep", None);
    assert_eq!(
        r.json(),
        serde_json::json!({ "asleep": false, "wake_ms": null })
    );
    assert_eq!(sb.get("/v1/me", &token).status, 200, "still awake");
    assert_eq!(count_of(&sb, "GET /v1/me"), 2);
}
