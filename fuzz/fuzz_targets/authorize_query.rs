//! The authorization request (GET /oauth/authorize) without a server.
//!
//! Input: UTF-8 text; line 1 is the query string, further lines are the
//! client's registered redirect URIs. Runs the production steps in order:
//! `parse_params`, `select_redirect`, `check_request`, and builds the error
//! redirect with `client_redirect`.
//! Checks: repeated parameters are refused and nothing else is; the chosen
//! redirect URI is the one requested (or the only registered one), matches a
//! registered URI and passes the rules itself; an accepted request has
//! response_type=code, S256 with a well-formed challenge, scope `mcp` only,
//! and a resource (if any) that is our /mcp; every refusal has a known
//! OAuth error code; the error redirect is a valid `Location` to the same
//! place carrying `error` and `iss`.
#![no_main]

use http::HeaderValue;
use libfuzzer_sys::fuzz_target;
use spor_companion_fuzz::{
    granted_scope, is_our_resource, is_s256_challenge, lines, param, scope_ok, unique_params,
    OUR_HOST,
};
use spor_wire::host::LocalHost;
use spor_wire::oauth::authorize::{
    check_request as check_authorize, client_redirect, select_redirect,
};
use spor_wire::oauth::parse_params;
use spor_wire::oauth::redirect_uri::RedirectUri;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Some(lines) = lines(data) else { return };
    let query = lines[0];
    let registered: Vec<String> = lines[1..].iter().take(10).map(|s| s.to_string()).collect();

    let expected = unique_params(query);
    let params = match parse_params(query) {
        Ok(p) => p,
        Err(e) => {
            assert!(expected.is_none(), "refused a query without repeats: {e:?}");
            return;
        }
    };
    assert_eq!(
        Some(&params),
        expected.as_ref(),
        "parse differs from the form grammar"
    );

    // 1. The redirect URI (errors shown, not redirected).
    let requested = param(&params, "redirect_uri");
    let parsed: Vec<(&String, RedirectUri)> = registered
        .iter()
        .filter_map(|r| RedirectUri::parse(r).ok().map(|p| (r, p)))
        .collect();
    let redirect_uri = match select_redirect(&registered, requested) {
        Ok((raw, reg)) => {
            assert!(reg.matches(&raw));
            assert!(
                RedirectUri::parse(&raw).is_ok(),
                "chose {raw:?}, which breaks the rules"
            );
            match requested {
                Some(r) => {
                    assert_eq!(raw, r);
                    assert!(parsed.iter().any(|(_, p)| p.matches(r)));
                }
                None => {
                    assert_eq!(parsed.len(), 1);
                    assert_eq!(&raw, parsed[0].0);
                }
            }
            raw
        }
        Err(msg) => {
            assert!(!msg.is_empty());
            match requested {
                Some(r) => assert!(!parsed.iter().any(|(_, p)| p.matches(r))),
                None => assert_ne!(parsed.len(), 1),
            }
            return;
        }
    };

    // 2. The rest (errors redirected back to the client).
    let host = LocalHost(OUR_HOST.into());
    match check_authorize(&params, &host) {
        Ok(c) => {
            assert_eq!(param(&params, "response_type"), Some("code"));
            assert_eq!(param(&params, "code_challenge_method"), Some("S256"));
            assert_eq!(
                param(&params, "code_challenge"),
                Some(c.code_challenge.as_str())
            );
            assert!(is_s256_challenge(&c.code_challenge));
            assert_eq!(c.scope, granted_scope(param(&params, "scope")));
            assert!(
                scope_ok(param(&params, "scope")),
                "scope {:?} granted",
                params.get("scope")
            );
            assert_eq!(c.resource.as_deref(), param(&params, "resource"));
            if let Some(r) = &c.resource {
                assert!(is_our_resource(r), "resource {r:?} accepted");
            }
        }
        Err((code, description)) => {
            assert!(!description.is_empty());
            match code {
                "unsupported_response_type" => {
                    assert_ne!(param(&params, "response_type"), Some("code"))
                }
                "invalid_scope" => assert!(!scope_ok(param(&params, "scope"))),
                "invalid_target" => {
                    assert!(!is_our_resource(param(&params, "resource").expect("sent")))
                }
                "invalid_request" => {}
                other => panic!("unknown error code {other:?}"),
            }
            // The error goes back to the client's redirect URI as a Location
            // header (axum's Redirect::to panics on an invalid one).
            let state = param(&params, "state");
            let location = client_redirect(
                &redirect_uri,
                &[("error", code), ("error_description", &description)],
                state,
                &host.issuer(),
            );
            assert!(
                HeaderValue::from_str(&location).is_ok(),
                "bad Location {location:?}"
            );
            let to = Url::parse(&location).expect("Location parses");
            let from = Url::parse(&redirect_uri).expect("redirect URI parses");
            assert_eq!(
                (to.scheme(), to.host(), to.port(), to.path()),
                (from.scheme(), from.host(), from.port(), from.path())
            );
            assert_eq!(to.fragment(), None);
            let q: Vec<(String, String)> = to.query_pairs().into_owned().collect();
            assert!(q.contains(&("error".into(), code.into())));
            assert!(q.contains(&("iss".into(), host.issuer())));
            if let Some(s) = state {
                assert!(q.contains(&("state".into(), s.into())));
            }
        }
    }
});
