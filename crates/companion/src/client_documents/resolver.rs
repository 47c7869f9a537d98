//! The DNS resolver for fetches on a client's behalf (Client ID Metadata
//! Documents): it resolves with the system resolver and hands the HTTP
//! client only the public addresses (`spor_wire::oauth::public_address`).
//! The connector connects to nothing else and looks nothing up again, so
//! the address checked is the address connected to: a name that answers
//! with a public address first and `127.0.0.1` a moment later (DNS
//! rebinding) cannot slip through. IP literals never reach a resolver;
//! `client_metadata::check_url` refuses them before any fetch.

use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use spor_wire::oauth::public_address::{self, NonPublic};

/// Why a name gives nothing a fetch may connect to.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// The system resolver gave no answer.
    #[error("{name} could not be resolved")]
    Lookup {
        /// The name looked up.
        name: String,
    },
    /// Every address it resolves to is refused.
    #[error("{name} resolves to {address}, {}, which Spor Companion does not fetch from", .kind.describe())]
    NotPublic {
        /// The name looked up.
        name: String,
        /// The first refused address.
        address: IpAddr,
        /// What that address is.
        kind: NonPublic,
    },
}

impl ResolveError {
    /// A stable code for logs and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Lookup { .. } => "lookup_failed",
            Self::NotPublic { .. } => "address_not_public",
        }
    }
}

/// Keeps the public addresses among what `name` resolved to; when none is
/// left, the error names the first refused one.
pub fn keep_public(
    name: &str,
    found: impl IntoIterator<Item = SocketAddr>,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let mut kept = Vec::new();
    let mut first_refused = None;
    for addr in found {
        match public_address::check(addr.ip()) {
            Ok(()) => kept.push(addr),
            Err(kind) => {
                first_refused.get_or_insert((addr.ip(), kind));
            }
        }
    }
    match (kept.is_empty(), first_refused) {
        (false, _) => Ok(kept),
        (true, Some((address, kind))) => Err(ResolveError::NotPublic {
            name: name.to_string(),
            address,
            kind,
        }),
        (true, None) => Err(ResolveError::Lookup {
            name: name.to_string(),
        }),
    }
}

/// The production resolver of document fetches: the system's lookup
/// (`getaddrinfo` on a blocking thread), public addresses only.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicOnly;

impl PublicOnly {
    /// Resolves `host` and keeps its public addresses.
    pub async fn lookup(host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let found = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| ResolveError::Lookup {
                name: host.to_string(),
            })?;
        keep_public(host, found)
    }
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let kept = Self::lookup(name.as_str()).await?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn addr(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("address"), 443)
    }

    #[test]
    fn only_public_addresses_are_kept() {
        let kept = keep_public(
            "docs.example",
            [
                "127.0.0.1",
                "10.0.0.1",
                "::1",
                "8.8.8.8",
                "fe80::1",
                "2606:4700::1",
            ]
            .map(addr),
        )
        .expect("public ones");
        assert_eq!(kept, [addr("8.8.8.8"), addr("2606:4700::1")]);
    }

    #[test]
    fn a_name_with_only_refused_addresses_names_the_first() {
        let e = keep_public("rebind.example", ["192.168.1.1", "127.0.0.1"].map(addr))
            .expect_err("refused");
        assert_eq!(e.code(), "address_not_public");
        assert_eq!(
            e.to_string(),
            "rebind.example resolves to 192.168.1.1, a private address, which Spor Companion does not fetch from"
        );
    }

    /// The resolver the daemon and the app use, on the real lookup path:
    /// each name below resolves (without DNS) to an address it must refuse.
    #[tokio::test]
    async fn the_production_resolver_refuses_every_non_public_address() {
        for (host, kind) in [
            ("127.0.0.1", NonPublic::Loopback),
            ("localhost", NonPublic::Loopback),
            ("::1", NonPublic::Loopback),
            ("10.1.2.3", NonPublic::Private),
            ("172.16.5.4", NonPublic::Private),
            ("192.168.0.1", NonPublic::Private),
            ("169.254.169.254", NonPublic::LinkLocal),
            ("fe80::1", NonPublic::LinkLocal),
            ("fd00::1", NonPublic::UniqueLocal),
            ("224.0.0.251", NonPublic::Multicast),
            ("ff02::fb", NonPublic::Multicast),
            ("0.0.0.0", NonPublic::Unspecified),
            ("::", NonPublic::Unspecified),
            ("::ffff:127.0.0.1", NonPublic::Loopback),
            ("::ffff:10.0.0.1", NonPublic::Private),
        ] {
            let name = Name::from_str(host).unwrap_or_else(|_| panic!("{host} is a name"));
            let Err(e) = PublicOnly.resolve(name).await else {
                panic!("{host} was resolved to something to connect to");
            };
            match e.downcast_ref::<ResolveError>() {
                Some(ResolveError::NotPublic { kind: k, .. }) => assert_eq!(*k, kind, "{host}"),
                other => panic!("{host}: {other:?}"),
            }
        }
    }
}
