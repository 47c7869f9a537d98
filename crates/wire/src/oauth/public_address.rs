//! Which IP addresses a fetch on a client's behalf may connect to: only
//! public unicast ones. A Client ID Metadata Document is fetched from a URL
//! the client chose, so without this any local program could make the
//! companion reach the person's router, a service on loopback or a cloud
//! metadata endpoint (SSRF). The fetcher applies it to every address the
//! name resolves to, and connects only to what passes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, as the error names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonPublic {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `100.64/10` (shared address space).
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `fc00::/7` (and the deprecated site-local `fec0::/10`).
    UniqueLocal,
    /// `224/4`, `ff00::/8`, `255.255.255.255`.
    Multicast,
    /// Documentation, benchmarking, protocol-assignment, reserved and
    /// transition ranges: nothing a public document is served from.
    Reserved,
}

impl NonPublic {
    /// The kind, as the refusal names it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "an unspecified address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::LinkLocal => "a link-local address",
            Self::UniqueLocal => "a unique-local address",
            Self::Multicast => "a multicast address",
            Self::Reserved => "a reserved address",
        }
    }
}

/// Classifies an IPv4 address; `Ok` when it is public unicast.
fn check_v4(ip: Ipv4Addr) -> Result<(), NonPublic> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Err(NonPublic::Unspecified),
        (127, _, _) => Err(NonPublic::Loopback),
        (10, _, _) | (192, 168, _) => Err(NonPublic::Private),
        (172, 16..=31, _) | (100, 64..=127, _) => Err(NonPublic::Private),
        (169, 254, _) => Err(NonPublic::LinkLocal),
        (224..=239, _, _) => Err(NonPublic::Multicast),
        (240..=255, _, _) => Err(NonPublic::Reserved),
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Err(NonPublic::Reserved),
        (198, 18..=19, _) | (192, 88, 99) => Err(NonPublic::Reserved),
        _ => Ok(()),
    }
}

/// Classifies an IPv6 address; `Ok` when it is public unicast. Forms that
/// carry an IPv4 address (mapped, compatible, NAT64) are judged by it, so
/// `::ffff:127.0.0.1` is loopback.
fn check_v6(ip: Ipv6Addr) -> Result<(), NonPublic> {
    if ip.is_unspecified() {
        return Err(NonPublic::Unspecified);
    }
    if ip.is_loopback() {
        return Err(NonPublic::Loopback);
    }
    let s = ip.segments();
    let embedded = Ipv4Addr::new(
        (s[6] >> 8) as u8,
        (s[6] & 0xff) as u8,
        (s[7] >> 8) as u8,
        (s[7] & 0xff) as u8,
    );
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => {
            check_v4(embedded).and(Err(NonPublic::Reserved))
        }
        // 64:ff9b::a.b.c.d reaches the IPv4 address through NAT64.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => check_v4(embedded),
        _ => match s[0] {
            0xff00..=0xffff => Err(NonPublic::Multicast),
            0xfe80..=0xfebf => Err(NonPublic::LinkLocal),
            0xfc00..=0xfdff | 0xfec0..=0xfeff => Err(NonPublic::UniqueLocal),
            // Documentation (2001:db8::/32), Teredo (2001::/32), ORCHID and
            // the other IETF assignments in 2001::/23, 6to4 (2002::/16).
            0x2001 if s[1] == 0x0db8 || s[1] < 0x0200 => Err(NonPublic::Reserved),
            0x2002 => Err(NonPublic::Reserved),
            // Global unicast is 2000::/3; everything else is unassigned.
            0x2000..=0x3fff => Ok(()),
            _ => Err(NonPublic::Reserved),
        },
    }
}

/// Whether a fetch on a client's behalf may connect to `ip`: `Ok` for a
/// public unicast address, else what it is.
pub fn check(ip: IpAddr) -> Result<(), NonPublic> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Result<(), NonPublic> {
        check(ip.parse().unwrap_or_else(|_| panic!("{ip} is an address")))
    }

    #[test]
    fn public_unicast_passes() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "160.79.104.10",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "2001:4860:4860::8888",
            "64:ff9b::808:808",
        ] {
            assert_eq!(kind(ip), Ok(()), "{ip}");
        }
    }

    #[test]
    fn loopback_private_link_local_and_unique_local_are_refused() {
        for (ip, expected) in [
            ("127.0.0.1", NonPublic::Loopback),
            ("127.255.0.9", NonPublic::Loopback),
            ("::1", NonPublic::Loopback),
            ("10.0.0.1", NonPublic::Private),
            ("172.16.0.1", NonPublic::Private),
            ("172.31.255.254", NonPublic::Private),
            ("192.168.1.1", NonPublic::Private),
            ("100.64.0.1", NonPublic::Private),
            ("169.254.169.254", NonPublic::LinkLocal),
            ("fe80::1", NonPublic::LinkLocal),
            ("febf::1", NonPublic::LinkLocal),
            ("fc00::1", NonPublic::UniqueLocal),
            ("fd12:3456::1", NonPublic::UniqueLocal),
            ("fec0::1", NonPublic::UniqueLocal),
        ] {
            assert_eq!(kind(ip), Err(expected), "{ip}");
        }
    }

    #[test]
    fn unspecified_multicast_and_reserved_are_refused() {
        for (ip, expected) in [
            ("0.0.0.0", NonPublic::Unspecified),
            ("0.1.2.3", NonPublic::Unspecified),
            ("::", NonPublic::Unspecified),
            ("224.0.0.1", NonPublic::Multicast),
            ("239.255.255.250", NonPublic::Multicast),
            ("ff02::1", NonPublic::Multicast),
            ("255.255.255.255", NonPublic::Reserved),
            ("240.0.0.1", NonPublic::Reserved),
            ("192.0.2.1", NonPublic::Reserved),
            ("198.51.100.7", NonPublic::Reserved),
            ("203.0.113.9", NonPublic::Reserved),
            ("198.18.0.1", NonPublic::Reserved),
            ("192.0.0.8", NonPublic::Reserved),
            ("2001:db8::1", NonPublic::Reserved),
            ("2001::1", NonPublic::Reserved),
            ("2002:7f00:1::1", NonPublic::Reserved),
            ("4000::1", NonPublic::Reserved),
        ] {
            assert_eq!(kind(ip), Err(expected), "{ip}");
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_by_the_ipv4_address() {
        for (ip, expected) in [
            ("::ffff:127.0.0.1", NonPublic::Loopback),
            ("::ffff:10.1.2.3", NonPublic::Private),
            ("::ffff:169.254.169.254", NonPublic::LinkLocal),
            ("::ffff:0.0.0.0", NonPublic::Unspecified),
            ("::127.0.0.1", NonPublic::Loopback),
            ("64:ff9b::7f00:1", NonPublic::Loopback),
            ("64:ff9b::a9fe:a9fe", NonPublic::LinkLocal),
            // A mapped public address is still not connected to: the
            // fetcher connects to the IPv4 address itself.
            ("::ffff:8.8.8.8", NonPublic::Reserved),
        ] {
            assert_eq!(kind(ip), Err(expected), "{ip}");
        }
    }
}
