//! Client ID Metadata Documents served from this machine: an HTTPS server
//! on `127.0.0.1` with a certificate from a CA made for the test, answers
//! set per path, and a count of fetches. The companion reaches it through
//! the library's seam ([`ClientDocuments::with_network`]): a resolver that
//! answers test names, and the test CA as one more root. The shipped
//! programs have no way to ask for either.
//!
//! Self-contained (no `super::`): `examples/cimd_companion.rs` includes this
//! file too, to serve the document a real client names in the e2e tests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use spor_companion::client_documents::resolver::keep_public;
use spor_companion::client_documents::ClientDocuments;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The names the test CA's certificate covers.
pub const DOC_HOST: &str = "docs.example.test";

/// What the server answers on one path.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// `Cache-Control`, if any.
    pub cache_control: Option<String>,
    /// `Location`, if any.
    pub location: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// `200`, `application/json`, `body`, no caching header.
    pub fn json(body: &serde_json::Value) -> Self {
        Self {
            status: 200,
            content_type: Some("application/json".into()),
            cache_control: None,
            location: None,
            body: body.to_string().into_bytes(),
        }
    }
}

#[derive(Default)]
struct Served {
    answers: HashMap<String, Answer>,
    fetches: HashMap<String, usize>,
}

/// The HTTPS document server.
pub struct DocumentServer {
    /// Its port on `127.0.0.1`.
    pub port: u16,
    root: Vec<u8>,
    served: Arc<Mutex<Served>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// A TLS listener for `axum::serve`: a failed handshake is skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn answer(State(served): State<Arc<Mutex<Served>>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let found = {
        let mut s = served.lock().expect("served");
        *s.fetches.entry(path.clone()).or_default() += 1;
        s.answers.get(&path).cloned()
    };
    let Some(a) = found else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .expect("response");
    };
    let mut b = Response::builder().status(a.status);
    if let Some(v) = a.content_type {
        b = b.header(header::CONTENT_TYPE, v);
    }
    if let Some(v) = a.cache_control {
        b = b.header(header::CACHE_CONTROL, v);
    }
    if let Some(v) = a.location {
        b = b.header(header::LOCATION, v);
    }
    b.body(Body::from(a.body)).expect("response")
}

impl DocumentServer {
    /// A new CA, a certificate for [`DOC_HOST`], and the server.
    pub async fn start() -> Self {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Spor Companion test CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca cert");
        let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
        let leaf = rcgen::CertificateParams::new(vec![DOC_HOST.to_string()])
            .expect("leaf")
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf cert");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        let served: Arc<Mutex<Served>> = Arc::default();
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(served.clone());
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        };
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Self {
            port,
            root: ca.pem().into_bytes(),
            served,
            stop,
            task,
        }
    }

    /// `https://docs.example.test:PORT{path}`: a client_id this server answers.
    pub fn url(&self, path: &str) -> String {
        format!("https://{DOC_HOST}:{}{path}", self.port)
    }

    /// Serves `answer` on `path` from now on.
    pub fn serve(&self, path: &str, answer: Answer) {
        let mut s = self.served.lock().expect("served");
        s.answers.insert(path.to_string(), answer);
    }

    /// How many times `path` was fetched.
    pub fn fetches(&self, path: &str) -> usize {
        let s = self.served.lock().expect("served");
        s.fetches.get(path).copied().unwrap_or(0)
    }

    /// The test CA, for a fetcher that should trust this server.
    pub fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&self.root).expect("root")
    }

    /// A fetcher that finds [`DOC_HOST`] at `127.0.0.1` and trusts the CA.
    pub fn fetcher(&self) -> ClientDocuments {
        self.fetcher_resolving(
            FixedNames::new().answer(DOC_HOST, &["127.0.0.1".parse().expect("ip")]),
        )
    }

    /// A fetcher with `names` as its resolver, trusting the CA.
    pub fn fetcher_resolving(&self, names: FixedNames) -> ClientDocuments {
        ClientDocuments::with_network(Arc::new(names), Some(self.root()))
    }

    /// Stops the server, bounded.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("the document server stops within 10 s")
            .expect("the document server did not panic")
            .expect("the document server exited cleanly");
    }
}

/// A resolver answering fixed names, optionally through the production
/// address rule (`keep_public`) so a refusal travels the real fetch path.
#[derive(Debug, Clone, Default)]
pub struct FixedNames {
    answers: HashMap<String, Vec<IpAddr>>,
    public_only: bool,
}

impl FixedNames {
    /// Nothing resolves yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `name` resolves to `ips`.
    pub fn answer(mut self, name: &str, ips: &[IpAddr]) -> Self {
        self.answers.insert(name.to_string(), ips.to_vec());
        self
    }

    /// Keeps only public addresses, as the production resolver does.
    pub fn public_only(mut self) -> Self {
        self.public_only = true;
        self
    }
}

impl Resolve for FixedNames {
    fn resolve(&self, name: Name) -> Resolving {
        let found: Vec<SocketAddr> = self
            .answers
            .get(name.as_str())
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect())
            .unwrap_or_default();
        let public_only = self.public_only;
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs = if public_only {
                keep_public(&name, found)?
            } else {
                found
            };
            if addrs.is_empty() {
                return Err(format!("{name} does not resolve").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
