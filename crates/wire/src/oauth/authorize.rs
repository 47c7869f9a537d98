//! The authorization request (`GET /oauth/authorize`): which registered
//! redirect URI it returns to, the checks whose failures go back to the
//! client, and the redirect that carries the answer.

use std::collections::HashMap;

use url::Url;

use super::redirect_uri::RedirectUri;
use super::{check_scope, param, pkce};
use crate::host::LocalHost;

/// Picks the redirect URI of an authorization request among the client's
/// registered ones: the requested one if it matches one of them, else the
/// only one registered. `Err` is the message shown (never redirected).
pub fn select_redirect(
    registered: &[String],
    requested: Option<&str>,
) -> Result<(String, RedirectUri), &'static str> {
    let mut parsed = registered
        .iter()
        .filter_map(|raw| RedirectUri::parse(raw).ok().map(|reg| (raw, reg)));
    match requested {
        Some(r) => parsed
            .find(|(_, reg)| reg.matches(r))
            .map(|(_, reg)| (r.to_string(), reg))
            .ok_or("The redirect_uri does not match any registered for this assistant."),
        None => match (parsed.next(), parsed.next()) {
            (Some((raw, reg)), None) => Ok((raw.clone(), reg)),
            _ => Err("The authorization request has no redirect_uri."),
        },
    }
}

/// What an authorization request asks for, once checked.
#[derive(Debug)]
pub struct CheckedRequest {
    /// The PKCE S256 code challenge.
    pub code_challenge: String,
    /// The scope granted: ours, plus `offline_access` when asked for.
    pub scope: String,
    /// The RFC 8707 resource, when named (then ours).
    pub resource: Option<String>,
}

/// The checks of an authorization request whose failures are redirected
/// back to the client, as `Err((error, error_description))`. They need no
/// state, so they run after the client and redirect URI are known.
pub fn check_request(
    params: &HashMap<String, String>,
    host: &LocalHost,
) -> Result<CheckedRequest, (&'static str, String)> {
    let get = |k: &str| param(params, k);
    let invalid = |d: &str| ("invalid_request", d.to_string());
    if get("response_type") != Some("code") {
        return Err((
            "unsupported_response_type",
            "response_type must be \"code\"".into(),
        ));
    }
    let Some(challenge) = get("code_challenge") else {
        return Err(invalid("code_challenge is required (PKCE with S256)"));
    };
    if get("code_challenge_method") != Some("S256") {
        return Err(invalid("code_challenge_method must be S256"));
    }
    if !pkce::valid_challenge(challenge) {
        return Err(invalid("code_challenge is not a valid S256 challenge"));
    }
    let scope =
        check_scope(get("scope")).map_err(|e| ("invalid_scope", e.description().to_string()))?;
    let resource = get("resource").map(str::to_string);
    if let Some(r) = &resource {
        if !host.is_our_resource(r) {
            return Err((
                "invalid_target",
                "resource must be this server's /mcp endpoint".into(),
            ));
        }
    }
    Ok(CheckedRequest {
        code_challenge: challenge.to_string(),
        scope,
        resource,
    })
}

/// Builds the client redirect: its URI plus our parameters, then `state` and `iss`.
pub fn client_redirect(
    redirect_uri: &str,
    params: &[(&str, &str)],
    state: Option<&str>,
    issuer: &str,
) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
                if let Some(s) = state {
                    q.append_pair("state", s);
                }
                q.append_pair("iss", issuer);
            }
            url.to_string()
        }
        // Registered URIs were parsed at registration; this cannot happen.
        Err(_) => redirect_uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_only_valid_registered_uri_is_the_one_used() {
        // A stored URI that no longer passes the rules is skipped, and the
        // URI used is the valid one, not the first stored.
        let registered = vec![
            "javascript:alert(1)".to_string(),
            "http://127.0.0.1/cb".into(),
        ];
        let (raw, _) = select_redirect(&registered, None).expect("one valid");
        assert_eq!(raw, "http://127.0.0.1/cb");
        let (raw, _) =
            select_redirect(&registered, Some("http://127.0.0.1:4000/cb")).expect("matches");
        assert_eq!(raw, "http://127.0.0.1:4000/cb");
        assert!(select_redirect(&registered, Some("javascript:alert(1)")).is_err());
        let two = vec![
            "http://127.0.0.1/a".to_string(),
            "http://127.0.0.1/b".into(),
        ];
        assert!(select_redirect(&two, None).is_err());
    }
}
