//! The loopback listener: the port bound on both loopback families, so no
//! other OS user can hold the family we left free, and each accepted
//! connection carrying its two ends, from which the server learns who is
//! calling (see `peer`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OnceCell;

use crate::peer::{self, Owner, Program};

/// Free ports tried when asked for any port (`:0`) before giving up on
/// finding one that is free on both families.
const ANY_PORT_TRIES: usize = 20;

/// Why the port could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Only loopback addresses are served.
    #[error(
        "refusing to listen on {0}: Spor Companion only listens on loopback (127.0.0.1 or [::1])"
    )]
    NotLoopback(SocketAddr),
    /// Another program holds the port on one of the two families.
    #[error("{addr} is already in use by {holder}")]
    InUse {
        /// The address that was taken.
        addr: SocketAddr,
        /// Who holds it, as far as the OS tells.
        holder: String,
    },
    /// Any other reason.
    #[error("cannot listen on {addr}: {source}")]
    Io {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

impl BindError {
    /// The stable code the window and the daemon report.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotLoopback(_) => "not_loopback",
            Self::InUse { .. } => "port_in_use",
            Self::Io { .. } => "listen_failed",
        }
    }
}

/// Who holds `addr`, in words, without guessing.
fn holder_of(addr: SocketAddr) -> String {
    match (peer::listener_uid(addr), peer::own_uid()) {
        (Some(uid), Some(me)) if uid != me => format!("another OS user (uid {uid})"),
        (Some(_), Some(_)) => match peer::listener(addr.port()) {
            peer::Listener::Program(p) => format!("another program of yours: {p}"),
            _ => "another program".to_string(),
        },
        _ => "another program".to_string(),
    }
}

fn bind_err(addr: SocketAddr, source: std::io::Error) -> BindError {
    match source.kind() {
        std::io::ErrorKind::AddrInUse => BindError::InUse {
            addr,
            holder: holder_of(addr),
        },
        _ => BindError::Io { addr, source },
    }
}

/// The other loopback family's address on `port`.
fn sibling(ip: IpAddr, port: u16) -> SocketAddr {
    match ip {
        IpAddr::V4(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        IpAddr::V6(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    }
}

/// Whether binding failed because this machine has no such family (IPv6
/// switched off): then nobody else can hold it either.
fn family_missing(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::AddrNotAvailable
        || e.raw_os_error().is_some_and(is_no_family_errno)
}

#[cfg(unix)]
fn is_no_family_errno(errno: i32) -> bool {
    // EAFNOSUPPORT on Linux (97) and the BSDs/macOS (47).
    errno == if cfg!(target_os = "linux") { 97 } else { 47 }
}

#[cfg(not(unix))]
fn is_no_family_errno(_errno: i32) -> bool {
    false
}

/// The companion's port on both loopback families.
#[derive(Debug)]
pub struct Loopback {
    primary: TcpListener,
    sibling: Option<TcpListener>,
}

impl Loopback {
    /// Binds `addr` (a loopback address; port 0 picks one) and the same port
    /// on the other loopback family.
    pub async fn bind(addr: SocketAddr) -> Result<Self, BindError> {
        if !addr.ip().is_loopback() {
            return Err(BindError::NotLoopback(addr));
        }
        let tries = if addr.port() == 0 { ANY_PORT_TRIES } else { 1 };
        let mut last = None;
        for _ in 0..tries {
            let primary = TcpListener::bind(addr)
                .await
                .map_err(|e| bind_err(addr, e))?;
            let bound = primary.local_addr().map_err(|e| bind_err(addr, e))?;
            let other = sibling(bound.ip(), bound.port());
            match TcpListener::bind(other).await {
                Ok(sibling) => {
                    return Ok(Self {
                        primary,
                        sibling: Some(sibling),
                    })
                }
                Err(e) if family_missing(&e) => {
                    tracing::info!(%other, "this machine has no such loopback address; serving {bound} only");
                    return Ok(Self {
                        primary,
                        sibling: None,
                    });
                }
                // A picked port may be taken on the other family; pick again.
                Err(e) => last = Some(bind_err(other, e)),
            }
        }
        Err(last.unwrap_or(BindError::NotLoopback(addr)))
    }

    /// The address asked for (with the port that was picked).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.primary.local_addr()
    }

    /// Every bound address.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        [Some(&self.primary), self.sibling.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }
}

/// One accepted connection's two ends, and who turned out to be at the far one.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Our end.
    pub local: SocketAddr,
    /// Their end.
    pub remote: SocketAddr,
    owner: Arc<OnceCell<Owner>>,
}

impl Peer {
    /// The OS user at the far end, asked once per connection.
    pub async fn owner(&self) -> Owner {
        let (local, remote) = (self.local, self.remote);
        *self
            .owner
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || peer::connection_owner(local, remote))
                    .await
                    .unwrap_or(Owner::Unknown)
            })
            .await
    }

    /// The program at the far end, when the OS tells.
    pub async fn program(&self) -> Option<Program> {
        let (local, remote) = (self.local, self.remote);
        tokio::task::spawn_blocking(move || peer::connection_program(local, remote))
            .await
            .ok()
            .flatten()
    }
}

impl Listener for Loopback {
    type Io = TcpStream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, remote) = match &mut self.sibling {
                Some(sibling) => tokio::select! {
                    a = Listener::accept(&mut self.primary) => a,
                    a = Listener::accept(sibling) => a,
                },
                None => Listener::accept(&mut self.primary).await,
            };
            // Responses go out in small writes (SSE events, chunk ends); with
            // Nagle's algorithm on, each waits for the client's delayed ACK.
            let _ = stream.set_nodelay(true);
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            return (
                stream,
                Peer {
                    local,
                    remote,
                    owner: Arc::default(),
                },
            );
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        let local = self.primary.local_addr()?;
        Ok(Peer {
            local,
            remote: local,
            owner: Arc::default(),
        })
    }
}

impl Connected<IncomingStream<'_, Loopback>> for Peer {
    fn connect_info(stream: IncomingStream<'_, Loopback>) -> Self {
        stream.remote_addr().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_both_families_on_one_port() {
        let l = Loopback::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addrs = l.addrs();
        let port = l.local_addr().expect("addr").port();
        assert!(addrs.contains(&SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
        // Machines without IPv6 keep only the first; this one has it.
        if std::net::TcpListener::bind("[::1]:0").is_ok() {
            assert!(
                addrs.contains(&SocketAddr::from((Ipv6Addr::LOCALHOST, port))),
                "{addrs:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_taken_sibling_is_named() {
        let Ok(holder) = std::net::TcpListener::bind("[::1]:0") else {
            eprintln!("no IPv6 loopback here; nothing to hold");
            return;
        };
        let port = holder.local_addr().expect("addr").port();
        let err = Loopback::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .expect_err("taken");
        assert_eq!(err.code(), "port_in_use");
        assert!(
            err.to_string()
                .starts_with(&format!("[::1]:{port} is already in use by ")),
            "{err}"
        );
        // Nothing stays bound on the free family.
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }

    #[tokio::test]
    async fn refuses_other_addresses() {
        let err = Loopback::bind("0.0.0.0:0".parse().expect("addr"))
            .await
            .expect_err("not loopback");
        assert_eq!(err.code(), "not_loopback");
    }
}
