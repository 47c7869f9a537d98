//! Graph nodes written and read by the MCP tools, scoped to an org.
//!
//! The author is always the calling token's person (or none for an unbound
//! token); nothing a client sends can set it.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::{random_hex, Caller, Store};
use crate::time;

/// A node to store; `org` and the author come from the caller, not from here.
#[derive(Debug, Clone)]
pub struct NewNode {
    /// Node kind, e.g. `note` or `capture`.
    pub kind: String,
    /// One-line title.
    pub title: String,
    /// Free text (may be empty).
    pub body: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Where a capture came from, if said.
    pub source: Option<String>,
}

/// A stored node as the tools return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// `n_` followed by 16 hex chars.
    pub id: String,
    /// The org the node belongs to (the writing token's org).
    pub org: String,
    /// Node kind.
    pub kind: String,
    /// One-line title.
    pub title: String,
    /// Free text.
    pub body: String,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// Where a capture came from, if said.
    pub source: Option<String>,
    /// Person id of the writer; `None` when the token was unbound.
    pub author: Option<String>,
    /// The writer's name at write time.
    pub author_name: Option<String>,
    /// The writer's email at write time.
    pub author_email: Option<String>,
    /// RFC 3339 UTC.
    pub created: String,
}

const NODE_COLS: &str =
    "id, org, kind, title, body, tags, source, author, author_name, author_email, created";

fn node_from_row(r: &Row<'_>) -> rusqlite::Result<Node> {
    let tags: String = r.get(5)?;
    Ok(Node {
        id: r.get(0)?,
        org: r.get(1)?,
        kind: r.get(2)?,
        title: r.get(3)?,
        body: r.get(4)?,
        // Written by `put_node` from a Vec<String>; a hand-edited row with
        // bad JSON reads as no tags rather than failing the whole query.
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        source: r.get(6)?,
        author: r.get(7)?,
        author_name: r.get(8)?,
        author_email: r.get(9)?,
        created: time::rfc3339(r.get(10)?),
    })
}

impl Store {
    /// Stores a node in the caller's org, authored by the caller's person.
    pub fn put_node(&mut self, caller: &Caller, node: &NewNode) -> anyhow::Result<Node> {
        let id = format!("n_{}", random_hex(8));
        let tags = serde_json::to_string(&node.tags)?;
        let (author, name, email) = match &caller.person {
            Some(p) => (Some(&p.id), Some(&p.name), Some(&p.email)),
            None => (None, None, None),
        };
        self.conn.execute(
            &format!("INSERT INTO nodes ({NODE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                id,
                caller.org,
                node.kind,
                node.title,
                node.body,
                tags,
                node.source,
                author,
                name,
                email,
                time::now()
            ],
        )?;
        self.get_node(caller, &id)?
            .ok_or_else(|| anyhow::anyhow!("node {id} vanished after insert"))
    }

    /// The node with this id in the caller's org, if any.
    pub fn get_node(&self, caller: &Caller, id: &str) -> anyhow::Result<Option<Node>> {
        let node = self
            .conn
            .query_row(
                &format!("SELECT {NODE_COLS} FROM nodes WHERE id = ?1 AND org = ?2"),
                params![id, caller.org],
                node_from_row,
            )
            .optional()?;
        Ok(node)
    }

    /// Up to `limit` nodes of the caller's org, newest first, optionally of one
    /// kind and containing `query` in title or body (case-insensitive).
    pub fn query_nodes(
        &self,
        caller: &Caller,
        query: Option<&str>,
        kind: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<Node>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {NODE_COLS} FROM nodes
             WHERE org = ?1 AND (?2 IS NULL OR kind = ?2)
             ORDER BY created DESC, rowid DESC"
        ))?;
        // SQLite's LIKE and lower() fold ASCII only; filter in Rust so
        // "ÄRGER" finds "ärger" too. The sandbox holds few nodes.
        let needle = query.map(str::to_lowercase).filter(|q| !q.is_empty());
        let mut out = Vec::new();
        for node in stmt.query_map(params![caller.org, kind], node_from_row)? {
            let node = node?;
            let hit = needle.as_ref().is_none_or(|q| {
                node.title.to_lowercase().contains(q) || node.body.to_lowercase().contains(q)
            });
            if hit {
                out.push(node);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}
