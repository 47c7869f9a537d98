//! The `mint` and `serve` command lines.

use std::process::{Command, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::support::{bin, mint, mint_output, wait_bounded, Sandbox};

#[test]
fn mint_prints_exactly_one_pat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = mint_output(
        dir.path(),
        &["--name", "A", "--email", "a@example.com", "--org", "acme"],
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let body = stdout
        .strip_prefix("spor_pat_")
        .and_then(|s| s.strip_suffix('\n'))
        .expect("spor_pat_… and a newline");
    let bytes = URL_SAFE_NO_PAD.decode(body).expect("base64url, no padding");
    assert_eq!(bytes.len(), 32);
    assert!(dir.path().join("sandbox.db").exists());

    let again = mint(
        dir.path(),
        &["--name", "A", "--email", "a@example.com", "--org", "acme"],
    );
    assert_ne!(again, stdout.trim_end());
}

#[test]
fn mint_rejects_bad_input_without_printing_a_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[&[&str]] = &[
        &["--org", "acme"],
        &["--name", "A", "--org", "acme"],
        &["--name", "A", "--email", "a@example.com"],
        &[
            "--name",
            "A",
            "--email",
            "a@example.com",
            "--org",
            "Bad Org",
        ],
        &["--name", "A", "--email", "not-an-email", "--org", "acme"],
        &["--name", " ", "--email", "a@example.com", "--org", "acme"],
        &[
            "--name",
            "A",
            "--email",
            "a@example.com",
            "--org",
            "acme",
            "--member-of",
            "-x",
        ],
        &["--unbound", "--name", "A", "--org", "acme"],
        &["--unbound", "--org", "acme", "--member-of", "globex"],
        &["--unbound", "--org", "acme", "--expires-in-days", "-1"],
    ];
    for args in cases {
        let out = mint_output(dir.path(), args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn serve_refuses_non_loopback_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    for listen in ["0.0.0.0:0", "192.0.2.1:0"] {
        let mut child = Command::new(bin())
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let status = wait_bounded(&mut child);
        let out = child.wait_with_output().expect("output");
        assert!(!status.success());
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("non-loopback"), "{stderr}");
    }
}

#[test]
fn serve_refuses_unknown_faults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("SPOR_SANDBOX_FAULTS", "org-choices-502,bogus")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_bounded(&mut child);
    let out = child.wait_with_output().expect("output");
    assert!(!status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown fault \"bogus\""));
}

#[test]
fn serve_shuts_down_cleanly_and_keeps_data() {
    let sb = Sandbox::start();
    let token = sb.mint(&["--name", "A", "--email", "a@example.com", "--org", "acme"]);
    let person = sb.get("/v1/me", &token).json()["person"].clone();
    let (status, dir) = sb.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");

    let sb = Sandbox::start_in(dir, &[]);
    let me = sb.get("/v1/me", &token).json();
    assert_eq!(me["person"], person);
}
