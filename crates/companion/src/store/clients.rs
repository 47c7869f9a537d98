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

impl Store {
    /// Persists a newly registered client.
    pub async fn insert_client(&self, client: Client) -> Result<(), StoreError> {
        self.call(move |c| {
            let tx = c.transaction()?;
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
            Ok(())
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
