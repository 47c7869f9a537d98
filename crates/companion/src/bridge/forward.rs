//! A POST's answer to the host: a JSON body, or each `message` event of an
//! SSE body, written out one message per line exactly as the server sent it.

use serde_json::Value;

use super::mcp::Mcp;
use super::stdio::{one_line, Host, MAX_MESSAGE};
use crate::http_body::{read_whole, BodyError};
use crate::sse;

/// Writes a JSON or SSE body's messages to the host; returns what
/// `pick` found in any of them.
pub(super) async fn body<F>(
    host: &Host,
    mcp: &Mcp,
    resp: reqwest::Response,
    pick: F,
) -> Result<Option<String>, String>
where
    F: Fn(&Value) -> Option<String>,
{
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.trim_start().starts_with("text/event-stream"));
    let mut resp = resp;
    let mut found = None;
    if !is_sse {
        let buf = match read_whole(&mut resp, MAX_MESSAGE, None).await {
            Ok(buf) => buf,
            Err(BodyError::Broken(e)) => return Err(mcp.unreachable(&e)),
            Err(_) => return Err("Spor Companion sent an answer that is too large".into()),
        };
        if buf.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let line = one_line(&buf).ok_or("Spor Companion sent an answer that is not JSON")?;
        if let Ok(v) = serde_json::from_slice::<Value>(&line) {
            found = pick(&v);
        }
        host.emit(line).await;
        return Ok(found);
    }
    let mut parser = sse::Parser::new(MAX_MESSAGE);
    while let Some(c) = resp.chunk().await.map_err(|e| mcp.unreachable(&e))? {
        for ev in parser.feed(&c).map_err(|e| e.to_string())? {
            if let Some(p) = event(host, &ev, &pick).await {
                found = Some(p);
            }
        }
    }
    Ok(found)
}

/// Writes one event to the host if it is a message (the default type);
/// returns what `pick` found in it.
async fn event<F>(host: &Host, ev: &sse::Event, pick: &F) -> Option<String>
where
    F: Fn(&Value) -> Option<String>,
{
    if ev.event.as_deref().is_some_and(|e| e != "message") {
        return None;
    }
    let line = one_line(ev.data.as_bytes())?;
    let found = serde_json::from_slice::<Value>(&line)
        .ok()
        .and_then(|v| pick(&v));
    host.emit(line).await;
    found
}
