//! RFC 9728 and RFC 8414 discovery documents (DESIGN §4).

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::support::{Harness, Reply};

async fn get_as(h: &Harness, path: &str, host: &str) -> Reply {
    let r = h
        .http
        .get(h.url(path))
        .header("host", host)
        .send()
        .await
        .expect("GET metadata");
    Reply::read(r).await
}

fn hosts(h: &Harness) -> [String; 3] {
    [
        format!("127.0.0.1:{}", h.port),
        format!("localhost:{}", h.port),
        format!("[::1]:{}", h.port),
    ]
}

fn expected_resource(host: &str) -> Value {
    json!({
        "resource": format!("http://{host}/mcp"),
        "authorization_servers": [format!("http://{host}")],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp"],
        "resource_name": "Spor Companion",
    })
}

#[tokio::test]
async fn protected_resource_metadata_at_the_mcp_path_is_spelled_with_the_host_the_client_used() {
    let h = Harness::start().await;
    for host in hosts(&h) {
        let r = get_as(&h, "/.well-known/oauth-protected-resource/mcp", &host).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json(), expected_resource(&host), "{host}");
    }
    h.stop().await;
}

#[tokio::test]
async fn protected_resource_metadata_at_the_root_path_is_the_same_document() {
    let h = Harness::start().await;
    for host in hosts(&h) {
        let r = get_as(&h, "/.well-known/oauth-protected-resource", &host).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.text);
        assert_eq!(r.json(), expected_resource(&host), "{host}");
    }
    h.stop().await;
}

#[tokio::test]
async fn authorization_server_metadata_lists_every_contract_field_for_the_host_the_client_used() {
    let h = Harness::start().await;
    for host in hosts(&h) {
        let r = get_as(&h, "/.well-known/oauth-authorization-server", &host).await;
        assert_eq!(r.status, StatusCode::OK, "{host}: {}", r.text);
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let base = format!("http://{host}");
        assert_eq!(
            r.json(),
            json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/oauth/authorize"),
                "token_endpoint": format!("{base}/oauth/token"),
                "registration_endpoint": format!("{base}/oauth/register"),
                "revocation_endpoint": format!("{base}/oauth/revoke"),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "revocation_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["mcp", "offline_access"],
                "authorization_response_iss_parameter_supported": true,
                "client_id_metadata_document_supported": true,
            }),
            "{host}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn issuer_is_identical_to_the_authorization_server_the_resource_names() {
    let h = Harness::start().await;
    for host in hosts(&h) {
        let pr = get_as(&h, "/.well-known/oauth-protected-resource/mcp", &host)
            .await
            .json();
        let as_ = get_as(&h, "/.well-known/oauth-authorization-server", &host)
            .await
            .json();
        assert_eq!(as_["issuer"], pr["authorization_servers"][0], "{host}");
        assert_eq!(
            pr["authorization_servers"].as_array().map(Vec::len),
            Some(1)
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn openid_configuration_is_not_served() {
    let h = Harness::start().await;
    let r = h.get("/.well-known/openid-configuration").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "not_found");
    h.stop().await;
}

#[tokio::test]
async fn offline_access_is_offered_by_the_authorization_server_only() {
    // SEP-2207: the resource's metadata and its challenges name what the
    // resource needs; offline_access is the authorization server's business.
    let h = Harness::start().await;
    let host = format!("127.0.0.1:{}", h.port);
    let as_ = get_as(&h, "/.well-known/oauth-authorization-server", &host).await;
    assert_eq!(
        as_.json()["scopes_supported"],
        json!(["mcp", "offline_access"])
    );
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let pr = get_as(&h, path, &host).await;
        assert_eq!(pr.json()["scopes_supported"], json!(["mcp"]), "{path}");
        assert!(!pr.text.contains("offline_access"), "{path}: {}", pr.text);
    }
    for authorization in [None, Some("Bearer spor_oat_not_a_token")] {
        let r = h.mcp_with(authorization).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        let challenge = r.header("www-authenticate").expect("challenge");
        assert!(!challenge.contains("offline_access"), "{challenge}");
    }
    h.stop().await;
}
