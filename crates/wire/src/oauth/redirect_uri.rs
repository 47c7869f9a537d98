//! Which redirect URIs a client may register, and how a requested one is
//! matched against them (RFC 8252 §7.3: loopback ports are ignored).

use url::Url;

use crate::host::is_loopback_name;

/// Longest redirect URI we accept.
const MAX_LEN: usize = 2048;

/// Why a redirect URI is refused.
pub type Refusal = String;

/// A redirect URI that passed the registration rules.
#[derive(Debug, Clone)]
pub struct RedirectUri {
    url: Url,
    loopback: bool,
}

impl RedirectUri {
    /// Applies the rules: `http` only to `127.0.0.1`, `localhost` or `[::1]`
    /// (any port); `https` to any host; nothing else, no fragments, no
    /// credentials.
    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(format!("redirect URI must be 1 to {MAX_LEN} characters"));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("redirect URI must not contain whitespace".into());
        }
        let url = Url::parse(raw).map_err(|_| format!("{raw:?} is not an absolute URI"))?;
        if raw.contains('#') {
            return Err("redirect URI must not contain a fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("redirect URI must not contain credentials".into());
        }
        let host = url.host().ok_or_else(|| format!("{raw:?} has no host"))?;
        let loopback = match url.scheme() {
            "http" if is_loopback_name(&host) => true,
            "http" => return Err(
                "http redirect URIs must use 127.0.0.1, localhost or [::1]; use https elsewhere"
                    .into(),
            ),
            "https" => false,
            other => return Err(format!("redirect URI scheme {other:?} is not allowed")),
        };
        Ok(Self { url, loopback })
    }

    /// Whether this is a loopback `http` URI (else it is `https`).
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// The host and port as shown to the user, e.g. `127.0.0.1:33418`.
    pub fn display_host(&self) -> String {
        match (self.url.host_str(), self.url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        }
    }

    /// Whether `requested` matches this registered URI: exact, except that
    /// the port of a loopback URI is ignored.
    /// The requested URI must itself pass the rules: `Url::parse` alone
    /// would drop tabs, newlines and surrounding spaces before comparing.
    pub fn matches(&self, requested: &str) -> bool {
        let Ok(req) = Self::parse(requested) else {
            return false;
        };
        if !self.loopback {
            return req.url == self.url;
        }
        req.loopback
            && req.url.scheme() == self.url.scheme()
            && req.url.host() == self.url.host()
            && req.url.path() == self.url.path()
            && req.url.query() == self.url.query()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_any_port_and_https() {
        for ok in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:33418/callback",
            "http://localhost:6274/oauth/callback",
            "http://[::1]:9/cb",
            "https://claude.ai/api/mcp/auth_callback",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "javascript:alert(1)",
            "http://evil.example/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.example/cb",
            "https://x.example/cb#frag",
            "https://user:pw@x.example/cb",
            "data:text/html,hi",
            "file:///etc/passwd",
            "/relative",
            "",
            "com.example.app:/cb",
            "http://127.0.0.1/cb with space",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_port_is_ignored_but_path_is_exact() {
        let r = RedirectUri::parse("http://127.0.0.1:1000/callback").expect("ok");
        assert!(r.matches("http://127.0.0.1:5555/callback"));
        assert!(r.matches("http://127.0.0.1/callback"));
        assert!(!r.matches("http://127.0.0.1:1000/callback2"));
        assert!(!r.matches("http://localhost:1000/callback"));
        assert!(!r.matches("http://127.0.0.1:1000/callback?x=1"));
        assert!(!r.matches("http://127.0.0.1:1000/callback#x"));
    }

    #[test]
    fn https_is_exact() {
        let r = RedirectUri::parse("https://app.example/cb").expect("ok");
        assert!(r.matches("https://app.example/cb"));
        assert!(!r.matches("https://app.example:8443/cb"));
        assert!(!r.matches("https://app.example/cb/"));
    }

    #[test]
    fn requested_uri_must_pass_the_rules_too() {
        // Found by fuzz/redirect_uri: Url::parse strips tabs, newlines and
        // outer spaces, so these matched the registered URI.
        let r = RedirectUri::parse("https://app.example/cb").expect("ok");
        for bad in [
            "https://app.example/c\tb",
            "https://app.example/cb\n",
            " https://app.example/cb",
            "https://app.example/cb#",
        ] {
            assert!(!r.matches(bad), "{bad:?}");
        }
        assert!(r.matches("https://APP.example:443/cb"));
    }
}
