//! JSON-RPC 2.0 error responses: the one place the companion and the bridge
//! build them, and the codes they use.

use serde_json::{json, Value};

/// An implementation-defined server error: the upstream (or the bridge's
/// connection to the companion) failed; the message names the cause.
pub const SERVER_ERROR: i64 = -32000;
/// MCP's Streamable HTTP answer to a session id the server does not know:
/// the client starts a new session.
pub const SESSION_NOT_FOUND: i64 = -32001;
/// The message was not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The message is not a request the receiver can act on.
pub const INVALID_REQUEST: i64 = -32600;
/// Spor Companion's refusal of a tool outside the assistant's access (an
/// implementation-defined server error: JSON-RPC leaves -32000 to -32099
/// to servers, and MCP defines no code for it).
pub const ACCESS_DENIED: i64 = -32003;
/// MCP 2026-07-28's answer to mirrored headers that disagree with the body.
pub const HEADER_MISMATCH: i64 = -32020;

/// `{"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}`.
pub fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_response_carries_the_id_code_and_message() {
        assert_eq!(
            error_response(&json!(7), SERVER_ERROR, "down").to_string(),
            r#"{"error":{"code":-32000,"message":"down"},"id":7,"jsonrpc":"2.0"}"#
        );
        assert_eq!(
            error_response(&Value::Null, PARSE_ERROR, "x")["id"],
            Value::Null
        );
    }
}
