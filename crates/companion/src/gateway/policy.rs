//! The grant's access, enforced: a `tools/call` of a tool outside it is
//! refused before anything goes upstream, and `tools/list` answers are cut
//! down to the tools it allows. Decisions use the body's tool name (the
//! upstream acts on the body); a request the gateway cannot read, or whose
//! `Mcp-Name` header names another tool, is refused under a policy, so
//! neither a header nor a body the gateway parses differently from the
//! upstream can carry a call past it.

use axum::http::HeaderMap;
use serde_json::Value;
use spor_wire::peek::Peek;

use super::catalogue::ToolInfo;
use super::error::GatewayError;
use super::listing;
use super::mirror;
use super::state::Principal;
use crate::access::Access;
use crate::state::AppState;
use crate::store::Account;

/// Longest tool name quoted back in a refusal.
const MAX_QUOTED: usize = 100;

/// Checks the messages of one POST against the principal's access.
pub(super) async fn check(
    state: &AppState,
    principal: &Principal,
    account: &Account,
    headers: &HeaderMap,
    calls: &[Peek],
    body_len: usize,
) -> Result<(), GatewayError> {
    let access = principal.access();
    if *access == Access::Full {
        return Ok(());
    }
    // Something the gateway could not read may still be something the
    // upstream reads (duplicate keys, say): it cannot pass a policy.
    if calls.is_empty() && body_len > 0 {
        return Err(GatewayError::Unreadable);
    }
    if let [one] = calls {
        if one.method == "tools/call" && mirror::name_disagrees(headers, one) {
            return Err(GatewayError::NameMismatch);
        }
    }
    for call in calls.iter().filter(|c| c.method == "tools/call") {
        // No string name the gateway can read (missing, not a string, or
        // given twice): it cannot tell which tool the upstream would run.
        let Some(tool) = call.name.as_deref() else {
            return Err(GatewayError::Unreadable);
        };
        let allowed = match access {
            Access::Full => true,
            Access::Tools(chosen) => chosen.contains(tool),
            Access::ReadOnly => listing::is_read_only(state, account, tool).await,
        };
        if !allowed {
            return Err(GatewayError::Denied {
                tool: tool.chars().take(MAX_QUOTED).collect(),
                access: access.describe(),
                grant_id: principal.grant_id().unwrap_or_default().to_string(),
            });
        }
    }
    Ok(())
}

/// Whether `access` lets a listed tool be offered to the assistant.
pub(super) fn offers(access: &Access, tool: &Value) -> bool {
    match access {
        Access::Full => true,
        Access::Tools(chosen) => tool
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| chosen.contains(n)),
        Access::ReadOnly => ToolInfo::from_listing(tool).is_some_and(|t| t.read_only),
    }
}

/// A `tools/list` answer (JSON, or an event stream) with `edit` applied to
/// the `tools` of the response to `id`; every other message, field and
/// event passes as it came. `None` if the body cannot be read, which is
/// then passed on whole only when nothing needs cutting.
pub(super) fn rewrite_list_answer(
    body: &[u8],
    is_sse: bool,
    id: &Value,
    mut edit: impl FnMut(&mut Vec<Value>),
) -> Option<Vec<u8>> {
    let mut apply = |message: &mut Value| -> bool {
        if message.get("id") != Some(id) {
            return false;
        }
        match message.pointer_mut("/result/tools") {
            Some(Value::Array(tools)) => {
                edit(tools);
                true
            }
            _ => false,
        }
    };
    if !is_sse {
        let mut message: Value = serde_json::from_slice(body).ok()?;
        apply(&mut message);
        return serde_json::to_vec(&message).ok();
    }
    let mut parser = crate::sse::Parser::new(body.len() + 1);
    let mut events = parser.feed(body).ok()?;
    // A stream without a final blank line still ends its last event.
    events.extend(parser.feed(b"\n\n").ok()?);
    let mut out = Vec::with_capacity(body.len());
    for ev in events {
        if let Some(id) = &ev.id {
            out.extend_from_slice(format!("id: {id}\n").as_bytes());
        }
        if let Some(kind) = &ev.event {
            out.extend_from_slice(format!("event: {kind}\n").as_bytes());
        }
        let mut data = ev.data.clone();
        if ev.event.as_deref().is_none_or(|k| k == "message") {
            if let Ok(mut message) = serde_json::from_str::<Value>(&ev.data) {
                if apply(&mut message) {
                    data = message.to_string();
                }
            }
        }
        for line in data.split('\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Value {
        json!([
            {"name": "get_node", "annotations": {"readOnlyHint": true}},
            {"name": "put_node", "annotations": {"readOnlyHint": false}},
            {"name": "search"},
        ])
    }

    fn names(v: &Value) -> Vec<String> {
        v.pointer("/result/tools")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .map(|t| t["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn read_only_offers_only_what_is_annotated_read_only_and_chosen_only_the_chosen() {
        let listed = tools();
        let all = listed.as_array().expect("array");
        let offered = |a: &Access| -> Vec<&str> {
            all.iter()
                .filter(|t| offers(a, t))
                .filter_map(|t| t["name"].as_str())
                .collect()
        };
        assert_eq!(offered(&Access::Full), ["get_node", "put_node", "search"]);
        assert_eq!(offered(&Access::ReadOnly), ["get_node"]);
        assert_eq!(
            offered(&Access::parse("tools:search,put_node").expect("tools")),
            ["put_node", "search"]
        );
    }

    #[test]
    fn a_json_answer_is_cut_down_and_the_cursor_kept() {
        let body =
            json!({"jsonrpc": "2.0", "id": 7, "result": {"tools": tools(), "nextCursor": "p2"}});
        let out = rewrite_list_answer(body.to_string().as_bytes(), false, &json!(7), |t| {
            t.retain(|t| offers(&Access::ReadOnly, t))
        })
        .expect("rewritten");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(names(&v), ["get_node"]);
        assert_eq!(v["result"]["nextCursor"], "p2");
        // Another id's answer is left alone.
        let other =
            rewrite_list_answer(body.to_string().as_bytes(), false, &json!(8), |t| t.clear())
                .expect("passed");
        assert_eq!(
            names(&serde_json::from_slice(&other).expect("json")).len(),
            3
        );
    }

    #[test]
    fn an_event_stream_answer_is_cut_down_and_its_other_events_pass() {
        let answer = json!({"jsonrpc": "2.0", "id": "l", "result": {"tools": tools()}});
        let body = format!(
            "id: 1\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{}}}}\n\n\
             id: 2\ndata: {answer}\n\n"
        );
        let out = rewrite_list_answer(body.as_bytes(), true, &json!("l"), |t| {
            t.retain(|t| offers(&Access::ReadOnly, t))
        })
        .expect("rewritten");
        let mut parser = crate::sse::Parser::new(1 << 20);
        let events = parser.feed(&out).expect("events");
        assert_eq!(events.len(), 2);
        assert!(events[0].data.contains("notifications/progress"));
        assert_eq!(events[1].id.as_deref(), Some("2"));
        assert_eq!(
            names(&serde_json::from_str(&events[1].data).expect("json")),
            ["get_node"]
        );
    }
}
