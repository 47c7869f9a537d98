//! The `/v1` routes and the error envelope.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{assert_error, assert_unauthorized, Sandbox};

const ALICE: &[&str] = &["--name", "Alice", "--email", "alice@example.com"];

fn args<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

fn prefix_of(token: &str) -> String {
    let hex: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex[..12].to_owned()
}

fn is_rfc3339_utc(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && s.chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19) || c.is_ascii_digit())
}

#[test]
fn me_for_a_bound_person() {
    let sb = Sandbox::start();
    let admin = sb.mint(&args(
        ALICE,
        &["--org", "acme", "--admin", "--label", "laptop"],
    ));
    let plain = sb.mint(&args(ALICE, &["--org", "acme"]));

    let resp = sb.get("/v1/me", &admin);
    assert_eq!(resp.status, 200);
    assert!(resp
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    let me = resp.json();
    let person = me["person"].as_str().expect("person id").to_owned();
    assert!(person.starts_with("per_"), "{person}");
    assert_eq!(
        me,
        json!({
            "person": person,
            "name": "Alice",
            "email": "alice@example.com",
            "bound": true,
            "is_admin": true,
            "org": "acme",
        })
    );

    // Same email → same person; admin is per token.
    let me2 = sb.get("/v1/me", &plain).json();
    assert_eq!(me2["person"], person.as_str());
    assert_eq!(me2["is_admin"], false);

    // Email matching is case-insensitive.
    let upper = sb.mint(&[
        "--name",
        "Alice",
        "--email",
        "ALICE@example.com",
        "--org",
        "acme",
    ]);
    assert_eq!(sb.get("/v1/me", &upper).json()["person"], person.as_str());
}

#[test]
fn me_for_an_unbound_token() {
    let sb = Sandbox::start();
    let token = sb.mint(&["--unbound", "--org", "acme"]);
    let resp = sb.get("/v1/me", &token);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        json!({
            "person": null,
            "name": null,
            "email": null,
            "bound": false,
            "is_admin": false,
            "org": "acme",
        })
    );
}

#[test]
fn every_route_rejects_missing_and_invalid_tokens() {
    let sb = Sandbox::start();
    let routes = [
        ("GET", "/v1/me"),
        ("GET", "/v1/me/org-choices"),
        ("GET", "/v1/me/tokens"),
        ("DELETE", "/v1/me/tokens/0123456789ab"),
    ];
    for (method, path) in routes {
        assert_unauthorized(&sb.request(method, path, None), "missing bearer token");
        assert_unauthorized(
            &sb.request(method, path, Some("Basic YWxpY2U6cHc=")),
            "missing bearer token",
        );
        assert_unauthorized(
            &sb.request(method, path, Some("Bearer ")),
            "missing bearer token",
        );
        let bogus = "spor_pat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let resp = sb.request(method, path, Some(&format!("Bearer {bogus}")));
        assert_unauthorized(&resp, "invalid token");
        assert!(!resp.text().contains(bogus), "token echoed");
        let resp = sb.request(method, path, Some("Bearer not-a-spor-token"));
        assert_unauthorized(&resp, "invalid token");
        assert!(!resp.text().contains("not-a-spor-token"), "token echoed");
    }
    // The scheme is case-insensitive.
    let token = sb.mint(&args(ALICE, &["--org", "acme"]));
    let resp = sb.request("GET", "/v1/me", Some(&format!("bearer {token}")));
    assert_eq!(resp.status, 200);
}

#[test]
fn expired_token_is_rejected_and_listed_as_expired() {
    let sb = Sandbox::start();
    let live = sb.mint(&args(ALICE, &["--org", "acme", "--expires-in-days", "30"]));
    let expired = sb.mint(&args(
        ALICE,
        &["--org", "acme", "--expires-in-days", "0", "--label", "old"],
    ));

    let resp = sb.get("/v1/me", &expired);
    assert_unauthorized(&resp, "token expired");
    assert!(!resp.text().contains(&expired));

    let list = sb.get("/v1/me/tokens", &live).json();
    let tokens = list["tokens"].as_array().expect("tokens array");
    let find = |p: &str| {
        tokens
            .iter()
            .find(|t| t["hash_prefix"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("token {p} listed"))
    };
    let old = find(&prefix_of(&expired));
    assert_eq!(old["expired"], true);
    assert_eq!(old["label"], "old");
    assert_eq!(old["last_used"], Value::Null);
    let cur = find(&prefix_of(&live));
    assert_eq!(cur["expired"], false);
    assert!(is_rfc3339_utc(&cur["expires"]), "{cur}");
    assert!(cur["expires"].as_str() > cur["created"].as_str());
}

#[test]
fn org_choices_for_a_multi_org_person() {
    let sb = Sandbox::start();
    let acme = sb.mint(&args(ALICE, &["--org", "acme", "--member-of", "globex"]));
    let initech = sb.mint(&args(ALICE, &["--org", "initech"]));
    // Someone else's memberships must not show up.
    sb.mint(&[
        "--name",
        "Bob",
        "--email",
        "bob@example.com",
        "--org",
        "umbrella",
    ]);

    let resp = sb.get("/v1/me/org-choices", &acme);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        json!({
            "org_choices": [
                {"slug": "acme", "label": "Acme", "default": true},
                {"slug": "globex", "label": "Globex"},
                {"slug": "initech", "label": "Initech"},
            ],
            "source": "idp",
        })
    );

    let resp = sb.get("/v1/me/org-choices", &initech);
    assert_eq!(
        resp.json(),
        json!({
            "org_choices": [
                {"slug": "initech", "label": "Initech", "default": true},
                {"slug": "acme", "label": "Acme"},
                {"slug": "globex", "label": "Globex"},
            ],
            "source": "idp",
        })
    );
}

#[test]
fn org_choices_for_an_unbound_token() {
    let sb = Sandbox::start();
    let token = sb.mint(&["--unbound", "--org", "acme-labs"]);
    assert_eq!(
        sb.get("/v1/me/org-choices", &token).json(),
        json!({
            "org_choices": [{"slug": "acme-labs", "label": "Acme-labs", "default": true}],
            "source": "bound",
        })
    );
}

#[test]
fn token_list_shows_only_the_persons_tokens() {
    let sb = Sandbox::start();
    let a1 = sb.mint(&args(ALICE, &["--org", "acme", "--label", "laptop"]));
    let a2 = sb.mint(&args(ALICE, &["--org", "globex"]));
    let bob = sb.mint(&[
        "--name",
        "Bob",
        "--email",
        "bob@example.com",
        "--org",
        "acme",
    ]);

    let resp = sb.get("/v1/me/tokens", &a1);
    assert_eq!(resp.status, 200);
    let list = resp.json();
    assert_eq!(list["count"], 2);
    let tokens = list["tokens"].as_array().expect("tokens array");
    assert_eq!(tokens.len(), 2);
    let mut prefixes: Vec<&str> = tokens
        .iter()
        .filter_map(|t| t["hash_prefix"].as_str())
        .collect();
    prefixes.sort_unstable();
    let mut want = vec![prefix_of(&a1), prefix_of(&a2)];
    want.sort_unstable();
    assert_eq!(prefixes, want);
    assert!(!prefixes.contains(&prefix_of(&bob).as_str()));

    for t in tokens {
        let keys: Vec<&str> = t
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        // Spor's documented row, exactly.
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created",
                "email",
                "expired",
                "expires",
                "hash_prefix",
                "label",
                "last_used",
                "name",
                "person",
            ],
            "{t}"
        );
        assert_eq!(t["name"], "Alice");
        assert_eq!(t["email"], "alice@example.com");
        assert!(t["person"].as_str().is_some_and(|p| !p.is_empty()), "{t}");
        assert!(is_rfc3339_utc(&t["created"]), "{t}");
        assert_eq!(t["expires"], Value::Null);
        assert_eq!(t["expired"], false);
        let text = t.to_string();
        assert!(!text.contains(&a1) && !text.contains(&a2), "secret listed");
    }
    let me = tokens
        .iter()
        .find(|t| t["hash_prefix"] == prefix_of(&a1).as_str())
        .expect("calling token");
    assert_eq!(me["label"], "laptop");
    assert!(is_rfc3339_utc(&me["last_used"]), "calling token was used");
    let other = tokens
        .iter()
        .find(|t| t["hash_prefix"] == prefix_of(&a2).as_str())
        .expect("other token");
    assert_eq!(other["person"], me["person"], "both are Alice's");
    assert_eq!(other["label"], Value::Null);
    assert_eq!(other["last_used"], Value::Null);

    // Unbound: only the calling token.
    let unbound = sb.mint(&["--unbound", "--org", "acme"]);
    let list = sb.get("/v1/me/tokens", &unbound).json();
    assert_eq!(list["count"], 1);
    assert_eq!(
        list["tokens"][0]["hash_prefix"],
        prefix_of(&unbound).as_str()
    );
    for k in ["person", "name", "email"] {
        assert_eq!(
            list["tokens"][0][k],
            Value::Null,
            "an unbound token has no {k}"
        );
    }
}

#[test]
fn revoke_a_token_then_it_is_rejected() {
    let sb = Sandbox::start();
    let keep = sb.mint(&args(ALICE, &["--org", "acme"]));
    let drop_me = sb.mint(&args(ALICE, &["--org", "globex"]));
    let bob = sb.mint(&[
        "--name",
        "Bob",
        "--email",
        "bob@example.com",
        "--org",
        "acme",
    ]);
    assert_eq!(sb.get("/v1/me", &drop_me).status, 200);

    // Unknown prefix, malformed prefix and someone else's token: 404.
    let resp = sb.delete("/v1/me/tokens/000000000000", &keep);
    assert_eq!(assert_error(&resp, 404, "not_found"), "no such token");
    let resp = sb.delete("/v1/me/tokens/zz", &keep);
    assert_error(&resp, 404, "not_found");
    let resp = sb.delete(&format!("/v1/me/tokens/{}", prefix_of(&bob)), &keep);
    assert_error(&resp, 404, "not_found");
    assert_eq!(sb.get("/v1/me", &bob).status, 200, "bob untouched");

    let p = prefix_of(&drop_me);
    let resp = sb.delete(&format!("/v1/me/tokens/{p}"), &keep);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"revoked": true, "hash_prefix": p, "oauth_grants_revoked": 0})
    );

    assert_unauthorized(&sb.get("/v1/me", &drop_me), "token revoked");
    assert_unauthorized(&sb.get("/v1/me/tokens", &drop_me), "token revoked");
    let list = sb.get("/v1/me/tokens", &keep).json();
    assert_eq!(list["count"], 1);
    assert_eq!(list["tokens"][0]["hash_prefix"], prefix_of(&keep).as_str());

    // Revoking twice: already gone.
    let resp = sb.delete(&format!("/v1/me/tokens/{p}"), &keep);
    assert_error(&resp, 404, "not_found");

    // Revoking the calling token itself is allowed (upper-case prefix too).
    let own = prefix_of(&keep).to_ascii_uppercase();
    let resp = sb.delete(&format!("/v1/me/tokens/{own}"), &keep);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["hash_prefix"], prefix_of(&keep).as_str());
    assert_unauthorized(&sb.get("/v1/me", &keep), "token revoked");
}

#[test]
fn unbound_token_can_revoke_only_itself() {
    let sb = Sandbox::start();
    let alice = sb.mint(&args(ALICE, &["--org", "acme"]));
    let unbound = sb.mint(&["--unbound", "--org", "acme"]);
    let resp = sb.delete(&format!("/v1/me/tokens/{}", prefix_of(&alice)), &unbound);
    assert_error(&resp, 404, "not_found");
    let resp = sb.delete(&format!("/v1/me/tokens/{}", prefix_of(&unbound)), &unbound);
    assert_eq!(resp.status, 200);
    assert_unauthorized(&sb.get("/v1/me", &unbound), "token revoked");
    assert_eq!(sb.get("/v1/me", &alice).status, 200);
}

#[test]
fn unknown_routes_and_methods_get_the_envelope() {
    let sb = Sandbox::start();
    let token = sb.mint(&args(ALICE, &["--org", "acme"]));
    for auth in [None, Some(format!("Bearer {token}"))] {
        let resp = sb.request("GET", "/v1/nope", auth.as_deref());
        assert_eq!(assert_error(&resp, 404, "not_found"), "no such route");
        let resp = sb.request("GET", "/", auth.as_deref());
        assert_error(&resp, 404, "not_found");
    }
    let resp = sb.request("POST", "/v1/me", Some(&format!("Bearer {token}")));
    assert_error(&resp, 405, "bad_request");
    let resp = sb.request("GET", "/v1/me/tokens/abc", Some(&format!("Bearer {token}")));
    assert_error(&resp, 405, "bad_request");
}

#[test]
fn fault_org_choices_502() {
    let sb = Sandbox::start_with_env(&[("SPOR_SANDBOX_FAULTS", "org-choices-502")]);
    let token = sb.mint(&args(ALICE, &["--org", "acme"]));
    let resp = sb.get("/v1/me/org-choices", &token);
    assert_error(&resp, 502, "internal");
    // Authentication still comes first, and other routes are unaffected.
    assert_unauthorized(
        &sb.request("GET", "/v1/me/org-choices", None),
        "missing bearer token",
    );
    assert_eq!(sb.get("/v1/me", &token).status, 200);
}

#[test]
fn fault_org_choices_404() {
    let sb = Sandbox::start_with_env(&[("SPOR_SANDBOX_FAULTS", "org-choices-404")]);
    let token = sb.mint(&args(ALICE, &["--org", "acme"]));
    let resp = sb.get("/v1/me/org-choices", &token);
    assert_error(&resp, 404, "not_found");
    assert_eq!(sb.get("/v1/me/tokens", &token).status, 200);
}

#[test]
fn no_secret_reaches_disk_or_logs() {
    let sb = Sandbox::start();
    let token = sb.mint(&args(ALICE, &["--org", "acme"]));
    let revoked = sb.mint(&args(ALICE, &["--org", "acme"]));
    assert_eq!(sb.get("/v1/me", &token).status, 200);
    sb.delete(&format!("/v1/me/tokens/{}", prefix_of(&revoked)), &token);
    sb.get("/v1/me", &revoked);
    sb.request("GET", "/v1/me", Some("Bearer spor_pat_guess"));

    let (status, dir) = sb.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).expect("stderr log");
    for secret in [&token, &revoked, "spor_pat_guess"] {
        assert!(!log.contains(secret), "{secret} in server stderr");
    }
    for entry in std::fs::read_dir(dir.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read file");
        for secret in [&token, &revoked, "spor_pat_guess"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} found in {}",
                path.display()
            );
        }
    }
}
