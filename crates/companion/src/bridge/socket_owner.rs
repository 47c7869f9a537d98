//! Whose socket the bridge is about to talk to. A loopback port belongs to
//! whoever listens on it first: while Spor Companion is stopped, another OS
//! user can listen on its port and collect the tokens and PKCE verifiers
//! sent there. So before every request to the companion, the bridge asks
//! the OS who owns the socket listening at the companion's address, and
//! sends nothing unless it is the bridge's own OS user. Where the OS cannot
//! tell (`peer::ENFORCED` is false: macOS, Windows), nothing is checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

use crate::host::is_on_this_machine;
use crate::peer;

/// Why the bridge sends nothing to the address it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketOwnerError {
    /// Another OS user listens where the companion should.
    #[error("refusing to send anything to {addr}: the socket listening there belongs to another user of this computer (uid {uid}), not to you (uid {own}). Someone may be holding Spor Companion's port while it is stopped; start Spor Companion and try again")]
    OtherUser {
        /// The address the other user listens on.
        addr: SocketAddr,
        /// Its owner.
        uid: u32,
        /// The bridge's own uid.
        own: u32,
    },
    /// The OS should tell who we are, but did not.
    #[error("refusing to send anything to {0}: this computer does not say which user the bridge runs as, so it cannot tell whose socket listens there")]
    Unchecked(String),
}

impl SocketOwnerError {
    /// A stable code for the kind of refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::OtherUser { .. } => "companion_socket_other_user",
            Self::Unchecked(_) => "companion_socket_unchecked",
        }
    }
}

/// Checks that every socket listening where `url` leads on this machine
/// belongs to this process's OS user. `Ok` when `url` is on another
/// machine, when nobody listens (the request then fails to connect), or
/// where the OS cannot tell ([`peer::ENFORCED`] is false).
pub async fn check(url: &Url) -> Result<(), SocketOwnerError> {
    if !peer::ENFORCED {
        return Ok(());
    }
    let targets = targets(url).await;
    if targets.is_empty() {
        return Ok(());
    }
    let origin = url.origin().ascii_serialization();
    tokio::task::spawn_blocking(move || decide(&targets, peer::own_uid(), peer::listener_uid))
        .await
        .unwrap_or(Err(SocketOwnerError::Unchecked(origin)))
}

/// The decision, given our uid and a lookup of the uid listening at an
/// address: for each target, the listener a connection would reach (the
/// most specific address first, as the kernel picks it) must be ours.
/// The seam tests use to play another user.
pub fn decide(
    targets: &[SocketAddr],
    own: Option<u32>,
    listener_uid: impl Fn(SocketAddr) -> Option<u32>,
) -> Result<(), SocketOwnerError> {
    for target in targets {
        let Some(own) = own else {
            return Err(SocketOwnerError::Unchecked(target.to_string()));
        };
        let reached = candidates(*target)
            .into_iter()
            .find_map(|addr| listener_uid(addr).map(|uid| (addr, uid)));
        match reached {
            Some((addr, uid)) if uid != own => {
                return Err(SocketOwnerError::OtherUser { addr, uid, own })
            }
            _ => {}
        }
    }
    Ok(())
}

/// The addresses a connection to `url` may reach on this machine: its
/// loopback address, or for `localhost` both loopback families and
/// whatever the resolver answers (the HTTP client asks the same resolver).
async fn targets(url: &Url) -> Vec<SocketAddr> {
    let Some(port) = url.port_or_known_default() else {
        return Vec::new();
    };
    match url.host() {
        Some(Host::Ipv4(ip)) if ip.is_loopback() => vec![SocketAddr::from((ip, port))],
        Some(Host::Ipv6(ip)) if ip.is_loopback() => vec![SocketAddr::from((ip, port))],
        Some(Host::Domain(name)) if is_on_this_machine(&Host::Domain(name)) => {
            let mut all = vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            ];
            if let Ok(found) = tokio::net::lookup_host((name, port)).await {
                for addr in found {
                    if !all.contains(&addr) {
                        all.push(addr);
                    }
                }
            }
            all
        }
        _ => Vec::new(),
    }
}

/// Where a listener that receives connections to `target` may be bound,
/// most specific first: the address itself (for IPv4 also as an
/// IPv4-mapped IPv6 address), then the wildcard of its family, and for
/// IPv4 the dual-stack IPv6 wildcard.
fn candidates(target: SocketAddr) -> Vec<SocketAddr> {
    let port = target.port();
    match target.ip() {
        IpAddr::V4(ip) => vec![
            target,
            SocketAddr::from((ip.to_ipv6_mapped(), port)),
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        ],
        IpAddr::V6(_) => vec![target, SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ME: u32 = 1000;
    const OTHER: u32 = 1001;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn lookup(table: &[(&str, u32)]) -> impl Fn(SocketAddr) -> Option<u32> {
        let table: HashMap<SocketAddr, u32> = table.iter().map(|(a, u)| (addr(a), *u)).collect();
        move |a| table.get(&a).copied()
    }

    #[test]
    fn another_users_listener_is_refused_naming_its_uid() {
        let e = decide(
            &[addr("127.0.0.1:7767")],
            Some(ME),
            lookup(&[("127.0.0.1:7767", OTHER)]),
        )
        .expect_err("another user listens");
        assert_eq!(e.code(), "companion_socket_other_user");
        assert_eq!(
            e.to_string(),
            "refusing to send anything to 127.0.0.1:7767: the socket listening there belongs to \
             another user of this computer (uid 1001), not to you (uid 1000). Someone may be \
             holding Spor Companion's port while it is stopped; start Spor Companion and try again"
        );
    }

    #[test]
    fn a_wildcard_or_mapped_listener_of_another_user_is_refused_when_it_would_answer() {
        for (held, named) in [
            ("0.0.0.0:7767", "0.0.0.0:7767"),
            ("[::]:7767", "[::]:7767"),
            ("[::ffff:127.0.0.1]:7767", "[::ffff:127.0.0.1]:7767"),
        ] {
            let e = decide(
                &[addr("127.0.0.1:7767")],
                Some(ME),
                lookup(&[(held, OTHER)]),
            )
            .expect_err(held);
            assert_eq!(
                e,
                SocketOwnerError::OtherUser {
                    addr: addr(named),
                    uid: OTHER,
                    own: ME
                }
            );
        }
        let e = decide(
            &[addr("[::1]:7767")],
            Some(ME),
            lookup(&[("[::]:7767", OTHER)]),
        )
        .expect_err("IPv6 wildcard");
        assert_eq!(e.code(), "companion_socket_other_user");
    }

    #[test]
    fn for_localhost_either_family_held_by_another_user_is_refused() {
        let both = [addr("127.0.0.1:7767"), addr("[::1]:7767")];
        let e = decide(
            &both,
            Some(ME),
            lookup(&[("127.0.0.1:7767", ME), ("[::1]:7767", OTHER)]),
        )
        .expect_err("[::1] squatted");
        assert_eq!(
            e,
            SocketOwnerError::OtherUser {
                addr: addr("[::1]:7767"),
                uid: OTHER,
                own: ME
            }
        );
        decide(
            &both,
            Some(ME),
            lookup(&[("127.0.0.1:7767", ME), ("[::1]:7767", ME)]),
        )
        .expect("both ours");
    }

    #[test]
    fn our_own_listener_or_nobody_passes_and_the_most_specific_listener_decides() {
        let target = [addr("127.0.0.1:7767")];
        decide(&target, Some(ME), lookup(&[("127.0.0.1:7767", ME)])).expect("ours");
        decide(&target, Some(ME), lookup(&[])).expect("nobody: the connection fails");
        // The kernel hands the connection to the exact address's listener.
        decide(
            &target,
            Some(ME),
            lookup(&[("127.0.0.1:7767", ME), ("[::]:7767", OTHER)]),
        )
        .expect("ours answers");
    }

    #[test]
    fn not_knowing_who_we_are_refuses() {
        let e = decide(&[addr("127.0.0.1:7767")], None, lookup(&[])).expect_err("unknown");
        assert_eq!(e.code(), "companion_socket_unchecked");
    }

    #[tokio::test]
    async fn localhost_is_checked_on_both_families_and_other_machines_not_at_all() {
        let url = Url::parse("http://localhost:7767/mcp").expect("url");
        let t = targets(&url).await;
        assert!(t.contains(&addr("127.0.0.1:7767")) && t.contains(&addr("[::1]:7767")));
        let url = Url::parse("http://[::1]:7767/mcp").expect("url");
        assert_eq!(targets(&url).await, vec![addr("[::1]:7767")]);
        let url = Url::parse("https://mcp.spor.example/mcp").expect("url");
        assert_eq!(targets(&url).await, Vec::<SocketAddr>::new());
    }

    #[tokio::test]
    async fn our_own_listening_socket_passes_the_real_check() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = held.local_addr().expect("address").port();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/mcp")).expect("url");
        check(&url).await.expect("our own socket");
        if peer::ENFORCED {
            assert_eq!(
                peer::listener_uid(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
                peer::own_uid(),
                "the check saw our socket, not nobody"
            );
        }
    }
}
