//! The one look the gateway takes inside a JSON-RPC body: enough to record
//! what was called (method, tool name) and to answer errors with the right
//! id. Never arguments, never results, and the body is never rewritten.

use serde::Deserialize;
use serde_json::value::RawValue;

/// What one JSON-RPC message is, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    /// The method, or `(response)` for a client's answer to a server request.
    pub method: String,
    /// The tool name of a `tools/call`.
    pub tool: Option<String>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolParams {
    #[serde(default)]
    name: Option<String>,
}

/// Longest method or tool name recorded.
const MAX_NAME: usize = 128;

fn clip(s: String) -> String {
    if s.len() <= MAX_NAME {
        return s;
    }
    let mut end = MAX_NAME;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn one(m: Message<'_>) -> Peek {
    let tool = match (m.method.as_deref(), m.params) {
        (Some("tools/call"), Some(p)) => serde_json::from_str::<ToolParams>(p.get())
            .ok()
            .and_then(|t| t.name)
            .map(clip),
        _ => None,
    };
    Peek {
        method: m.method.map(clip).unwrap_or_else(|| "(response)".into()),
        tool,
    }
}

/// The messages in a body (one, or a batch) and the id to answer errors
/// with (`null` for batches and notifications). Unparseable bodies yield
/// no messages; the upstream will say what is wrong with them.
pub fn peek(body: &[u8]) -> (Vec<Peek>, serde_json::Value) {
    if let Ok(m) = serde_json::from_slice::<Message<'_>>(body) {
        let id =
            m.id.and_then(|r| serde_json::from_str(r.get()).ok())
                .unwrap_or(serde_json::Value::Null);
        return (vec![one(m)], id);
    }
    match serde_json::from_slice::<Vec<Message<'_>>>(body) {
        Ok(batch) => (
            batch.into_iter().map(one).collect(),
            serde_json::Value::Null,
        ),
        Err(_) => (Vec::new(), serde_json::Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_record_the_tool_but_never_the_arguments() {
        let (p, id) = peek(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"put_node","arguments":{"secret":"x"}}}"#);
        assert_eq!(
            p,
            vec![Peek {
                method: "tools/call".into(),
                tool: Some("put_node".into())
            }]
        );
        assert_eq!(id, serde_json::json!(7));
    }

    #[test]
    fn responses_batches_and_garbage() {
        let (p, _) = peek(br#"{"jsonrpc":"2.0","id":"s1","result":{}}"#);
        assert_eq!(p[0].method, "(response)");
        let (p, id) = peek(br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
        assert_eq!(p.len(), 2);
        assert_eq!(id, serde_json::Value::Null);
        assert!(peek(b"not json").0.is_empty());
        let (p, _) = peek(format!(r#"{{"method":"{}"}}"#, "m".repeat(1000)).as_bytes());
        assert_eq!(p[0].method.len(), MAX_NAME);
    }
}
