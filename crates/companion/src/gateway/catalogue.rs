//! The tools each account's upstream offers, with the annotations that make
//! "read only" decidable (`readOnlyHint`, `destructiveHint`): learnt from
//! every `tools/list` answer the gateway relays or `listing` reads, and
//! forgotten when the upstream says its list changed. A leaf of the
//! gateway's state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
#[cfg(test)]
use serde_json::json;
use serde_json::Value;

use crate::clock::Timestamp;

/// A tool not seen is looked up again at most this often, so a host
/// calling unknown tools cannot make the companion fetch on every call.
const REFETCH_AFTER: i64 = 60;

/// One tool as the person and the policy see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolInfo {
    /// Its name (what `tools/call` names).
    pub name: String,
    /// Its display title, if it has one.
    pub title: Option<String>,
    /// Annotated `readOnlyHint: true`.
    pub read_only: bool,
    /// Not read-only and not annotated `destructiveHint: false` (the MCP
    /// default for a tool that writes is destructive).
    pub destructive: bool,
}

impl ToolInfo {
    /// A tool from a `tools/list` entry; `None` without a string name.
    pub fn from_listing(tool: &Value) -> Option<Self> {
        let name = tool.get("name")?.as_str()?.to_string();
        let notes = tool.get("annotations");
        let hint = |key: &str| notes.and_then(|a| a.get(key)).and_then(Value::as_bool);
        let read_only = hint("readOnlyHint") == Some(true);
        let title = tool
            .get("title")
            .or_else(|| notes.and_then(|a| a.get("title")))
            .and_then(Value::as_str)
            .map(str::to_string);
        Some(Self {
            name,
            title,
            read_only,
            destructive: !read_only && hint("destructiveHint") != Some(false),
        })
    }
}

#[derive(Default)]
struct Known {
    tools: HashMap<String, ToolInfo>,
    /// When it was last fetched by the catalogue itself.
    fetched_at: Option<Timestamp>,
}

/// Account id → its tools; cheap to clone.
#[derive(Clone, Default)]
pub struct Catalogue(Arc<Mutex<HashMap<String, Known>>>);

impl Catalogue {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the tools of one `tools/list` page.
    pub(crate) fn learn(&self, account_id: &str, tools: &[Value]) {
        let mut all = self.lock();
        let known = all.entry(account_id.to_string()).or_default();
        for info in tools.iter().filter_map(ToolInfo::from_listing) {
            known.tools.insert(info.name.clone(), info);
        }
    }

    /// Whether a tool is annotated read-only; `None` if it was not seen.
    pub(crate) fn read_only(&self, account_id: &str, tool: &str) -> Option<bool> {
        self.lock()
            .get(account_id)?
            .tools
            .get(tool)
            .map(|t| t.read_only)
    }

    /// Forgets an account's tools (its upstream said the list changed, or
    /// an assistant's access changed), so they are read again when needed.
    pub fn forget(&self, account_id: &str) {
        self.lock().remove(account_id);
    }

    /// The account's tools as last seen, sorted by name; `None` if none were.
    pub fn tools(&self, account_id: &str) -> Option<Vec<ToolInfo>> {
        let all = self.lock();
        let known = all.get(account_id).filter(|k| !k.tools.is_empty())?;
        let mut tools: Vec<ToolInfo> = known.tools.values().cloned().collect();
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        Some(tools)
    }

    pub(super) fn fetched_recently(&self, account_id: &str, now: Timestamp) -> bool {
        self.lock()
            .get(account_id)
            .and_then(|k| k.fetched_at)
            .is_some_and(|at| now - at < REFETCH_AFTER)
    }

    pub(super) fn replace(&self, account_id: &str, tools: Vec<Value>, now: Timestamp) {
        let mut all = self.lock();
        let known = all.entry(account_id.to_string()).or_default();
        known.tools = tools
            .iter()
            .filter_map(ToolInfo::from_listing)
            .map(|t| (t.name.clone(), t))
            .collect();
        known.fetched_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_decide_read_only_and_destructive_as_mcp_defaults_them() {
        let t = |v: Value| ToolInfo::from_listing(&v).expect("tool");
        let read = t(
            json!({"name": "get_node", "title": "Get a node", "annotations": {"readOnlyHint": true}}),
        );
        assert!(read.read_only && !read.destructive);
        assert_eq!(read.title.as_deref(), Some("Get a node"));
        let write = t(json!({"name": "put_node", "annotations": {"readOnlyHint": false}}));
        assert!(
            !write.read_only && write.destructive,
            "destructive by default"
        );
        let additive = t(
            json!({"name": "capture", "annotations": {"destructiveHint": false, "title": "Capture"}}),
        );
        assert!(!additive.read_only && !additive.destructive);
        assert_eq!(additive.title.as_deref(), Some("Capture"));
        let bare = t(json!({"name": "x"}));
        assert!(!bare.read_only, "no annotation is not read-only");
        assert_eq!(ToolInfo::from_listing(&json!({"title": "no name"})), None);
    }

    #[test]
    fn learnt_tools_answer_read_only_and_forgetting_makes_them_unknown() {
        let c = Catalogue::default();
        c.learn(
            "a1",
            &[
                json!({"name": "get", "annotations": {"readOnlyHint": true}}),
                json!({"name": "put"}),
            ],
        );
        assert_eq!(c.read_only("a1", "get"), Some(true));
        assert_eq!(c.read_only("a1", "put"), Some(false));
        assert_eq!(c.read_only("a1", "other"), None);
        assert_eq!(c.read_only("a2", "get"), None, "per account");
        assert_eq!(c.tools("a1").expect("tools").len(), 2);
        c.forget("a1");
        assert_eq!(c.read_only("a1", "get"), None);
    }
}
