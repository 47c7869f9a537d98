//! The consent names the program that asks, as the OS tells it: the
//! process that registered the client and the one listening on the redirect
//! port, with a warning when they do not add up. The programs here are real
//! processes the test starts (a Python script), so the pids and executables
//! the companion finds can be checked against what the test knows.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use spor_companion::consent::requester::WarningKind;
use spor_companion::desktop;
use spor_companion::peer::{Listener, Program};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::support::{closed_port, Harness, Pkce};

/// Listens on a loopback port and, when given a URL, registers a client
/// there whose redirect URI is that port; prints the port, then the client
/// id, then waits for its stdin to close.
const ASSISTANT: &str = r#"
import json, socket, sys, urllib.request
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
port = s.getsockname()[1]
print(port, flush=True)
if len(sys.argv) > 1:
    body = json.dumps({"client_name": "Claude Desktop",
                       "redirect_uris": ["http://127.0.0.1:%d/callback" % port]}).encode()
    req = urllib.request.Request(sys.argv[1] + "/oauth/register", body,
                                 {"content-type": "application/json"})
    print(json.load(urllib.request.urlopen(req, timeout=10))["client_id"], flush=True)
sys.stdin.read()
"#;

/// A real process the test started, with what it printed.
struct Assistant {
    child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Assistant {
    async fn start(register_at: Option<&str>) -> Self {
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(ASSISTANT);
        if let Some(url) = register_at {
            cmd.arg(url);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, lines }
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(20), self.lines.next_line())
            .await
            .expect("the assistant answers in time")
            .expect("read")
            .expect("a line")
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// What the OS says the process runs (python3 is usually a link).
    fn exe(&self) -> String {
        std::fs::read_link(format!("/proc/{}/exe", self.pid()))
            .expect("exe link")
            .to_string_lossy()
            .into_owned()
    }
}

fn this_test() -> Program {
    let exe = std::env::current_exe().expect("exe");
    Program {
        pid: std::process::id(),
        exe: Some(exe.to_string_lossy().into_owned()),
        app: None,
    }
}

async fn pending_requester(
    h: &Harness,
    client_id: &str,
    redirect: &str,
) -> (String, spor_companion::consent::requester::Requester) {
    let id = h
        .authorize(&h.authorize_params(client_id, redirect, &Pkce::new()))
        .await;
    let pending = h.state.consent.pending(&id, h.now()).expect("pending");
    (id, pending.requester)
}

#[tokio::test]
async fn the_consent_names_the_registering_program_and_the_redirect_listener() {
    let h = Harness::start().await;
    let mut assistant = Assistant::start(Some(&h.base)).await;
    let port: u16 = assistant.line().await.parse().expect("port");
    let client_id = assistant.line().await;
    let redirect = format!("http://127.0.0.1:{port}/callback");

    let (id, who) = pending_requester(&h, &client_id, &redirect).await;
    let python = Program {
        pid: assistant.pid(),
        exe: Some(assistant.exe()),
        app: None,
    };
    assert_eq!(who.registered_by.as_ref(), Some(&python));
    assert_eq!(who.redirect_port, Some(port));
    assert_eq!(
        who.redirect_listener,
        Some(Listener::Program(python.clone()))
    );
    assert!(who.warnings.is_empty(), "{:?}", who.warnings);

    // The page, the window and the list all say it.
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let shown = format!("{} (pid {})", assistant.exe(), assistant.pid());
    assert!(
        page.text.contains(&shown),
        "page lacks {shown}: {}",
        page.text
    );
    assert!(!page.text.contains("data-warning"), "{}", page.text);
    let view = desktop::consent_view(&h.state, &id).await.expect("view");
    assert_eq!(view.requester.program, shown);
    assert_eq!(view.requester.listener, Some(format!("held by {shown}")));
    let listed = h.state.consent.list(h.now());
    assert_eq!(listed[0].requester.registered_by.as_ref(), Some(&python));
    h.stop().await;
}

#[tokio::test]
async fn a_redirect_port_nobody_listens_on_is_a_warning() {
    let h = Harness::start().await;
    let port = closed_port().await;
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client_id = h.register(&[&redirect]).await;

    let (id, who) = pending_requester(&h, &client_id, &redirect).await;
    assert_eq!(who.registered_by, Some(this_test()));
    assert_eq!(who.redirect_listener, Some(Listener::Nobody));
    let kinds: Vec<_> = who.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(kinds, [WarningKind::NobodyListens]);
    let page = h.get(&format!("/oauth/consent/{id}")).await;
    assert!(
        page.text.contains("data-warning=\"nobody_listens\""),
        "{}",
        page.text
    );
    assert!(page
        .text
        .contains(&format!("No program is listening on port {port}")));
    h.stop().await;
}

#[tokio::test]
async fn a_redirect_port_held_by_another_program_is_a_warning() {
    // The test registers, as "Claude Desktop" would be claimed, with the
    // redirect port of a program it does not own.
    let h = Harness::start().await;
    let mut holder = Assistant::start(None).await;
    let port: u16 = holder.line().await.parse().expect("port");
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client_id = h.register(&[&redirect]).await;

    let (id, who) = pending_requester(&h, &client_id, &redirect).await;
    assert_eq!(who.registered_by, Some(this_test()));
    let kinds: Vec<_> = who.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(kinds, [WarningKind::OtherProgramListens]);
    let message = &who.warnings[0].message;
    assert!(message.contains(&holder.exe()), "{message}");
    assert!(
        message.contains(&format!("pid {}", holder.pid())),
        "{message}"
    );
    let view = desktop::consent_view(&h.state, &id).await.expect("view");
    assert_eq!(view.requester.warnings, who.warnings);
    h.stop().await;
}

#[tokio::test]
async fn a_redirect_off_loopback_has_no_listener_to_check() {
    let h = Harness::start().await;
    let redirect = "https://assistant.example/callback";
    let client_id = h.register(&[redirect]).await;
    let (_, who) = pending_requester(&h, &client_id, redirect).await;
    assert_eq!(who.redirect_port, None);
    assert_eq!(who.redirect_listener, None);
    assert!(who.warnings.is_empty());
    h.stop().await;
}
