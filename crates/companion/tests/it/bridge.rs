//! The bridge's OAuth client against the real server: tokens are refreshed
//! before they expire, rotations are stored, and a token another bridge
//! already renewed is picked up instead of rotating again. Against fake
//! companions: endpoints on another origin get nothing. And the bridge
//! binary's folder and files are its user's alone, even when they existed
//! wider and someone holds a lock through an old handle.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use spor_companion::bridge::oauth::{ClientSettings, OAuthClient};
use spor_companion::clock::FakeClock;
use spor_companion::secrets::{MemoryStore, SecretStore};
use spor_companion::sensitive::Sensitive;

use crate::support::{closed_port, Harness, Tokens, INIT, START};

const HOST: &str = "Test host via Spor bridge";
const THIRTY_DAYS: i64 = 30 * 86_400;

fn client(h: &Harness, store: &MemoryStore) -> OAuthClient {
    let settings = ClientSettings {
        resource: url::Url::parse(&h.url("/mcp")).expect("url"),
        client_name: HOST.into(),
        callback_port: 0,
        auth_timeout: Duration::from_secs(1),
        lock_path: h.dir.path().join("bridge").join("test.lock"),
    };
    OAuthClient::new(
        settings,
        SecretStore::new(store.clone()),
        Arc::new(h.clock.clone()),
    )
    .expect("client")
}

fn key(h: &Harness) -> String {
    format!("{}#{HOST}", h.url("/mcp"))
}

fn stored(h: &Harness, store: &MemoryStore) -> Value {
    let raw = store.entries().get(&key(h)).cloned().expect("stored");
    serde_json::from_str(&raw).expect("json")
}

fn put(h: &Harness, store: &MemoryStore, client_id: &str, t: &Tokens, expires_at: i64) {
    let v = json!({
        "issuer": h.base,
        "client_id": client_id,
        "access_token": t.access,
        "refresh_token": t.refresh,
        "expires_at": expires_at,
    });
    SecretStore::new(store.clone())
        .set_blocking(&key(h), &Sensitive::new(v.to_string()))
        .expect("store");
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_first_and_the_rotation_stored() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let store = MemoryStore::default();
    put(&h, &store, &c.client_id, &c.tokens, h.now() + THIRTY_DAYS);
    let bridge = client(&h, &store);

    let first = bridge.access_token(None).await.expect("stored token");
    assert_eq!(first.expose(), &c.tokens.access, "fresh: used as stored");

    // Inside the last minute: renewed before use, not after a 401.
    h.clock.advance(THIRTY_DAYS - 30);
    let second = bridge.access_token(None).await.expect("refreshed");
    assert_ne!(second.expose(), &c.tokens.access);
    let s = stored(&h, &store);
    assert_eq!(s["access_token"], second.expose().as_str());
    assert_ne!(s["refresh_token"], c.tokens.refresh.as_str(), "rotated");
    assert_eq!(s["client_id"], c.client_id.as_str());
    assert_eq!(h.grant_of(second.expose()).await, c.grant_id, "same grant");

    // The rotated pair works at the gateway's token check: a second refresh
    // with the stored refresh token succeeds.
    let again = h
        .refresh(&c.client_id, s["refresh_token"].as_str().expect("refresh"))
        .await;
    Tokens::from_reply(&again);
    h.stop().await;
}

#[tokio::test]
async fn a_token_another_bridge_renewed_is_taken_without_rotating_again() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let store = MemoryStore::default();
    put(&h, &store, &c.client_id, &c.tokens, h.now() + THIRTY_DAYS);
    let bridge = client(&h, &store);
    let mine = bridge.access_token(None).await.expect("stored token");

    // Another bridge refreshed and stored the successor meanwhile.
    let other = Tokens::from_reply(&h.refresh(&c.client_id, &c.tokens.refresh).await);
    put(&h, &store, &c.client_id, &other, h.now() + THIRTY_DAYS);

    // Our token got a 401: the stored successor is used as is.
    let renewed = bridge.renew(Some(&mine), None).await.expect("renewed");
    assert_eq!(renewed.expose(), &other.access);
    assert_eq!(
        stored(&h, &store)["refresh_token"],
        other.refresh.as_str(),
        "not rotated again"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_client_the_server_forgot_registers_again_before_asking_the_person() {
    // `true` as the browser: nobody approves, so authorization times out
    // after the (re-)registration this test is about.
    std::env::set_var("BROWSER", "true");
    let h = Harness::start().await;
    let c = h.connect().await;
    let store = MemoryStore::default();
    put(
        &h,
        &store,
        "client_the_server_never_saw",
        &c.tokens,
        h.now() + THIRTY_DAYS,
    );
    let bridge = client(&h, &store);
    let mine = bridge.access_token(None).await.expect("stored token");

    let err = bridge
        .renew(Some(&mine), None)
        .await
        .expect_err("nobody approves");
    assert_eq!(
        err.to_string(),
        "nobody approved the connection within 1 s. Ask your assistant to connect again to retry."
    );
    let s = stored(&h, &store);
    let fresh_id = s["client_id"].as_str().expect("client_id");
    assert!(fresh_id.starts_with("client_") && fresh_id != "client_the_server_never_saw");
    assert_ne!(fresh_id, c.client_id);
    assert_eq!(s.get("access_token"), None, "the dead tokens are gone");
    assert_eq!(s.get("refresh_token"), None);
    h.stop().await;
}

// ------------------------------------------- endpoints on another origin

/// A server that answers the companion's discovery documents (or, with no
/// metadata, only 404s) and records every request it receives.
struct Fake {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct FakeState {
    prm: Option<Value>,
    asm: Option<Value>,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn record(state: &FakeState, req: Request) {
    let line = format!("{} {}", req.method(), req.uri());
    state.seen.lock().expect("seen lock").push(line);
}

async fn fake_prm(State(st): State<FakeState>, req: Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    record(&st, req).await;
    match st.prm {
        Some(v) => Json(v).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn fake_asm(State(st): State<FakeState>, req: Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    record(&st, req).await;
    match st.asm {
        Some(v) => Json(v).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn fake_other(State(st): State<FakeState>, req: Request) -> axum::http::StatusCode {
    record(&st, req).await;
    axum::http::StatusCode::NOT_FOUND
}

impl Fake {
    /// Binds first, so the metadata can name its own address.
    async fn start(metadata: impl FnOnce(&str) -> (Option<Value>, Option<Value>)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (prm, asm) = metadata(&base);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/.well-known/oauth-protected-resource/mcp", get(fake_prm))
            .route("/.well-known/oauth-authorization-server", get(fake_asm))
            .fallback(fake_other)
            .with_state(FakeState {
                prm,
                asm,
                seen: seen.clone(),
            });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, seen, task }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("seen lock").clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A companion at `base` whose metadata is its own but for `field`, which
/// names `elsewhere`.
fn metadata_pointing(
    base: &str,
    field: Option<&str>,
    elsewhere: &str,
) -> (Option<Value>, Option<Value>) {
    let issuer = if field == Some("authorization_servers") {
        elsewhere.to_string()
    } else {
        base.to_string()
    };
    let prm = json!({"resource": format!("{base}/mcp"), "authorization_servers": [issuer]});
    let mut asm = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "code_challenge_methods_supported": ["S256"],
    });
    if let Some(f) = field.filter(|f| *f != "authorization_servers") {
        let path = f.trim_end_matches("_endpoint");
        asm[f] = json!(format!("{elsewhere}/oauth/{path}"));
    }
    (Some(prm), Some(asm))
}

fn fake_client(base: &str, store: &MemoryStore, dir: &Path) -> OAuthClient {
    let settings = ClientSettings {
        resource: url::Url::parse(&format!("{base}/mcp")).expect("url"),
        client_name: HOST.into(),
        callback_port: 0,
        auth_timeout: Duration::from_secs(1),
        lock_path: dir.join("bridge").join("test.lock"),
    };
    OAuthClient::new(
        settings,
        SecretStore::new(store.clone()),
        Arc::new(FakeClock::new(START)),
    )
    .expect("client")
}

#[tokio::test]
async fn discovery_or_oauth_endpoints_on_another_origin_get_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (field, named) in [
        ("authorization_servers", "authorization server"),
        ("authorization_endpoint", "authorization_endpoint"),
        ("token_endpoint", "token_endpoint"),
        ("registration_endpoint", "registration_endpoint"),
    ] {
        let other = Fake::start(|_| (None, None)).await;
        let elsewhere = other.base.clone();
        let companion = Fake::start(|base| metadata_pointing(base, Some(field), &elsewhere)).await;
        // A registration and a refresh token the bridge would send on.
        let store = MemoryStore::default();
        let key = format!("{}/mcp#{HOST}", companion.base);
        let kept = json!({
            "issuer": companion.base,
            "client_id": "client_kept",
            "access_token": "spor_oat_expired",
            "refresh_token": "spor_ort_kept",
            "expires_at": START - 1,
        })
        .to_string();
        SecretStore::new(store.clone())
            .set_blocking(&key, &Sensitive::new(kept.clone()))
            .expect("store");
        let bridge = fake_client(&companion.base, &store, dir.path());

        let err = bridge.access_token(None).await.expect_err("another origin");
        let url = match field {
            "authorization_servers" => format!("{elsewhere}/"),
            f => format!("{elsewhere}/oauth/{}", f.trim_end_matches("_endpoint")),
        };
        assert_eq!(
            err.to_string(),
            format!(
                "the {named} {url} is not on {}, where the bridge was told Spor Companion is; \
                 nothing is sent there",
                companion.base
            ),
            "{field}"
        );
        assert_eq!(
            other.seen(),
            Vec::<String>::new(),
            "{field}: nothing sent elsewhere"
        );
        // Discovery only, at the companion: no refresh, no registration.
        let asked = companion.seen();
        assert!(
            asked.iter().all(|r| r.starts_with("GET /.well-known/")),
            "{field}: {asked:?}"
        );
        assert_eq!(
            store.entries().get(&key),
            Some(&kept),
            "{field}: the stored credentials are unchanged"
        );
    }
}

#[tokio::test]
async fn the_same_companion_on_its_own_origin_is_used() {
    // The control for the test above: the same fake with nothing pointing
    // elsewhere gets the refresh (and refuses it: it is a fake).
    let dir = tempfile::tempdir().expect("tempdir");
    let companion = Fake::start(|base| metadata_pointing(base, None, "unused")).await;
    let store = MemoryStore::default();
    let key = format!("{}/mcp#{HOST}", companion.base);
    let kept = json!({
        "issuer": companion.base,
        "client_id": "client_kept",
        "refresh_token": "spor_ort_kept",
    })
    .to_string();
    SecretStore::new(store.clone())
        .set_blocking(&key, &Sensitive::new(kept))
        .expect("store");
    let bridge = fake_client(&companion.base, &store, dir.path());
    let err = bridge.access_token(None).await.expect_err("a fake");
    assert!(
        err.to_string().starts_with("the token endpoint refused"),
        "{err}"
    );
    assert!(
        companion.seen().contains(&"POST /oauth/token".to_string()),
        "{:?}",
        companion.seen()
    );
}

// ------------------------------------------------- the bridge's own files

const BIN: &str = env!("CARGO_BIN_EXE_spor-companiond");
const FILES_HOST: &str = "Files test";

/// Runs `spor-companiond bridge <url>` with the file store in `data`, the
/// host sending `initialize` and closing stdin; bounded, killed if it hangs.
async fn run_bridge(url: &str, data: &Path, home: &Path) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "bridge",
            url,
            "--secret-store",
            "file",
            "--name",
            FILES_HOST,
        ])
        .args(["--callback-port", "0", "--auth-timeout", "1"])
        .arg("--data-dir")
        .arg(data)
        .env_clear()
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        // Nobody approves: the consent waits its one second and gives up.
        .env("BROWSER", "true")
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the bridge");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{INIT}\n").as_bytes())
        .await
        .expect("write initialize");
    drop(stdin);
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the bridge ends instead of hanging")
        .expect("bridge output")
}

fn lock_of(data: &Path, url: &str) -> PathBuf {
    let digest = spor_companion::tokens::hash(&format!("{url}#{FILES_HOST}"));
    data.join("bridge").join(format!("{}.lock", &digest[..16]))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(unix)]
#[tokio::test]
async fn a_fresh_bridge_creates_its_folder_and_files_owner_only() {
    let h = Harness::start().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("share").join("spor-companion");
    let url = h.url("/mcp");

    let out = run_bridge(&url, &data, tmp.path()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // It got as far as registering and asking the person.
    assert!(
        stdout.contains("nobody approved the connection within 1 s"),
        "{stdout}"
    );
    let secrets = data.join("bridge-secrets.json");
    let registered: Value =
        serde_json::from_slice(&std::fs::read(&secrets).expect("read")).expect("json");
    assert!(registered.get(format!("{url}#{FILES_HOST}")).is_some());
    for (path, want) in [
        (tmp.path().join("share"), 0o700),
        (data.clone(), 0o700),
        (data.join("bridge"), 0o700),
        (lock_of(&data, &url), 0o600),
        (secrets, 0o600),
        (data.join("secrets.json.lock"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("owner-only"),
        "nothing to tighten: {stderr}"
    );
    h.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_bridge_tightens_a_wide_folder_and_files_and_a_lock_held_through_them_stalls_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    // Nobody listens: the bridge gets past its lock and its store, then
    // reports the companion unreachable.
    let url = format!("http://127.0.0.1:{}/mcp", closed_port().await);
    let lock = lock_of(&data, &url);
    let store_lock = data.join("secrets.json.lock");
    let secrets = data.join("bridge-secrets.json");
    std::fs::create_dir_all(data.join("bridge")).expect("mkdir");
    std::fs::write(&lock, b"").expect("write");
    std::fs::write(&store_lock, b"").expect("write");
    std::fs::write(&secrets, b"{}").expect("write");
    for (path, wide) in [
        (&data, 0o755),
        (&data.join("bridge"), 0o755),
        (&lock, 0o644),
        (&store_lock, 0o644),
        (&secrets, 0o644),
    ] {
        set_mode(path, wide);
    }
    // What any other user could do while the files were 0644: open them
    // read-only and hold a lock, forever.
    let held: Vec<std::fs::File> = [&lock, &store_lock]
        .into_iter()
        .map(|p| {
            let f = std::fs::File::open(p).expect("open");
            f.lock().expect("lock");
            f
        })
        .collect();

    let out = run_bridge(&url, &data, tmp.path()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("cannot reach"), "{stdout}");
    for (path, want) in [
        (&data, 0o700),
        (&data.join("bridge"), 0o700),
        (&lock, 0o600),
        (&store_lock, 0o600),
        (&secrets, 0o600),
    ] {
        assert_eq!(mode(path), want, "{}", path.display());
        let said = format!("{} was open to other users", path.display());
        assert_eq!(
            stderr.matches(&said).count(),
            1,
            "logged once: {said}\n{stderr}"
        );
    }
    assert_eq!(std::fs::read(&secrets).expect("read"), b"{}", "kept");
    drop(held);
}
