//! The loopback host a request named us by, and the paths we serve: the
//! discovery documents name them, the router mounts them, the gateway and
//! the bridge build URLs from them.

use std::borrow::Cow;

use url::{Host, Url};

use crate::sensitive::Abbreviated;

/// RFC 9728 metadata for the `/mcp` resource.
pub const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
/// RFC 9728 metadata at the root (some clients look here).
pub const PROTECTED_RESOURCE_ROOT_PATH: &str = "/.well-known/oauth-protected-resource";
/// RFC 8414 metadata.
pub const AUTHORIZATION_SERVER_PATH: &str = "/.well-known/oauth-authorization-server";
/// RFC 7591 registration.
pub const REGISTER_PATH: &str = "/oauth/register";
/// Authorization endpoint.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// Token endpoint.
pub const TOKEN_PATH: &str = "/oauth/token";
/// RFC 7009 revocation.
pub const REVOKE_PATH: &str = "/oauth/revoke";
/// The consent page of one pending request.
pub const CONSENT_PATH: &str = "/oauth/consent/{id}";
/// The MCP endpoint the tokens are for.
pub const MCP_PATH: &str = "/mcp";

/// A request path as a log line may show it: the request id in a consent
/// path gives the page and its CSRF token, so only its start is kept.
pub fn loggable_path(path: &str) -> Cow<'_, str> {
    let prefix = CONSENT_PATH.trim_end_matches("{id}");
    let Some(rest) = path.strip_prefix(prefix).filter(|r| !r.is_empty()) else {
        return Cow::Borrowed(path);
    };
    let (id, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Cow::Owned(format!("{prefix}{}{tail}", Abbreviated(id)))
}

/// Whether `host` is one of the three loopback names the companion answers
/// to and accepts in redirect URIs, origins and resources: `localhost`,
/// `127.0.0.1` or `[::1]` (not the rest of 127.0.0.0/8).
pub fn is_loopback_name(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => *d == "localhost",
        Host::Ipv4(ip) => ip.octets() == [127, 0, 0, 1],
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Whether `host` is on this machine at all: `localhost` or any address of
/// 127.0.0.0/8 or `::1`. Plain `http` to a server we send tokens to is
/// allowed only there.
pub fn is_on_this_machine(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The loopback host and port a request addressed us by (validated by the
/// loopback guard), e.g. `127.0.0.1:7767` or `[::1]:7767`. URLs we hand out
/// use the same spelling so issuer and resource match what the client saw.
#[derive(Debug, Clone)]
pub struct LocalHost(pub String);

impl LocalHost {
    /// `http://<host>`; also our issuer.
    pub fn base(&self) -> String {
        format!("http://{}", self.0)
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> String {
        self.base()
    }

    /// The MCP resource URL.
    pub fn resource(&self) -> String {
        format!("{}{MCP_PATH}", self.base())
    }

    /// Where the protected-resource metadata is.
    pub fn resource_metadata(&self) -> String {
        format!("{}{PROTECTED_RESOURCE_PATH}", self.base())
    }

    fn port(&self) -> Option<u16> {
        self.0.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
    }

    /// Whether `resource` names our MCP endpoint (any loopback spelling, our
    /// port, `/mcp` with or without a trailing slash).
    pub fn is_our_resource(&self, resource: &str) -> bool {
        let Ok(url) = Url::parse(resource) else {
            return false;
        };
        url.scheme() == "http"
            && url.host().is_some_and(|h| is_loopback_name(&h))
            && url.port_or_known_default() == self.port()
            && matches!(url.path(), "/mcp" | "/mcp/")
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty()
            && url.password().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_request_ids_are_shortened_in_logged_paths() {
        let id = "AbCdEfGhIjKlMnOpQrStUv";
        assert_eq!(
            loggable_path(&format!("/oauth/consent/{id}")),
            "/oauth/consent/AbCdEf…"
        );
        assert_eq!(
            loggable_path(&format!("/oauth/consent/{id}/status")),
            "/oauth/consent/AbCdEf…/status"
        );
        for other in ["/oauth/token", "/mcp", "/oauth/consent/", "/oauth/consentx"] {
            assert_eq!(loggable_path(other), other);
        }
    }

    #[test]
    fn resource_accepts_every_loopback_spelling_of_our_port() {
        let h = LocalHost("127.0.0.1:7767".into());
        assert!(h.is_our_resource("http://127.0.0.1:7767/mcp"));
        assert!(h.is_our_resource("http://127.0.0.1:7767/mcp/"));
        assert!(h.is_our_resource("http://localhost:7767/mcp"));
        assert!(h.is_our_resource("http://[::1]:7767/mcp"));
        assert!(!h.is_our_resource("http://127.0.0.1:7768/mcp"));
        assert!(!h.is_our_resource("http://127.0.0.1:7767/other"));
        assert!(!h.is_our_resource("https://127.0.0.1:7767/mcp"));
        assert!(!h.is_our_resource("http://evil.example:7767/mcp"));
        assert!(!h.is_our_resource("http://127.0.0.1:7767/mcp?x=1"));
        // Found by fuzz/token_form: a password without a user name.
        assert!(!h.is_our_resource("http://:pw@127.0.0.1:7767/mcp"));
    }
}
