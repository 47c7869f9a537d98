//! The one look the gateway takes inside a JSON-RPC body: enough to record
//! what was called (method, tool name), which protocol era it speaks, what
//! its mirrored `Mcp-*` headers must say, and to answer errors with the
//! right id. Never arguments, never results, and the body is never rewritten.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::mirror::name_field;

/// The `_meta` key naming a modern (2026-07-28 and later) request's
/// protocol version; legacy requests carry none.
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// What one JSON-RPC message is, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peek {
    /// The method, or `(response)` for a client's answer to a server request.
    pub method: String,
    /// The tool name of a `tools/call`, clipped for the log.
    pub tool: Option<String>,
    /// What an `Mcp-Name` header mirrors ([`crate::mirror::name_field`]):
    /// e.g. `params.name` of `tools/call`, `params.uri` of `resources/read`.
    /// Whole (it is compared with the header, never logged).
    pub name: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, whole:
    /// present exactly on modern requests.
    pub protocol_version: Option<String>,
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
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    uri: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "taskId")]
    task_id: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(borrow, default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<&'a RawValue>,
}

/// A JSON string's value; `None` for anything else (a number, an object).
fn string(raw: Option<&RawValue>) -> Option<String> {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
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
    let params = m
        .params
        .filter(|p| is_object(p))
        .and_then(|p| serde_json::from_str::<Params<'_>>(p.get()).ok());
    let name = match (m.method.as_deref().and_then(name_field), &params) {
        (Some("name"), Some(p)) => string(p.name),
        (Some("uri"), Some(p)) => string(p.uri),
        (Some("taskId"), Some(p)) => string(p.task_id),
        _ => None,
    };
    let protocol_version = params
        .as_ref()
        .and_then(|p| p.meta)
        .filter(|meta| is_object(meta))
        .and_then(|meta| serde_json::from_str::<Meta<'_>>(meta.get()).ok())
        .and_then(|meta| string(meta.protocol_version));
    let tool = match m.method.as_deref() {
        Some("tools/call") => name.clone().map(clip),
        _ => None,
    };
    Peek {
        method: m.method.map(clip).unwrap_or_else(|| "(response)".into()),
        tool,
        name,
        protocol_version,
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
                tool: Some("put_node".into()),
                name: Some("put_node".into()),
                protocol_version: None,
            }]
        );
        assert_eq!(id, serde_json::json!(7));
    }

    #[test]
    fn modern_requests_carry_their_protocol_version_and_the_mirrored_name() {
        let (p, _) = peek(br#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://a b","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#);
        assert_eq!(p[0].name.as_deref(), Some("test://a b"));
        assert_eq!(p[0].tool, None);
        assert_eq!(p[0].protocol_version.as_deref(), Some("2026-07-28"));
        let (p, _) =
            peek(br#"{"id":2,"method":"prompts/get","params":{"name":"greet","uri":"x"}}"#);
        assert_eq!(p[0].name.as_deref(), Some("greet"));
        assert_eq!(p[0].protocol_version, None, "a legacy request");
        // Only the three methods whose name a header mirrors; only strings.
        let (p, _) = peek(br#"{"id":3,"method":"tools/list","params":{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":7}}}"#);
        assert_eq!(
            (p[0].name.clone(), p[0].protocol_version.clone()),
            (None, None)
        );
        let (p, _) = peek(br#"{"id":4,"method":"tools/call","params":{"name":9,"_meta":[]}}"#);
        assert_eq!(
            p[0],
            Peek {
                method: "tools/call".into(),
                ..Peek::default()
            }
        );
        // The whole name is kept for the comparison; the log gets it clipped.
        let long = "n".repeat(300);
        let (p, _) =
            peek(format!(r#"{{"method":"tools/call","params":{{"name":"{long}"}}}}"#).as_bytes());
        assert_eq!(p[0].name.as_deref(), Some(long.as_str()));
        assert_eq!(p[0].tool.as_deref().map(str::len), Some(MAX_NAME));
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
                ..Peek::default()
            }]
        );
        assert_eq!(id, serde_json::Value::Null);
        let (p, _) = peek(br#"{"id":1,"method":"tools/call","params":["put_node"]}"#);
        assert_eq!(p[0].tool, None);
        let (p, _) = peek(br#"{"method":"tools/call","params": {"name":"put_node"}}"#);
        assert_eq!(p[0].tool.as_deref(), Some("put_node"));
    }
}
