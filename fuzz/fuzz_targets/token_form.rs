//! The token endpoint's form (POST /oauth/token), up to the database.
//!
//! Input: the request body. Runs `parse_form`, `check_request` and
//! `TokenRequest::grant` as the handler does.
//! Checks: non-UTF-8 and repeated parameters are refused, nothing else is at
//! the parsing step and values are decoded as the form grammar says; an
//! accepted request names a supported grant type and a client, and a
//! resource only if it is our /mcp; an authorization_code grant carries a
//! code and an RFC 7636 verifier; a refresh_token grant carries a token and
//! only the scopes we grant; refusals have the right OAuth error; secrets never show in
//! `Debug`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spor_wire::host::LocalHost;
use spor_wire::oauth::token::{check_request as check_token, Grant};
use spor_wire::oauth::{parse_form, OAuthError};
use spor_companion_fuzz::{
    is_our_resource, is_pkce_verifier, param, refresh_scope_ok, unique_params, OUR_HOST,
};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_form(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(
            matches!(parsed, Err(OAuthError::InvalidRequest(_))),
            "non-UTF-8 body accepted"
        );
        return;
    };
    let expected = unique_params(text);
    let p = match parsed {
        Ok(p) => p,
        Err(e) => {
            assert!(matches!(e, OAuthError::InvalidRequest(_)));
            assert!(expected.is_none(), "refused a form without repeats: {e:?}");
            return;
        }
    };
    assert_eq!(
        Some(&p),
        expected.as_ref(),
        "parse differs from the form grammar"
    );

    let host = LocalHost(OUR_HOST.into());
    let req = match check_token(&p, &host) {
        Ok(r) => r,
        Err(e) => {
            match &e {
                OAuthError::InvalidRequest(_) => {
                    assert!(param(&p, "grant_type").is_none() || param(&p, "client_id").is_none())
                }
                OAuthError::UnsupportedGrantType(_) => assert!(!matches!(
                    param(&p, "grant_type"),
                    None | Some("authorization_code" | "refresh_token")
                )),
                OAuthError::InvalidTarget(_) => {
                    assert!(!is_our_resource(&p["resource"]))
                }
                other => panic!("unexpected error {other:?}"),
            }
            return;
        }
    };
    assert_eq!(Some(req.grant_type.as_str()), param(&p, "grant_type"));
    assert!(matches!(
        req.grant_type.as_str(),
        "authorization_code" | "refresh_token"
    ));
    assert_eq!(Some(req.client_id), param(&p, "client_id"));
    if let Some(r) = p.get("resource") {
        assert!(is_our_resource(r), "resource {r:?} accepted");
    }

    let grant = match req.grant() {
        Ok(g) => g,
        Err(e) => {
            match (&e, req.grant_type.as_str()) {
                (OAuthError::InvalidRequest(_), "authorization_code") => assert!(
                    param(&p, "code").is_none()
                        || !param(&p, "code_verifier").is_some_and(is_pkce_verifier)
                ),
                (OAuthError::InvalidRequest(_), _) => {
                    assert!(param(&p, "refresh_token").is_none())
                }
                (OAuthError::InvalidScope(_), "refresh_token") => {
                    assert!(!refresh_scope_ok(p.get("scope").map(String::as_str)))
                }
                other => panic!("unexpected error {other:?}"),
            }
            return;
        }
    };
    let shown = format!("{grant:?}");
    match &grant {
        Grant::AuthorizationCode {
            code,
            verifier,
            redirect_uri,
        } => {
            assert_eq!(req.grant_type.as_str(), "authorization_code");
            assert_eq!(Some(code.expose().as_str()), param(&p, "code"));
            assert_eq!(Some(verifier.expose().as_str()), param(&p, "code_verifier"));
            assert!(
                is_pkce_verifier(verifier.expose()),
                "verifier {:?}",
                verifier.expose()
            );
            // Code and verifier are redacted in Debug; only the redirect URI shows.
            assert_eq!(
                shown,
                format!("AuthorizationCode {{ code: <redacted>, verifier: <redacted>, redirect_uri: {redirect_uri:?} }}")
            );
            assert_eq!(redirect_uri.as_deref(), param(&p, "redirect_uri"));
        }
        Grant::RefreshToken { refresh_token } => {
            assert_eq!(req.grant_type.as_str(), "refresh_token");
            assert_eq!(
                Some(refresh_token.expose().as_str()),
                param(&p, "refresh_token")
            );
            assert!(refresh_scope_ok(p.get("scope").map(String::as_str)));
            assert_eq!(shown, "RefreshToken { refresh_token: <redacted> }");
        }
    }
});
