//! The `Harness`: the real companion server on `127.0.0.1:0` (bound before
//! it is spawned) with a temp database, an inspectable in-memory secret
//! store, a fake clock and a [`FakeUpstream`], plus an HTTP client with
//! redirects disabled and timeouts. The flows built on it live beside it
//! (`oauth.rs`, `store.rs`, `mcp.rs`).

use std::sync::Arc;
use std::time::Duration;

use spor_companion::client_documents::ClientDocuments;
use spor_companion::clock::FakeClock;
use spor_companion::config::{Config, ConsentMode, Limits};
use spor_companion::gateway::Gateway;
use spor_companion::listener::Loopback;
use spor_companion::secrets::{MemoryStore, SecretStore};
use spor_companion::server;
use spor_companion::state::AppState;
use spor_companion::store::Store;
use spor_companion::upstream::{HostedSpor, Upstream};
use tempfile::TempDir;
use tokio::sync::oneshot;

use super::http::{Params, Reply};
use super::running::Running;
use super::upstream::FakeUpstream;

/// Where the fake clock starts.
pub const START: i64 = 1_800_000_000;
/// How long the companion under test waits for upstream headers.
pub const UPSTREAM_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The REST client of a harness: a token added for "hosted Spor" goes to
/// the fake upstream at `url` (MCP at `url/mcp`), never to the internet.
pub fn hosted_here(url: &str) -> Upstream {
    Upstream::new().hosting(HostedSpor {
        rest: url.to_string(),
        mcp: format!("{url}/mcp"),
    })
}

/// A running companion with its fake upstream.
pub struct Harness {
    /// The shared state the server runs on.
    pub state: AppState,
    /// The server's clock; advance it to expire things.
    pub clock: FakeClock,
    /// The server's port.
    pub port: u16,
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub base: String,
    /// A client with redirects disabled and timeouts.
    pub http: reqwest::Client,
    /// The fake Spor server.
    pub upstream: FakeUpstream,
    /// The secret store's contents.
    pub secrets: MemoryStore,
    /// The data dir (database, control socket).
    pub dir: TempDir,
    server: Running,
}

impl Harness {
    /// Starts the fake upstream and the companion.
    pub async fn start() -> Self {
        Self::start_with(Limits::default()).await
    }

    /// Like [`Self::start`] with other bounds.
    pub async fn start_with(limits: Limits) -> Self {
        Self::launch(
            limits,
            false,
            ConsentMode::Browser,
            Gateway::new(UPSTREAM_HEADER_TIMEOUT),
        )
        .await
    }

    /// Like [`Self::start`] with a gateway of other bounds.
    pub async fn start_with_gateway(gateway: Gateway) -> Self {
        Self::launch(Limits::default(), false, ConsentMode::Browser, gateway).await
    }

    /// Like [`Self::start`] with the fake upstream configured as the
    /// default server (what `--server` or the app's config would set).
    pub async fn start_with_default_server() -> Self {
        Self::launch(
            Limits::default(),
            true,
            ConsentMode::Browser,
            Gateway::new(UPSTREAM_HEADER_TIMEOUT),
        )
        .await
    }

    /// Like [`Self::start`] with another consent mode (`serve --consent`).
    pub async fn start_with_consent(mode: ConsentMode) -> Self {
        Self::launch(
            Limits::default(),
            false,
            mode,
            Gateway::new(UPSTREAM_HEADER_TIMEOUT),
        )
        .await
    }

    /// Like [`Self::start`] with the REST client `client` makes from the
    /// fake upstream's URL (its bound, and what it treats as hosted Spor).
    pub async fn start_with_upstream_client(client: fn(&str) -> Upstream) -> Self {
        Self::launch_with(
            Limits::default(),
            false,
            ConsentMode::Browser,
            Gateway::new(UPSTREAM_HEADER_TIMEOUT),
            client,
        )
        .await
    }

    /// Like [`Self::start`] with another fetcher of client metadata
    /// documents (one that reaches a local document server).
    pub async fn start_with_client_documents(documents: ClientDocuments) -> Self {
        let mut h = Self::launch_unstarted(
            Limits::default(),
            false,
            ConsentMode::Browser,
            Gateway::new(UPSTREAM_HEADER_TIMEOUT),
            hosted_here,
        )
        .await;
        h.state.client_documents = documents;
        h.serve().await
    }

    async fn launch(
        limits: Limits,
        default_server: bool,
        consent_mode: ConsentMode,
        gateway: Gateway,
    ) -> Self {
        Self::launch_with(limits, default_server, consent_mode, gateway, hosted_here).await
    }

    async fn launch_with(
        limits: Limits,
        default_server: bool,
        consent_mode: ConsentMode,
        gateway: Gateway,
        client: fn(&str) -> Upstream,
    ) -> Self {
        Self::launch_unstarted(limits, default_server, consent_mode, gateway, client)
            .await
            .serve()
            .await
    }

    async fn launch_unstarted(
        limits: Limits,
        default_server: bool,
        consent_mode: ConsentMode,
        gateway: Gateway,
        client: fn(&str) -> Upstream,
    ) -> Unstarted {
        let upstream = FakeUpstream::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("companion.db")).expect("open store");
        let secrets = MemoryStore::default();
        let clock = FakeClock::new(START);
        let mut state = AppState::new(
            store,
            SecretStore::new(secrets.clone()),
            Arc::new(clock.clone()),
            Config {
                data_dir: dir.path().to_path_buf(),
                default_server: default_server.then(|| upstream.url.clone()),
                consent_mode,
            },
        );
        // Short, so a stalled upstream is given up on quickly.
        state.gateway = gateway;
        state.upstream = client(&upstream.url);
        state.limits = limits;
        Unstarted {
            state,
            clock,
            upstream,
            secrets,
            dir,
        }
    }
}

/// A harness whose state may still change before its server starts.
struct Unstarted {
    state: AppState,
    clock: FakeClock,
    upstream: FakeUpstream,
    secrets: MemoryStore,
    dir: TempDir,
}

impl Unstarted {
    async fn serve(self) -> Harness {
        let Self {
            state,
            clock,
            upstream,
            secrets,
            dir,
        } = self;
        let listener = Loopback::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Harness {
            state,
            clock,
            port,
            base: format!("http://127.0.0.1:{port}"),
            http,
            upstream,
            secrets,
            dir,
            server: Running::new(stop, task),
        }
    }
}

impl Harness {
    /// Shuts both servers down through their shutdown futures.
    pub async fn stop(self) {
        let Self {
            http,
            server,
            upstream,
            state,
            ..
        } = self;
        drop(http);
        server.stop().await;
        drop(state);
        upstream.stop().await;
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The fake clock's time.
    pub fn now(&self) -> i64 {
        self.state.now()
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(self.http.get(self.url(path)).send().await.expect("GET")).await
    }

    /// POST a form to `path`.
    pub async fn post_form(&self, path: &str, params: &Params) -> Reply {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(params.encode())
            .send()
            .await
            .expect("POST");
        Reply::read(resp).await
    }
}
