//! Registered OAuth clients.

use rusqlite::{params, OptionalExtension};
use serde::{Serialize, Serializer};
use spor_wire::oauth::register::ApplicationType;

use super::audit::{record, Subject};
use super::calls::forget_sessions_of_grants;
use super::db::Store;
use super::error::StoreError;
use crate::clock::Timestamp;
use crate::peer::Program;

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
    /// The program that registered it, as the OS told (not as it claimed).
    pub registered_by: Option<Program>,
    /// The application type it registered with, if it sent one.
    #[serde(serialize_with = "application_type_str")]
    pub application_type: Option<ApplicationType>,
}

fn application_type_str<S: Serializer>(
    kind: &Option<ApplicationType>,
    s: S,
) -> Result<S::Ok, S::Error> {
    kind.map(ApplicationType::as_str).serialize(s)
}

/// A client that never connected: no grant and no outstanding code.
pub(crate) const UNUSED: &str =
    "id NOT IN (SELECT client_id FROM grants) AND id NOT IN (SELECT client_id FROM auth_codes)";

/// A client nothing depends on any more (`?1` is now): no live grant and
/// no code that could still be exchanged. Its revoked grants are history.
const IDLE: &str = "id NOT IN (SELECT client_id FROM grants WHERE revoked_at IS NULL)
     AND id NOT IN (SELECT client_id FROM auth_codes WHERE used_at IS NULL AND expires_at > ?1)";

/// Registrations that never led to a connection are forgotten after a day.
pub const UNUSED_CLIENT_TTL: i64 = 86_400;

/// Deletes a client with its grants (their tokens and codes go with them by
/// cascade) and their sessions; the audit trail keeps what happened.
fn forget_client(conn: &rusqlite::Connection, id: &str) -> Result<(), StoreError> {
    forget_sessions_of_grants(conn, "client_id = ?1", id)?;
    conn.execute("DELETE FROM grants WHERE client_id = ?1", [id])?;
    conn.execute("DELETE FROM clients WHERE id = ?1", [id])?;
    Ok(())
}

/// Audits `event` about a client, with its name.
fn record_client(
    tx: &rusqlite::Connection,
    client: &Client,
    event: &str,
) -> Result<(), StoreError> {
    record(
        tx,
        client.created_at,
        event,
        Subject {
            client: Some(&client.id),
            ..Subject::default()
        },
        Some(serde_json::json!({ "name": client.name })),
    )
}

impl Store {
    /// Persists a newly registered client, keeping at most `max` clients:
    /// beyond that the oldest idle client (no live grant, no pending code)
    /// makes room, one that never connected first; it goes with its revoked
    /// grants. Returns `false`, storing nothing, when every stored client is
    /// in use.
    pub async fn insert_client(&self, client: Client, max: usize) -> Result<bool, StoreError> {
        self.call(move |c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let count: i64 = tx.query_row("SELECT count(*) FROM clients", [], |r| r.get(0))?;
            if count as usize >= max {
                let idle: Option<String> = tx
                    .query_row(
                        &format!(
                            "SELECT id FROM clients WHERE {IDLE}
                             ORDER BY id IN (SELECT client_id FROM grants), created_at, id LIMIT 1"
                        ),
                        [client.created_at],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(idle) = idle else {
                    return Ok(false);
                };
                forget_client(&tx, &idle)?;
            }
            tx.execute(
                "INSERT INTO clients (id, name, redirect_uris, created_at, registered_by,
                                      application_type)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    client.id,
                    client.name,
                    serde_json::Value::from(client.redirect_uris.clone()).to_string(),
                    client.created_at,
                    client
                        .registered_by
                        .as_ref()
                        .and_then(|p| serde_json::to_string(p).ok()),
                    client.application_type.map(ApplicationType::as_str),
                ],
            )?;
            record_client(&tx, &client, "client.registered")?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Stores a client named by its metadata document (keyed by the URL),
    /// or brings an existing one up to date with what the document now
    /// says; a new one makes room like [`Store::insert_client`]. Returns
    /// `false`, storing nothing, when every stored client is in use.
    pub async fn upsert_document_client(
        &self,
        client: Client,
        max: usize,
    ) -> Result<bool, StoreError> {
        let known = self.client(client.id.clone()).await?;
        let Some(known) = known else {
            return self.insert_client(client, max).await;
        };
        if known.name == client.name && known.redirect_uris == client.redirect_uris {
            return Ok(true);
        }
        let again = client.clone();
        let updated = self
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let changed = tx.execute(
                    "UPDATE clients SET name = ?2, redirect_uris = ?3 WHERE id = ?1",
                    params![
                        client.id,
                        client.name,
                        serde_json::Value::from(client.redirect_uris.clone()).to_string(),
                    ],
                )?;
                if changed == 0 {
                    return Ok(false);
                }
                record_client(&tx, &client, "client.document_changed")?;
                tx.commit()?;
                Ok(true)
            })
            .await?;
        if updated {
            return Ok(true);
        }
        // Swept as idle in between: store it afresh.
        self.insert_client(again, max).await
    }

    /// Looks a client up by id.
    pub async fn client(&self, id: String) -> Result<Option<Client>, StoreError> {
        self.call(move |c| {
            let row = c
                .query_row(
                    "SELECT id, name, redirect_uris, created_at, registered_by, application_type
                     FROM clients WHERE id = ?1",
                    [&id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Timestamp>(3)?,
                            r.get::<_, Option<String>>(4)?,
                            r.get::<_, Option<String>>(5)?,
                        ))
                    },
                )
                .optional()?;
            row.map(|(id, name, uris, created_at, registered_by, kind)| {
                let redirect_uris = serde_json::from_str(&uris)
                    .map_err(|_| StoreError::Corrupt(format!("client {id} redirect_uris")))?;
                // An unreadable record is no answer, not a reason to fail.
                let registered_by = registered_by.and_then(|p| serde_json::from_str(&p).ok());
                let application_type = kind.as_deref().and_then(ApplicationType::parse);
                Ok(Client {
                    id,
                    name,
                    redirect_uris,
                    created_at,
                    registered_by,
                    application_type,
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
