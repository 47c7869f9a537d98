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

/// Whether a JSON value (without leading whitespace, as serde_json hands a
/// `RawValue` out) is an object. Serde would also read a struct from an
/// array, positionally, so `["x","tools/call"]` must be ruled out first.
fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

fn one(m: Message<'_>) -> Peek {
    let tool = match (m.method.as_deref(), m.params) {
        (Some("tools/call"), Some(p)) if is_object(p) => {
            serde_json::from_str::<ToolParams>(p.get())
                .ok()
                .and_then(|t| t.name)
                .map(clip)
        }
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
    let Ok(raw) = serde_json::from_slice::<&RawValue>(body) else {
        return (Vec::new(), serde_json::Value::Null);
    };
    if is_object(raw) {
        if let Ok(m) = serde_json::from_str::<Message<'_>>(raw.get()) {
            let id =
                m.id.and_then(|r| serde_json::from_str(r.get()).ok())
                    .unwrap_or(serde_json::Value::Null);
            return (vec![one(m)], id);
        }
    } else if let Ok(batch) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
        let messages: Option<Vec<Peek>> = batch
            .into_iter()
            .map(|m| {
                is_object(m)
                    .then(|| serde_json::from_str::<Message<'_>>(m.get()).ok())
                    .flatten()
                    .map(one)
            })
            .collect();
        if let Some(messages) = messages {
            return (messages, serde_json::Value::Null);
        }
    }
    (Vec::new(), serde_json::Value::Null)
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

    #[test]
    fn only_objects_are_messages() {
        // Found by fuzz/jsonrpc_peek: serde reads a struct from an array too,
        // so arrays and one-element batches were taken as one message.
        assert!(peek(b"[]").0.is_empty());
        assert!(peek(br#"[1,"tools/call",{"name":"x"}]"#).0.is_empty());
        let (p, id) = peek(br#" [{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#);
        assert_eq!(
            p,
            vec![Peek {
                method: "tools/list".into(),
                tool: None
            }]
        );
        assert_eq!(id, serde_json::Value::Null);
        let (p, _) = peek(br#"{"id":1,"method":"tools/call","params":["put_node"]}"#);
        assert_eq!(p[0].tool, None);
        let (p, _) = peek(br#"{"method":"tools/call","params": {"name":"put_node"}}"#);
        assert_eq!(p[0].tool.as_deref(), Some("put_node"));
    }
}
