//! MCP 2026-07-28's mirrored headers: a modern request repeats parts of its
//! body in HTTP headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`,
//! and `Mcp-Param-*` for tool arguments a tool's schema marks with
//! `x-mcp-header`), and servers refuse a request whose headers are absent or
//! disagree. The gateway checks them against the body; the stdio bridge,
//! whose host speaks without headers, writes them from the body.

use base64::Engine;
use serde_json::Value;

use crate::peek::PROTOCOL_VERSION_META;

const SENTINEL_PREFIX: &str = "=?base64?";
const SENTINEL_SUFFIX: &str = "?=";
/// What every tool-declared parameter header is named after.
pub const PARAM_PREFIX: &str = "Mcp-Param-";
/// The `inputSchema` keyword that declares a parameter header.
const DECLARATION_KEY: &str = "x-mcp-header";

/// The `params` field an `Mcp-Name` header mirrors for `method`, if any.
pub fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// A string as a header value: unchanged when it is plain visible ASCII
/// (tabs allowed) without surrounding whitespace, otherwise the spec's
/// `=?base64?…?=` form of its UTF-8, so nothing is lost or smuggled.
pub fn encode(value: &str) -> String {
    let plain = !value.is_empty()
        && value.trim() == value
        && !(value.starts_with(SENTINEL_PREFIX) && value.ends_with(SENTINEL_SUFFIX))
        && value
            .bytes()
            .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b));
    if plain {
        value.to_string()
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        format!("{SENTINEL_PREFIX}{encoded}{SENTINEL_SUFFIX}")
    }
}

/// A header value as the body spells it: the sentinel form decoded; `None`
/// when the sentinel holds no valid Base64 of UTF-8.
pub fn decode(value: &str) -> Option<String> {
    match value
        .strip_prefix(SENTINEL_PREFIX)
        .and_then(|v| v.strip_suffix(SENTINEL_SUFFIX))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        None => Some(value.to_string()),
    }
}

/// The protocol version a message's `_meta` claims: present exactly on
/// messages of the modern era.
pub fn protocol_version(msg: &Value) -> Option<&str> {
    msg.pointer("/params/_meta")?
        .get(PROTOCOL_VERSION_META)?
        .as_str()
}

/// The standard headers a modern request carries, written from its body:
/// `MCP-Protocol-Version`, `Mcp-Method`, and `Mcp-Name` where the method
/// names something. Empty for a legacy message, a response, or a batch.
pub fn standard_headers(msg: &Value) -> Vec<(&'static str, String)> {
    let (Some(version), Some(method)) = (
        protocol_version(msg),
        msg.get("method").and_then(Value::as_str),
    ) else {
        return Vec::new();
    };
    let mut headers = vec![
        ("mcp-protocol-version", version.to_string()),
        ("mcp-method", method.to_string()),
    ];
    let name =
        name_field(method).and_then(|field| msg.get("params")?.get(field)?.as_str().map(encode));
    if let Some(name) = name {
        headers.push(("mcp-name", name));
    }
    headers
}

/// One argument a tool mirrors into an `Mcp-Param-{header}` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// Where the argument sits in `arguments`, through nested objects.
    path: Vec<String>,
    /// The name after `Mcp-Param-`.
    header: String,
}

/// The parameter headers a tool's `inputSchema` declares, or `None` when
/// the declarations break the spec's rules (then a client sends none, as
/// the tool is invalid): only on `properties` chains from the root, on
/// string, integer or boolean properties, names that are HTTP tokens and
/// unique regardless of case.
pub fn param_declarations(input_schema: &Value) -> Option<Vec<ParamHeader>> {
    let mut found = Vec::new();
    walk(input_schema, &mut Vec::new(), true, &mut found).then_some(())?;
    let mut seen = std::collections::HashSet::new();
    found
        .iter()
        .all(|d| seen.insert(d.header.to_ascii_lowercase()))
        .then_some(found)
}

/// Schema keywords whose subschemas a declaration may not sit under.
const UNREACHABLE: [&str; 11] = [
    "items",
    "additionalProperties",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "$defs",
    "definitions",
];

/// Collects declarations under `node`; false on a broken one.
fn walk(
    node: &Value,
    path: &mut Vec<String>,
    reachable: bool,
    found: &mut Vec<ParamHeader>,
) -> bool {
    let Some(schema) = node.as_object() else {
        return true;
    };
    if let Some(raw) = schema.get(DECLARATION_KEY) {
        let primitive = matches!(
            schema.get("type").and_then(Value::as_str),
            Some("string" | "integer" | "boolean")
        );
        let Some(header) = raw.as_str().filter(|h| is_token(h)) else {
            return false;
        };
        if !reachable || path.is_empty() || !primitive {
            return false;
        }
        found.push(ParamHeader {
            path: path.clone(),
            header: header.to_string(),
        });
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            path.push(key.clone());
            let ok = walk(sub, path, reachable, found);
            path.pop();
            if !ok {
                return false;
            }
        }
    }
    // A declaration anywhere else makes the whole tool invalid.
    for key in UNREACHABLE {
        let ok = match schema.get(key) {
            Some(Value::Array(subs)) => subs.iter().all(|s| walk(s, path, false, found)),
            Some(Value::Object(map)) if key == "$defs" || key == "definitions" => {
                map.values().all(|s| walk(s, path, false, found))
            }
            Some(sub) => walk(sub, path, false, found),
            None => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// RFC 9110 `token`: one or more `tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The `Mcp-Param-*` headers of one `tools/call`'s `arguments`: one per
/// declared argument that holds a string, a boolean or a finite number;
/// none for an absent or null argument (the spec's "omit").
pub fn param_headers(declared: &[ParamHeader], arguments: &Value) -> Vec<(String, String)> {
    declared
        .iter()
        .filter_map(|d| {
            let value = d
                .path
                .iter()
                .try_fold(arguments, |node, key| node.get(key))?;
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((format!("{PARAM_PREFIX}{}", d.header), encode(&text)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_that_are_not_plain_ascii_are_base64_and_round_trip() {
        assert_eq!(encode("test_simple_text"), "test_simple_text");
        for v in [
            "",
            " padded",
            "tab\t",
            "日本",
            "line\nbreak",
            "=?base64?eA==?=",
        ] {
            let e = encode(v);
            assert!(e.starts_with("=?base64?"), "{v:?} -> {e}");
            assert_eq!(decode(&e).as_deref(), Some(v));
        }
        assert_eq!(decode("=?base64?!!!?="), None);
        assert_eq!(decode("=?base64?/w==?="), None, "not UTF-8");
    }

    #[test]
    fn modern_requests_get_their_headers_from_the_body_and_legacy_ones_none() {
        let call = json!({"jsonrpc":"2.0","id":1,"method":"resources/read",
            "params":{"uri":"test://a b/é","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}});
        let h = standard_headers(&call);
        assert_eq!(h[0], ("mcp-protocol-version", "2026-07-28".into()));
        assert_eq!(h[1], ("mcp-method", "resources/read".into()));
        assert_eq!(h[2].0, "mcp-name");
        assert_eq!(decode(&h[2].1).as_deref(), Some("test://a b/é"));
        let legacy = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}});
        assert!(standard_headers(&legacy).is_empty());
        let list = json!({"jsonrpc":"2.0","id":2,"method":"tools/list",
            "params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}});
        assert_eq!(
            standard_headers(&list).len(),
            2,
            "no Mcp-Name for tools/list"
        );
        assert!(
            standard_headers(&json!([call])).is_empty(),
            "batches carry none"
        );
    }

    #[test]
    fn declared_arguments_become_param_headers_and_absent_ones_none() {
        let schema = json!({"type":"object","properties":{
            "region":{"type":"string","x-mcp-header":"Region"},
            "opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"}}},
            "n":{"type":"integer","x-mcp-header":"N"}}});
        let d = param_declarations(&schema).expect("valid");
        let mut h = param_headers(
            &d,
            &json!({"region":"eu west","opts":{"dry":true},"n":null}),
        );
        h.sort();
        assert_eq!(
            h,
            vec![
                ("Mcp-Param-Dry".to_string(), "true".to_string()),
                ("Mcp-Param-Region".to_string(), "eu west".to_string()),
            ]
        );
    }

    #[test]
    fn declarations_that_break_the_rules_make_the_tool_invalid() {
        for schema in [
            json!({"type":"object","properties":{"a":{"type":"object","x-mcp-header":"A"}}}),
            json!({"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A B"}}}),
            json!({"type":"object","properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}}),
            json!({"type":"object","properties":{"a":{"type":"array","items":{"type":"string","x-mcp-header":"A"}}}}),
            json!({"type":"object","anyOf":[{"properties":{"a":{"type":"string","x-mcp-header":"A"}}}]}),
            json!({"type":"string","x-mcp-header":"Root"}),
        ] {
            assert_eq!(param_declarations(&schema), None, "{schema}");
        }
        assert_eq!(param_declarations(&json!({"type":"object"})), Some(vec![]));
    }
}
