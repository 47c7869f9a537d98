//! The gateway's audit peek into /mcp request bodies (DESIGN §3).
//!
//! Input: the request body. Checks, against serde_json's own reading of it:
//! nothing is reported for a body that is not JSON, or is JSON but neither
//! an object nor an array of objects; an object yields one entry whose method
//! is its string `method` (clipped to 128 bytes on a char boundary) or
//! `(response)` when it has none, and the id to answer with is its `id`; a
//! batch yields one entry per element, in order, and a `null` id; a tool is
//! reported only for `tools/call` with an object `params` whose `name` is a
//! string; a mirrored name only for `tools/call` and `prompts/get` (their
//! string `params.name`) and `resources/read` (its string `params.uri`),
//! whole; a protocol version only as the string at
//! `params._meta["io.modelcontextprotocol/protocolVersion"]`, whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use serde_json::Value;
use spor_wire::peek::{peek, Peek, PROTOCOL_VERSION_META};

const MAX: usize = 128;

fn clipped(p: &str, full: &str) -> bool {
    full.starts_with(p) && (p == full || (p.len() <= MAX && full.len() > MAX && p.len() > MAX - 4))
}

fn check_one(p: &Peek, m: &Value) {
    let obj = m
        .as_object()
        .unwrap_or_else(|| panic!("reported {p:?} for a non-object {m}"));
    match obj.get("method") {
        Some(Value::String(s)) => assert!(clipped(&p.method, s), "method {:?} for {s:?}", p.method),
        None | Some(Value::Null) => assert_eq!(p.method, "(response)"),
        Some(other) => panic!("reported {p:?} for method {other}"),
    }
    if let Some(tool) = &p.tool {
        assert_eq!(p.method, "tools/call");
        let name = obj
            .get("params")
            .and_then(Value::as_object)
            .and_then(|params| params.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("tool {tool:?} reported for {m}"));
        assert!(clipped(tool, name), "tool {tool:?} for {name:?}");
    }
    let params = obj.get("params").and_then(Value::as_object);
    if let Some(name) = &p.name {
        let field = match p.method.as_str() {
            "tools/call" | "prompts/get" => "name",
            "resources/read" => "uri",
            other => panic!("name {name:?} reported for method {other:?}"),
        };
        let want = params.and_then(|params| params.get(field)).and_then(Value::as_str);
        assert_eq!(Some(name.as_str()), want, "name for {m}");
    }
    if let Some(version) = &p.protocol_version {
        let want = params
            .and_then(|params| params.get("_meta"))
            .and_then(Value::as_object)
            .and_then(|meta| meta.get(PROTOCOL_VERSION_META))
            .and_then(Value::as_str);
        assert_eq!(Some(version.as_str()), want, "protocol version for {m}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (peeks, id) = peek(data);
    if peeks.is_empty() {
        return;
    }
    let v: Value = match serde_json::from_slice(data) {
        Ok(v) => v,
        // JSON by the grammar that serde_json's Value refuses to hold (lone
        // surrogate escapes, numbers out of f64 range) and its skipping
        // reader, which peek uses for everything it does not record, allows.
        Err(_) if serde_json::from_slice::<IgnoredAny>(data).is_ok() => return,
        Err(e) => panic!("reported {peeks:?} for a body that is not JSON ({e})"),
    };
    match &v {
        Value::Object(obj) => {
            assert_eq!(peeks.len(), 1);
            check_one(&peeks[0], &v);
            assert_eq!(id, obj.get("id").cloned().unwrap_or(Value::Null));
        }
        Value::Array(batch) => {
            assert_eq!(
                peeks.len(),
                batch.len(),
                "{peeks:?} for a batch of {}",
                batch.len()
            );
            for (p, m) in peeks.iter().zip(batch) {
                check_one(p, m);
            }
            assert_eq!(id, Value::Null, "a batch answered with id {id}");
        }
        other => panic!("reported {peeks:?} for {other}"),
    }
});
