//! The control channel the CLI drives the daemon through: commands via
//! `control::execute`, and the real owner-only Unix socket.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use spor_companion::control::{self, Command, ControlError};
use tokio::sync::oneshot;

use crate::support::Harness;

#[tokio::test]
async fn grants_list_shows_each_connected_assistant() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let reply = control::execute(
        &h.state,
        Command::GrantsList {
            include_revoked: false,
        },
    )
    .await;
    assert!(reply.ok, "{reply:?}");
    let list = reply.data.as_array().expect("array");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], c.grant_id);
    assert_eq!(list[0]["client_id"], c.client_id);
    assert_eq!(list[0]["client_name"], crate::support::CLIENT_NAME);
    assert_eq!(list[0]["account_id"], c.account_id);
    assert_eq!(list[0]["org"], "acme");
    assert_eq!(list[0]["revoked_at"], serde_json::Value::Null);
    let text = reply.data.to_string();
    assert!(!text.contains("spor_"), "no secret in the list: {text}");
    h.stop().await;
}

#[tokio::test]
async fn grants_revoke_ends_that_assistants_tokens() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let other = h.connect_as(&c.account_id).await;
    let reply = control::execute(
        &h.state,
        Command::GrantsRevoke {
            id: c.grant_id.clone(),
        },
    )
    .await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.data, json!({ "id": c.grant_id, "revoked": true }));
    h.assert_token_refused(&c.tokens.access).await;
    h.refresh(&c.client_id, &c.tokens.refresh)
        .await
        .assert_oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        h.grant(&c.grant_id).await.revoke_reason.map(|r| r.as_str()),
        Some("revoked_by_user")
    );
    h.assert_token_works(&other.tokens.access).await;

    let live = control::execute(
        &h.state,
        Command::GrantsList {
            include_revoked: false,
        },
    )
    .await;
    assert_eq!(live.data.as_array().map(Vec::len), Some(1));
    assert_eq!(live.data[0]["id"], other.grant_id);
    let all = control::execute(
        &h.state,
        Command::GrantsList {
            include_revoked: true,
        },
    )
    .await;
    assert_eq!(all.data.as_array().map(Vec::len), Some(2));
    h.stop().await;
}

#[tokio::test]
async fn grants_revoke_of_an_unknown_or_revoked_grant_is_not_found() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let first = control::execute(
        &h.state,
        Command::GrantsRevoke {
            id: c.grant_id.clone(),
        },
    )
    .await;
    assert!(first.ok, "{first:?}");
    let again = control::execute(
        &h.state,
        Command::GrantsRevoke {
            id: c.grant_id.clone(),
        },
    )
    .await;
    assert!(!again.ok);
    assert_eq!(again.code.as_deref(), Some("not_found"));
    let unknown = control::execute(
        &h.state,
        Command::GrantsRevoke {
            id: "g_nope".into(),
        },
    )
    .await;
    assert!(!unknown.ok);
    assert_eq!(unknown.code.as_deref(), Some("not_found"));
    h.stop().await;
}

/// The control socket of a harness, served until dropped or stopped.
struct Socket {
    path: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Socket {
    async fn start(h: &Harness) -> Self {
        let path = control::socket_path(h.dir.path());
        let listener = control::bind(&path).await.expect("bind control socket");
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(control::serve(
            listener,
            path.clone(),
            h.state.clone(),
            async {
                let _ = rx.await;
            },
        ));
        Self {
            path,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("control socket stops within 10 s")
            .expect("control task did not panic");
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

#[tokio::test]
async fn the_control_socket_is_owner_only_and_removed_on_shutdown() {
    let h = Harness::start().await;
    let socket = Socket::start(&h).await;
    let mode = std::fs::metadata(&socket.path)
        .expect("socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let path = socket.path.clone();
    socket.stop().await;
    assert!(!path.exists(), "socket removed on shutdown");
    let err = control::send(h.dir.path(), &Command::ConsentList)
        .await
        .expect_err("nobody listening");
    assert!(matches!(err, ControlError::NotRunning(_)), "{err:?}");
    h.stop().await;
}

#[tokio::test]
async fn the_cli_lists_and_revokes_grants_through_the_socket() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let socket = Socket::start(&h).await;

    let listed = control::send(
        h.dir.path(),
        &Command::GrantsList {
            include_revoked: false,
        },
    )
    .await
    .expect("send");
    assert!(listed.ok, "{listed:?}");
    assert_eq!(listed.data[0]["id"], c.grant_id);

    let revoked = control::send(
        h.dir.path(),
        &Command::GrantsRevoke {
            id: c.grant_id.clone(),
        },
    )
    .await
    .expect("send");
    assert!(revoked.ok, "{revoked:?}");
    h.assert_token_refused(&c.tokens.access).await;

    socket.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn a_garbled_command_on_the_socket_is_bad_request() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let h = Harness::start().await;
    let socket = Socket::start(&h).await;
    let stream = tokio::net::UnixStream::connect(&socket.path)
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    write
        .write_all(b"{\"cmd\":\"drop_tables\"}\n")
        .await
        .expect("write");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(read).read_line(&mut line),
    )
    .await
    .expect("answered in time")
    .expect("read");
    let reply: serde_json::Value = serde_json::from_str(&line).expect("JSON reply");
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["code"], "bad_request");
    socket.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn a_second_daemon_cannot_take_over_a_live_socket() {
    let h = Harness::start().await;
    let socket = Socket::start(&h).await;
    let err = control::bind(&socket.path)
        .await
        .expect_err("socket in use");
    assert!(matches!(err, ControlError::AlreadyRunning(_)), "{err:?}");
    // The live daemon still answers.
    let reply = control::send(h.dir.path(), &Command::ConsentList)
        .await
        .expect("send");
    assert!(reply.ok);
    socket.stop().await;
    h.stop().await;
}

/// `spor-companiond <args> --data-dir <the harness's>`: its stdout, bounded.
async fn cli(h: &Harness, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_spor-companiond"))
            .args(args)
            .arg("--data-dir")
            .arg(h.dir.path())
            .env("RUST_LOG", "off")
            .env_remove("SPOR_COMPANION_DATA_DIR")
            .output(),
    )
    .await
    .expect("the CLI answers within 30 s")
    .expect("run spor-companiond");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[tokio::test]
async fn the_cli_prints_client_names_isolated_and_a_stored_bidi_name_written_out() {
    let h = Harness::start().await;
    let c = h.connect().await;
    // A name stored before registration refused bidi controls: its U+2069
    // would close an isolate early and its U+202E reverse what follows.
    let stored = "Claude\u{2069}\u{202E} edoC";
    let (id, name) = (c.client_id.clone(), stored.to_string());
    h.state
        .store
        .call(move |db| {
            db.execute("UPDATE clients SET name = ?1 WHERE id = ?2", [&name, &id])?;
            Ok(())
        })
        .await
        .expect("store the old name");
    let pending = h
        .authorize(&h.authorize_params(
            &c.client_id,
            crate::support::REDIRECT,
            &crate::support::Pkce::new(),
        ))
        .await;
    let socket = Socket::start(&h).await;

    let shown = "\u{2068}Claude<U+2069><U+202E> edoC\u{2069}";
    let grants = cli(&h, &["grants", "list"]).await;
    assert!(grants.contains(shown), "{grants:?}");
    let consent = cli(&h, &["consent", "list"]).await;
    assert!(consent.contains(&pending), "{consent:?}");
    assert!(consent.contains(shown), "{consent:?}");
    for out in [&grants, &consent] {
        assert!(
            !out.contains('\u{202E}'),
            "a raw override reached the terminal: {out:?}"
        );
        assert_eq!(
            out.matches('\u{2068}').count(),
            out.matches('\u{2069}').count(),
            "every isolate is closed: {out:?}"
        );
    }
    socket.stop().await;
    h.stop().await;
}

#[tokio::test]
async fn the_cli_says_which_host_vouches_for_a_document_client_and_that_others_name_themselves() {
    use crate::support::{Answer, DocumentServer, Pkce, DOC_HOST, PAT};
    let docs = DocumentServer::start().await;
    let url = docs.url("/client.json");
    docs.serve(
        "/client.json",
        Answer::json(&serde_json::json!({
            "client_id": url,
            "client_name": "Verified Host",
            "redirect_uris": ["http://127.0.0.1/callback"],
        })),
    );
    let h = Harness::start_with_client_documents(docs.fetcher()).await;
    let account = h.add_account(PAT, "acme").await;
    let pkce = Pkce::new();
    let redirect = "http://127.0.0.1:50321/callback";
    let code = h.code_for(&url, redirect, &pkce, &account).await;
    let t = h
        .token(&h.exchange_params(&url, &code, redirect, &pkce.verifier))
        .await;
    assert_eq!(t.status, axum::http::StatusCode::OK, "{}", t.text);
    let registered = h.register(&[crate::support::REDIRECT]).await;
    h.authorize(&h.authorize_params(&url, redirect, &Pkce::new()))
        .await;
    h.authorize(&h.authorize_params(&registered, crate::support::REDIRECT, &Pkce::new()))
        .await;
    let socket = Socket::start(&h).await;

    let grants = cli(&h, &["grants", "list"]).await;
    assert!(
        grants.contains(&format!(
            "\u{2068}Verified Host\u{2069} (verified by \u{2068}{DOC_HOST}\u{2069})"
        )),
        "{grants:?}"
    );
    let consent = cli(&h, &["consent", "list"]).await;
    assert!(
        consent.contains(&format!(
            "\u{2068}Verified Host\u{2069} (verified by \u{2068}{DOC_HOST}\u{2069})"
        )),
        "{consent:?}"
    );
    assert!(
        consent.contains("\u{2068}Test Assistant\u{2069} (name as stated by the app)"),
        "{consent:?}"
    );
    socket.stop().await;
    h.stop().await;
    docs.stop().await;
}

#[tokio::test]
async fn the_cli_changes_an_assistants_access_and_refuses_one_it_cannot_read() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let socket = Socket::start(&h).await;
    let before = cli(&h, &["grants", "list"]).await;
    assert!(before.contains(" full "), "{before:?}");

    let out = cli(
        &h,
        &["grants", "access", &c.grant_id, "--access", "read-only"],
    )
    .await;
    assert!(out.contains("now has read only access"), "{out:?}");
    assert_eq!(
        h.grant(&c.grant_id).await.access,
        spor_companion::access::Access::ReadOnly
    );
    let listed = cli(&h, &["grants", "list"]).await;
    assert!(listed.contains(" read-only "), "{listed:?}");
    let json = cli(&h, &["grants", "list", "--json"]).await;
    let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(rows[0]["access"], json!({"kind": "read_only"}), "{json}");

    // A typo is named, and nothing changes.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_spor-companiond"))
        .args([
            "grants",
            "access",
            &c.grant_id,
            "--access",
            "admin",
            "--data-dir",
        ])
        .arg(h.dir.path())
        .env("RUST_LOG", "off")
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("access must be full, read-only or tools:NAME,NAME,… (got \"admin\")"),
        "{err}"
    );
    assert_eq!(
        h.grant(&c.grant_id).await.access,
        spor_companion::access::Access::ReadOnly
    );
    // An unknown grant is not found.
    let reply = control::send(
        h.dir.path(),
        &spor_companion::control::Command::GrantsAccess {
            id: "g_nope".into(),
            access: "full".into(),
        },
    )
    .await
    .expect("send");
    assert_eq!(reply.code.as_deref(), Some("not_found"));
    socket.stop().await;
    h.stop().await;
}
