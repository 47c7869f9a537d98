//! The bridge's OAuth client against the real server: tokens are refreshed
//! before they expire, rotations are stored, and a token another bridge
//! already renewed is picked up instead of rotating again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use spor_companion::bridge::oauth::{ClientSettings, OAuthClient};
use spor_companion::secrets::{MemoryStore, SecretStore};
use spor_companion::sensitive::Sensitive;

use crate::support::{Harness, Tokens};

const HOST: &str = "Test host via Spor bridge";
const THIRTY_DAYS: i64 = 30 * 86_400;

fn client(h: &Harness, store: &MemoryStore) -> OAuthClient {
    let settings = ClientSettings {
        resource: url::Url::parse(&h.url("/mcp")).expect("url"),
        client_name: HOST.into(),
        callback_port: 0,
        auth_timeout: Duration::from_secs(1),
        lock_path: h.dir.path().join("bridge").join("test.lock"),
    };
    OAuthClient::new(
        settings,
        SecretStore::new(store.clone()),
        Arc::new(h.clock.clone()),
    )
    .expect("client")
}

fn key(h: &Harness) -> String {
    format!("{}#{HOST}", h.url("/mcp"))
}

fn stored(h: &Harness, store: &MemoryStore) -> Value {
    let raw = store.entries().get(&key(h)).cloned().expect("stored");
    serde_json::from_str(&raw).expect("json")
}

fn put(h: &Harness, store: &MemoryStore, client_id: &str, t: &Tokens, expires_at: i64) {
    let v = json!({
        "issuer": h.base,
        "client_id": client_id,
        "access_token": t.access,
        "refresh_token": t.refresh,
        "expires_at": expires_at,
    });
    SecretStore::new(store.clone())
        .set_blocking(&key(h), &Sensitive::new(v.to_string()))
        .expect("store");
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_first_and_the_rotation_stored() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let store = MemoryStore::default();
    put(&h, &store, &c.client_id, &c.tokens, h.now() + THIRTY_DAYS);
    let bridge = client(&h, &store);

    let first = bridge.access_token(None).await.expect("stored token");
    assert_eq!(first.expose(), &c.tokens.access, "fresh: used as stored");

    // Inside the last minute: renewed before use, not after a 401.
    h.clock.advance(THIRTY_DAYS - 30);
    let second = bridge.access_token(None).await.expect("refreshed");
    assert_ne!(second.expose(), &c.tokens.access);
    let s = stored(&h, &store);
    assert_eq!(s["access_token"], second.expose().as_str());
    assert_ne!(s["refresh_token"], c.tokens.refresh.as_str(), "rotated");
    assert_eq!(s["client_id"], c.client_id.as_str());
    assert_eq!(h.grant_of(second.expose()).await, c.grant_id, "same grant");

    // The rotated pair works at the gateway's token check: a second refresh
    // with the stored refresh token succeeds.
    let again = h
        .refresh(&c.client_id, s["refresh_token"].as_str().expect("refresh"))
        .await;
    Tokens::from_reply(&again);
    h.stop().await;
}

#[tokio::test]
async fn a_token_another_bridge_renewed_is_taken_without_rotating_again() {
    let h = Harness::start().await;
    let c = h.connect().await;
    let store = MemoryStore::default();
    put(&h, &store, &c.client_id, &c.tokens, h.now() + THIRTY_DAYS);
    let bridge = client(&h, &store);
    let mine = bridge.access_token(None).await.expect("stored token");

    // Another bridge refreshed and stored the successor meanwhile.
    let other = Tokens::from_reply(&h.refresh(&c.client_id, &c.tokens.refresh).await);
    put(&h, &store, &c.client_id, &other, h.now() + THIRTY_DAYS);

    // Our token got a 401: the stored successor is used as is.
    let renewed = bridge.renew(Some(&mine), None).await.expect("renewed");
    assert_eq!(renewed.expose(), &other.access);
    assert_eq!(
        stored(&h, &store)["refresh_token"],
        other.refresh.as_str(),
        "not rotated again"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_client_the_server_forgot_registers_again_before_asking_the_person() {
    // `true` as the browser: nobody approves, so authorization times out
    // after the (re-)registration this test is about.
    std::env::set_var("BROWSER", "true");
    let h = Harness::start().await;
    let c = h.connect().await;
    let store = MemoryStore::default();
    put(
        &h,
        &store,
        "client_the_server_never_saw",
        &c.tokens,
        h.now() + THIRTY_DAYS,
    );
    let bridge = client(&h, &store);
    let mine = bridge.access_token(None).await.expect("stored token");

    let err = bridge
        .renew(Some(&mine), None)
        .await
        .expect_err("nobody approves");
    assert_eq!(
        err.to_string(),
        "nobody approved the connection within 1 s. Ask your assistant to connect again to retry."
    );
    let s = stored(&h, &store);
    let fresh_id = s["client_id"].as_str().expect("client_id");
    assert!(fresh_id.starts_with("client_") && fresh_id != "client_the_server_never_saw");
    assert_ne!(fresh_id, c.client_id);
    assert_eq!(s.get("access_token"), None, "the dead tokens are gone");
    assert_eq!(s.get("refresh_token"), None);
    h.stop().await;
}
