//! Finding the authorization server for the MCP endpoint: RFC 9728
//! protected-resource metadata, then RFC 8414 authorization-server metadata,
//! with the resource and the issuer checked, and every endpoint on the MCP
//! endpoint's own origin.

use serde_json::Value;
use url::Url;

use super::error::AuthError;
use super::http::{read_json, send};

/// Endpoints found by discovery.
#[derive(Clone, Debug)]
pub(super) struct Endpoints {
    pub(super) issuer: String,
    pub(super) authorization: Url,
    pub(super) token: Url,
    pub(super) registration: Option<Url>,
    pub(super) iss_parameter: bool,
}

/// The well-known URL for `suffix` under `base`, path-inserted (RFC 8414 §3.1,
/// RFC 9728 §3.1).
fn well_known(base: &Url, suffix: &str) -> Url {
    let mut u = base.clone();
    let path = base.path().trim_end_matches('/');
    u.set_path(&format!("/.well-known/{suffix}{path}"));
    u.set_query(None);
    u.set_fragment(None);
    u
}

/// Pulls `resource_metadata="…"` out of a `WWW-Authenticate` value.
pub fn resource_metadata_hint(www_authenticate: &str) -> Option<String> {
    let at = www_authenticate.find("resource_metadata=")?;
    let rest = &www_authenticate[at + "resource_metadata=".len()..];
    let value = match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split([',', ' ']).next()?,
    };
    Some(value.to_string())
}

/// `url` when it is on `resource`'s origin (scheme, host and port). The
/// bridge was told where Spor Companion is and talks to nobody else: a
/// server whose metadata names another one gets nothing sent there, no
/// registration, no code exchange, no refresh token.
fn on_origin(what: &'static str, url: Url, resource: &Url) -> Result<Url, AuthError> {
    if url.origin() == resource.origin() {
        return Ok(url);
    }
    Err(AuthError::ForeignOrigin {
        what,
        url: url.to_string(),
        origin: resource.origin().ascii_serialization(),
    })
}

fn same_resource(a: &str, b: &Url) -> bool {
    a.trim_end_matches('/') == b.as_str().trim_end_matches('/')
}

async fn get_json(http: &reqwest::Client, url: &Url) -> Result<Option<Value>, AuthError> {
    let request = http.get(url.clone()).header("accept", "application/json");
    let resp = send(url, request).await?;
    if !resp.status().is_success() {
        return Ok(None);
    }
    Ok(read_json(resp).await.ok())
}

/// The endpoints of the authorization server that protects `resource`.
/// `hint` is the `resource_metadata` URL from a 401, if any.
pub(super) async fn discover(
    http: &reqwest::Client,
    resource: &Url,
    hint: Option<&str>,
) -> Result<Endpoints, AuthError> {
    let mut candidates = Vec::new();
    if let Some(h) = hint.and_then(|h| Url::parse(h).ok()) {
        // Only a same-origin hint, like every endpoint below; another
        // one is not an error, the well-known places are tried instead.
        if h.origin() == resource.origin() {
            candidates.push(h);
        }
    }
    candidates.push(well_known(resource, "oauth-protected-resource"));
    let mut root = resource.clone();
    root.set_path("/");
    candidates.push(well_known(&root, "oauth-protected-resource"));
    let mut prm = None;
    for c in &candidates {
        if let Some(v) = get_json(http, c).await? {
            prm = Some(v);
            break;
        }
    }
    let prm = prm.ok_or_else(|| {
        AuthError::Discovery(format!(
            "{resource} does not publish OAuth protected-resource metadata"
        ))
    })?;
    if let Some(r) = prm.get("resource").and_then(Value::as_str) {
        if !same_resource(r, resource) {
            return Err(AuthError::Discovery(format!(
                "the protected-resource metadata names {r}, not {resource}"
            )));
        }
    }
    let issuer = prm
        .get("authorization_servers")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::Discovery("no authorization server is named".into()))?
        .to_string();
    let issuer_url =
        Url::parse(&issuer).map_err(|_| AuthError::Discovery(format!("bad issuer {issuer:?}")))?;
    let issuer_url = on_origin("authorization server", issuer_url, resource)?;
    let asm = get_json(http, &well_known(&issuer_url, "oauth-authorization-server"))
        .await?
        .ok_or_else(|| {
            AuthError::Discovery(format!(
                "{issuer} publishes no authorization-server metadata"
            ))
        })?;
    if asm.get("issuer").and_then(Value::as_str) != Some(issuer.as_str()) {
        return Err(AuthError::Discovery(format!(
            "the authorization-server metadata does not name {issuer} as its issuer"
        )));
    }
    if let Some(methods) = asm
        .get("code_challenge_methods_supported")
        .and_then(Value::as_array)
    {
        if !methods.iter().any(|m| m == "S256") {
            return Err(AuthError::Discovery(format!(
                "{issuer} does not support PKCE S256"
            )));
        }
    }
    let url_of = |field: &'static str| -> Result<Option<Url>, AuthError> {
        match asm.get(field).and_then(Value::as_str) {
            None => Ok(None),
            Some(s) => Url::parse(s)
                .map_err(|_| AuthError::Discovery(format!("bad {field} {s:?}")))
                .and_then(|u| on_origin(field, u, resource))
                .map(Some),
        }
    };
    let missing = |f: &str| AuthError::Discovery(format!("{issuer} has no {f}"));
    Ok(Endpoints {
        authorization: url_of("authorization_endpoint")?
            .ok_or_else(|| missing("authorization_endpoint"))?,
        token: url_of("token_endpoint")?.ok_or_else(|| missing("token_endpoint"))?,
        registration: url_of("registration_endpoint")?,
        iss_parameter: asm
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        issuer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_are_path_inserted() {
        let r = Url::parse("http://127.0.0.1:7767/mcp").expect("url");
        assert_eq!(
            well_known(&r, "oauth-protected-resource").as_str(),
            "http://127.0.0.1:7767/.well-known/oauth-protected-resource/mcp"
        );
        let i = Url::parse("http://127.0.0.1:7767").expect("url");
        assert_eq!(
            well_known(&i, "oauth-authorization-server").as_str(),
            "http://127.0.0.1:7767/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn only_endpoints_on_the_resources_own_origin_are_accepted() {
        let resource = Url::parse("http://127.0.0.1:7767/mcp").expect("url");
        for ok in [
            "http://127.0.0.1:7767/oauth/token",
            "http://127.0.0.1:7767",
            "http://127.0.0.1:7767/elsewhere?x=1",
        ] {
            let u = Url::parse(ok).expect("url");
            assert_eq!(
                on_origin("token_endpoint", u.clone(), &resource).expect(ok),
                u
            );
        }
        for bad in [
            "http://127.0.0.1:7768/oauth/token",
            "https://127.0.0.1:7767/oauth/token",
            "http://localhost:7767/oauth/token",
            "http://[::1]:7767/oauth/token",
            "https://auth.example/oauth/token",
        ] {
            let e = on_origin("token_endpoint", Url::parse(bad).expect("url"), &resource)
                .expect_err(bad);
            assert_eq!(
                e.to_string(),
                format!(
                    "the token_endpoint {} is not on http://127.0.0.1:7767, where the bridge was \
                     told Spor Companion is; nothing is sent there",
                    Url::parse(bad).expect("url")
                )
            );
        }
        // The default port is the same origin as naming it.
        let https = Url::parse("https://mcp.spor.example/mcp").expect("url");
        on_origin(
            "authorization server",
            Url::parse("https://mcp.spor.example:443").expect("url"),
            &https,
        )
        .expect("same origin");
    }

    #[test]
    fn resource_metadata_is_read_quoted_or_bare() {
        assert_eq!(
            resource_metadata_hint(
                r#"Bearer error="invalid_token", resource_metadata="http://h/x""#
            )
            .as_deref(),
            Some("http://h/x")
        );
        assert_eq!(
            resource_metadata_hint("Bearer resource_metadata=http://h/y, error=x").as_deref(),
            Some("http://h/y")
        );
        assert_eq!(resource_metadata_hint("Bearer realm=x"), None);
        assert_eq!(
            resource_metadata_hint(r#"Bearer resource_metadata="unterminated"#),
            None
        );
    }
}
