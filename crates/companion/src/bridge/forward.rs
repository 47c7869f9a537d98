//! A POST's answer to the host: the messages of a JSON body, or each
//! `message` event of an SSE body, written out one per line exactly as the
//! server sent them, as they arrive.

use serde_json::value::RawValue;
use serde_json::Value;

use super::mcp::Mcp;
use super::stdio::{one_line, Host, MAX_MESSAGE};
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
        // Read as it arrives: a 2026-07-28 listen may be a JSON body that
        // stays open and carries one message after another.
        let mut pending: Vec<u8> = Vec::new();
        while let Some(c) = resp.chunk().await.map_err(|e| mcp.unreachable(&e))? {
            pending.extend_from_slice(&c);
            let (messages, used) = complete_messages(&pending)?;
            pending.drain(..used);
            for line in messages {
                if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                    found = pick(&v).or(found);
                }
                host.emit(line).await;
            }
            if pending.len() > MAX_MESSAGE {
                return Err("Spor Companion sent an answer that is too large".into());
            }
        }
        if !pending.iter().all(u8::is_ascii_whitespace) {
            return Err("Spor Companion sent an answer that is not JSON".into());
        }
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

/// The whole JSON values at the start of `buf`, each as one line, and how
/// many bytes they took; an unfinished value waits for more.
fn complete_messages(buf: &[u8]) -> Result<(Vec<Vec<u8>>, usize), String> {
    let mut values = serde_json::Deserializer::from_slice(buf).into_iter::<&RawValue>();
    let mut lines = Vec::new();
    let mut used = 0;
    loop {
        match values.next() {
            Some(Ok(raw)) => {
                used = values.byte_offset();
                lines.extend(one_line(raw.get().as_bytes()));
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(_)) => return Err("Spor Companion sent an answer that is not JSON".into()),
            None => break,
        }
    }
    Ok((lines, used))
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

#[cfg(test)]
mod tests {
    use super::complete_messages;

    #[test]
    fn whole_messages_go_out_as_they_complete_and_a_partial_one_waits() {
        let (lines, used) = complete_messages(b"{\"a\":1}\n{\"b\":\n2}{\"c\":").unwrap();
        assert_eq!(lines, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(used, 16);
        assert!(complete_messages(b"{\"a\":1} nonsense").is_err());
        assert_eq!(complete_messages(b"  ").unwrap(), (vec![], 0));
    }
}
