//! Registered OAuth clients.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::audit::{record, Subject};
use super::{Store, StoreError};
use crate::clock::Timestamp;

/// A registered public client.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    /// The `client_id` handed out at registration.
    pub id: String,
    /// The self-declared `client_name` (not verified by anyone).
    pub name: String,
    /// Registered redirect URIs, as sent.
    pub redirect_uris: Vec<String>,
    /// When it registered.
    pub created_at: Timestamp,
}

/// A client that never connected: no grant and no outstanding code.
pub(crate) const UNUSED: &str =
    "id NOT IN (SELECT client_id FROM grants) AND id NOT IN (SELECT client_id FROM auth_codes)";

/// Registrations that never led to a connection are forgotten after a day.
pub const UNUSED_CLIENT_TTL: i64 = 86_400;

impl Store {
    /// Persists a newly registered client, keeping at most `max` clients:
    /// beyond that the oldest client that never connected (no grant, no
    /// pending code) makes room. Returns `false`, storing nothing, when every
    /// stored client is in use.
    pub async fn insert_client(&self, client: Client, max: usize) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let count: i64 = tx.query_row("SELECT count(*) FROM clients", [], |r| r.get(0))?;
            if count as usize >= max {
                let evicted = tx.execute(
                    &format!("DELETE FROM clients WHERE id = (SELECT id FROM clients WHERE {UNUSED} ORDER BY created_at, id LIMIT 1)"),
                    [],
                )?;
                if evicted == 0 {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT INTO clients (id, name, redirect_uris, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![
                    client.id,
                    client.name,
                    serde_json::Value::from(client.redirect_uris.clone()).to_string(),
                    client.created_at
                ],
            )?;
            record(
                &tx,
                client.created_at,
                "client.registered",
                Subject {
                    client: Some(&client.id),
                    ..Subject::default()
                },
                Some(serde_json::json!({ "name": client.name })),
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Looks a client up by id.
    pub async fn client(&self, id: String) -> Result<Option<Client>, StoreError> {
        self.call(move |c| {
            let row = c
                .query_row(
                    "SELECT id, name, redirect_uris, created_at FROM clients WHERE id = ?1",
                    [&id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Timestamp>(3)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(id, name, uris, created_at)| {
                let redirect_uris = serde_json::from_str(&uris)
                    .map_err(|_| StoreError::Corrupt(format!("client {id} redirect_uris")))?;
                Ok(Client {
                    id,
                    name,
                    redirect_uris,
                    created_at,
                })
            })
            .transpose()
        })
        .await
    }

    /// How many clients are registered.
    pub async fn client_count(&self) -> Result<i64, StoreError> {
        self.call(|c| Ok(c.query_row("SELECT count(*) FROM clients", [], |r| r.get(0))?))
            .await
    }
}
