//! Seeding and reading the companion's state directly, not over HTTP:
//! accounts (row plus PAT in the secret store), grants, the call log and row
//! counts — what a test sets up before a flow or checks after it.

use std::time::Duration;

use spor_companion::sensitive::Sensitive;
use spor_companion::store::{AccountKind, CallRecord, NewAccount};
use spor_companion::tokens;

use super::harness::Harness;

/// Row counts of every table that holds state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub clients: i64,
    pub accounts: i64,
    pub codes: i64,
    pub grants: i64,
    pub access_tokens: i64,
    pub refresh_tokens: i64,
}

impl Harness {
    /// Stores an account for `pat` (org `org`) on the fake upstream, directly.
    pub async fn add_account(&self, pat: &str, org: &str) -> String {
        let mcp = format!("{}/mcp", self.upstream.url);
        self.add_account_with_mcp(pat, org, &mcp).await
    }

    /// Like [`Self::add_account`] with a given MCP URL.
    pub async fn add_account_with_mcp(&self, pat: &str, org: &str, mcp_url: &str) -> String {
        self.upstream.allow(pat, org);
        let id = format!("acct_{org}");
        let server = self.upstream.url.clone();
        self.store_account(&id, &server, mcp_url, org, pat).await;
        id
    }

    /// Stores an account row and its PAT directly, for any server (the fake
    /// upstream is not told about the PAT).
    pub async fn store_account(&self, id: &str, server: &str, mcp_url: &str, org: &str, pat: &str) {
        self.state
            .store
            .upsert_account(
                id.to_string(),
                NewAccount {
                    kind: AccountKind::Spor,
                    server: server.to_string(),
                    mcp_url: mcp_url.to_string(),
                    org: org.to_string(),
                    person: Some("p_alice".into()),
                    name: Some("Alice Example".into()),
                    email: Some("alice@example.com".into()),
                    bound: true,
                    is_admin: false,
                    pat_hash: tokens::hash(pat),
                },
                self.now(),
            )
            .await
            .expect("upsert account");
        self.state
            .secrets
            .set_blocking(id, &Sensitive::new(pat.to_string()))
            .expect("store PAT");
    }

    /// Whether the client is (still) registered.
    pub async fn has_client(&self, id: &str) -> bool {
        self.state
            .store
            .client(id.to_string())
            .await
            .expect("client lookup")
            .is_some()
    }

    /// Disconnects a live grant as the app and the CLI do.
    pub async fn disconnect(&self, grant_id: &str) {
        let revoked = spor_companion::grants::disconnect(&self.state, grant_id)
            .await
            .expect("disconnect");
        assert!(revoked, "grant {grant_id} was not live");
    }

    /// The grant an access token belongs to.
    pub async fn grant_of(&self, access: &str) -> String {
        let hash = tokens::hash(access);
        self.state
            .store
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT grant_id FROM access_tokens WHERE token_hash = ?1",
                    [&hash],
                    |r| r.get::<_, String>(0),
                )?)
            })
            .await
            .expect("grant of access token")
    }

    /// A grant as the list shows it, revoked or not.
    pub async fn grant(&self, id: &str) -> spor_companion::store::GrantSummary {
        self.state
            .store
            .grants(true)
            .await
            .expect("grants")
            .into_iter()
            .find(|g| g.id == id)
            .unwrap_or_else(|| panic!("no grant {id}"))
    }

    /// The grant's call log once it holds at least `n` rows (it is written
    /// off the request path, after the response ends); bounded.
    pub async fn calls_when(&self, grant_id: &str, n: usize) -> Vec<CallRecord> {
        let mut calls = Vec::new();
        for _ in 0..250 {
            self.state.gateway.calls.flush().await;
            calls = self
                .state
                .store
                .calls(grant_id.to_string(), 10)
                .await
                .expect("calls");
            if calls.len() >= n {
                return calls;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the call log never reached {n} rows: {calls:?}");
    }

    /// How many rows each table has.
    pub async fn counts(&self) -> Counts {
        self.state
            .store
            .call(|c| {
                let n = |t: &str| -> rusqlite::Result<i64> {
                    c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                };
                Ok(Counts {
                    clients: n("clients")?,
                    accounts: n("accounts")?,
                    codes: n("auth_codes")?,
                    grants: n("grants")?,
                    access_tokens: n("access_tokens")?,
                    refresh_tokens: n("refresh_tokens")?,
                })
            })
            .await
            .expect("counts")
    }
}
