//! The upstream's answer on its way to the host. A JSON answer is held until
//! it is one whole JSON value, bounded in size and idle time, so a cut,
//! stalled or oversized answer reaches the host as an error carrying its
//! request id; an answer still streaming after that (a 2026-07-28 listen
//! stream sent as JSON lines), and every event stream, is relayed chunk by
//! chunk as it arrives.

use std::time::Duration;

use axum::body::Bytes;
use axum::BoxError;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use spor_wire::jsonrpc;

use super::catalogue::Catalogue;
use super::error::GatewayError;
use super::log::PendingLog;
use crate::http_body::{read_whole, BodyError};
use crate::store::CallOutcome;

/// Most of a JSON answer held before it is answered (the whole body, or up
/// to its first complete JSON value: one JSON-RPC response, an empty `202`,
/// an error body); a larger one becomes an error for the host.
pub(super) const MAX_ANSWER_BODY: usize = 16 * 1024 * 1024;

/// A JSON answer as far as it was held.
pub(super) enum Held {
    /// The whole body.
    Whole(Bytes),
    /// A first JSON value is complete and the body goes on: what arrived so
    /// far; the rest is to be relayed as it comes.
    Streaming(Bytes),
}

/// Reads a JSON answer from `url` until it is whole, or (sent without a
/// `Content-Length`) until its first JSON value is complete: at most
/// [`MAX_ANSWER_BODY`] bytes, giving up when nothing arrives for `idle`.
pub(super) async fn hold_answer(
    resp: &mut reqwest::Response,
    idle: Duration,
    url: &str,
) -> Result<Held, GatewayError> {
    let fail = |e: BodyError| body_error(e, url, idle);
    // A known length is one finite answer.
    if resp.content_length().is_some() {
        return read_whole(resp, MAX_ANSWER_BODY, Some(idle))
            .await
            .map(|b| Held::Whole(Bytes::from(b)))
            .map_err(fail);
    }
    let mut scan = FirstValue::default();
    let mut held = Vec::new();
    loop {
        let next = tokio::time::timeout(idle, resp.chunk())
            .await
            .map_err(|_| fail(BodyError::Idle))?
            .map_err(|e| fail(BodyError::Broken(e)))?;
        let Some(chunk) = next else {
            return Ok(Held::Whole(Bytes::from(held)));
        };
        if held.len() + chunk.len() > MAX_ANSWER_BODY {
            return Err(fail(BodyError::TooLarge));
        }
        held.extend_from_slice(&chunk);
        if scan.feed(&chunk) {
            return Ok(Held::Streaming(Bytes::from(held)));
        }
    }
}

/// Reads a finite answer whole (JSON or an event stream that ends), at most
/// [`MAX_ANSWER_BODY`] bytes, giving up when nothing arrives for `idle`.
pub(super) async fn hold_whole(
    resp: &mut reqwest::Response,
    idle: Duration,
    url: &str,
) -> Result<Bytes, GatewayError> {
    read_whole(resp, MAX_ANSWER_BODY, Some(idle))
        .await
        .map(Bytes::from)
        .map_err(|e| body_error(e, url, idle))
}

fn body_error(e: BodyError, url: &str, idle: Duration) -> GatewayError {
    let url = url.to_string();
    match e {
        BodyError::TooLarge => GatewayError::AnswerTooLarge {
            url,
            limit: MAX_ANSWER_BODY,
        },
        BodyError::Broken(_) => GatewayError::AnswerBroken { url },
        BodyError::Idle => GatewayError::AnswerIdle {
            url,
            secs: idle.as_secs(),
        },
    }
}

/// Finds where the first JSON object or array of a body ends, fed chunk by
/// chunk, in one pass (JSON-RPC messages are objects, batches arrays; a
/// body starting with anything else is never "complete" and is read whole).
#[derive(Default)]
struct FirstValue {
    depth: usize,
    started: bool,
    in_string: bool,
    escaped: bool,
    /// Not an object or array: read to the end.
    other: bool,
}

impl FirstValue {
    /// Feeds the next bytes; whether the first value is now complete.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.other {
                return false;
            }
            if !self.started {
                match b {
                    b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b'{' | b'[' => {
                        self.started = true;
                        self.depth = 1;
                    }
                    _ => self.other = true,
                }
                continue;
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// An upstream answer being relayed to the host as it streams.
pub(super) struct Relay {
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
    /// How long the upstream may send nothing; `None` for a listen stream.
    idle: Option<Duration>,
    /// The id of the POST this event stream answers, if any (`None` for a
    /// GET stream, and for JSON, where no event can be added).
    answers: Option<Value>,
    url: String,
    /// The last few bytes relayed: whether an event was left half-sent.
    tail: Vec<u8>,
    log: PendingLog,
    /// No more items (the last one was ours).
    done: bool,
    /// Forgets the account's tools when the stream says they changed.
    watch: Option<ToolWatch>,
}

/// Looks for `notifications/tools/list_changed` in a relayed stream, across
/// chunk boundaries, without parsing it.
struct ToolWatch {
    catalogue: Catalogue,
    account_id: String,
    /// The end of the previous chunk, in case the name straddles two.
    carry: Vec<u8>,
}

const LIST_CHANGED: &[u8] = b"notifications/tools/list_changed";

impl ToolWatch {
    fn see(&mut self, chunk: &[u8]) {
        let n = LIST_CHANGED.len() - 1;
        let straddling = {
            let mut joined = self.carry.clone();
            joined.extend_from_slice(&chunk[..chunk.len().min(n)]);
            memchr::memmem::find(&joined, LIST_CHANGED).is_some()
        };
        if straddling || memchr::memmem::find(chunk, LIST_CHANGED).is_some() {
            // Wrongly seen (the words inside a result) costs one refetch.
            self.catalogue.forget(&self.account_id);
        }
        self.carry
            .extend_from_slice(&chunk[chunk.len().saturating_sub(n)..]);
        let excess = self.carry.len().saturating_sub(n);
        self.carry.drain(..excess);
    }
}

impl Relay {
    /// Relays `upstream` for the call `log` records, giving up after `idle`
    /// without a byte (never, for `None`); `answers` is the id of the POST
    /// whose event stream it is, if any.
    pub(super) fn new(
        upstream: BoxStream<'static, reqwest::Result<Bytes>>,
        idle: Option<Duration>,
        answers: Option<Value>,
        url: String,
        log: PendingLog,
    ) -> Self {
        Self {
            upstream,
            idle,
            answers,
            url,
            tail: Vec::new(),
            log,
            done: false,
            watch: None,
        }
    }

    /// Also forgets `account_id`'s tools in `catalogue` when the stream
    /// carries `notifications/tools/list_changed`.
    pub(super) fn watching_tool_changes(
        mut self,
        catalogue: Catalogue,
        account_id: String,
    ) -> Self {
        self.watch = Some(ToolWatch {
            catalogue,
            account_id,
            carry: Vec::new(),
        });
        self
    }

    /// Relays chunk by chunk as they come, never re-parsing and never
    /// buffering (memory stays one chunk however long the stream, its
    /// events or its lines), malformed SSE included: the host's MCP client
    /// judges the bytes, as it would talking to the server directly.
    ///
    /// Why an idle bound: a stalled upstream (a hung process, a machine gone
    /// without closing the connection) would otherwise hold the host's call
    /// open forever. A listen stream has none: it is quiet by nature until
    /// something changes, nobody waits on it for an answer, and a vanished
    /// upstream machine is found by TCP keep-alive (see `Gateway::new`).
    /// After `stream_idle_timeout` without a byte, or when the upstream cuts
    /// the stream, the companion hangs up on the upstream, logs
    /// `stream_idle` / `stream_broken`, and:
    /// - a POST's stream (a call waiting for its answer) gets a last event,
    ///   a JSON-RPC error for the request's id naming the cause, then ends,
    ///   so the host's call fails at once with a reason;
    /// - a GET stream ends (cleanly when idle: MCP clients reopen it, and a
    ///   dead upstream then answers 502/504 at once; cut when cut).
    ///
    /// In the middle of an event no event can be added, so the host's
    /// connection is cut instead of completing half an event with ours.
    ///
    /// The host closing its end drops the relay and with it the upstream
    /// request: in MCP 2026-07-28 that is how a request is cancelled. (The
    /// call log cannot tell that from a host that leaves once it has read
    /// its answer, which is common, without parsing the stream; it keeps
    /// the outcome so far.)
    pub(super) fn run(self) -> impl Stream<Item = Result<Bytes, BoxError>> {
        futures_util::stream::unfold(self, |mut r| async move {
            if r.done {
                return None;
            }
            let next = match r.idle {
                Some(idle) => tokio::time::timeout(idle, r.upstream.next()).await,
                None => Ok(r.upstream.next().await),
            };
            match next {
                Ok(Some(Ok(chunk))) => {
                    r.remember(&chunk);
                    if let Some(w) = r.watch.as_mut() {
                        w.see(&chunk);
                    }
                    Some((Ok(chunk), r))
                }
                Ok(None) => None,
                Ok(Some(Err(_))) => {
                    r.log.outcome = CallOutcome::StreamBroken;
                    r.finish("closed the connection in the middle of its answer", true)
                }
                Err(_) => {
                    r.log.outcome = CallOutcome::StreamIdle;
                    let secs = r.idle.map_or(0, |d| d.as_secs());
                    let why = format!("sent nothing for {secs} s; the call was ended");
                    r.finish(&why, false)
                }
            }
        })
    }

    fn remember(&mut self, chunk: &[u8]) {
        self.tail
            .extend_from_slice(&chunk[chunk.len().saturating_sub(4)..]);
        let excess = self.tail.len().saturating_sub(4);
        self.tail.drain(..excess);
    }

    /// Whether what was relayed so far ends with a complete event.
    fn at_boundary(&self) -> bool {
        self.tail.is_empty()
            || [
                &b"\n\n"[..],
                b"\r\r",
                b"\r\n\r\n",
                b"\n\r\n",
                b"\r\n\n",
                b"\r\r\n",
            ]
            .iter()
            .any(|end| self.tail.ends_with(end))
    }

    /// The stream's last item after the upstream failed (`cut`: it broke
    /// rather than went quiet).
    fn finish(mut self, why: &str, cut: bool) -> Option<(Result<Bytes, BoxError>, Self)> {
        self.done = true;
        let message = format!("the upstream MCP server at {} {why}", self.url);
        let boundary = self.at_boundary();
        match self.answers.take() {
            Some(id) if boundary => {
                let error = jsonrpc::error_response(&id, jsonrpc::SERVER_ERROR, &message);
                let event = Bytes::from(format!("event: message\ndata: {error}\n\n"));
                Some((Ok(event), self))
            }
            Some(_) => Some((Err(message.into()), self)),
            None if cut => Some((Err(message.into()), self)),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::FakeClock;
    use crate::config::{Config, ConsentMode};
    use crate::gateway::state::Principal;
    use crate::secrets::{MemoryStore, SecretStore};
    use crate::state::AppState;
    use crate::store::Store;

    #[test]
    fn a_list_changed_notification_is_seen_however_the_stream_is_cut() {
        let event =
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n";
        for size in [1, 3, 7, 31, 32, 33, 1000] {
            let catalogue = Catalogue::default();
            catalogue.learn("a", &[serde_json::json!({"name": "t"})]);
            let mut watch = ToolWatch {
                catalogue: catalogue.clone(),
                account_id: "a".into(),
                carry: Vec::new(),
            };
            for chunk in event.as_bytes().chunks(size) {
                watch.see(chunk);
            }
            assert_eq!(catalogue.read_only("a", "t"), None, "chunks of {size}");
        }
        let catalogue = Catalogue::default();
        catalogue.learn("a", &[serde_json::json!({"name": "t"})]);
        let mut watch = ToolWatch {
            catalogue: catalogue.clone(),
            account_id: "a".into(),
            carry: Vec::new(),
        };
        watch.see(b"data: {\"method\":\"notifications/progress\"}\n\n");
        assert_eq!(
            catalogue.read_only("a", "t"),
            Some(false),
            "other events keep it"
        );
    }

    fn complete_after(chunks: &[&str]) -> Option<usize> {
        let mut scan = FirstValue::default();
        chunks.iter().position(|c| scan.feed(c.as_bytes()))
    }

    #[test]
    fn the_first_value_ends_where_its_outer_brackets_close() {
        assert_eq!(complete_after(&[r#"{"a":1}"#]), Some(0));
        assert_eq!(complete_after(&["\n [", "{}, {\"b\":[2]}", "]\n"]), Some(2));
        // Brackets, quotes and escapes inside strings are text.
        assert_eq!(complete_after(&[r#"{"s":"}]\"{"#, r#"[\\""#, "}"]), Some(2));
        // A listen stream sent as JSON lines: complete after the first.
        assert_eq!(complete_after(&["{\"ack\":{}}\n", "{\"n\":1}\n"]), Some(0));
        // Never complete: unfinished, or not an object or array.
        assert_eq!(complete_after(&["{\"a\":[1,2"]), None);
        assert_eq!(complete_after(&["\"text\"", "{}"]), None);
        assert_eq!(complete_after(&["<html>{}"]), None);
        assert_eq!(complete_after(&["", " "]), None);
    }

    fn state() -> AppState {
        AppState::new(
            Store::open_in_memory().expect("store"),
            SecretStore::new(MemoryStore::default()),
            Arc::new(FakeClock::new(0)),
            Config {
                data_dir: "/nonexistent".into(),
                default_server: None,
                consent_mode: ConsentMode::Browser,
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_listen_stream_outlives_any_idle_bound_and_an_answer_does_not() {
        let state = state();
        let principal = Principal::Pat {
            account_id: "a".into(),
        };
        let log = || PendingLog::start(&state, &principal, "a", Vec::new(), None);
        let quiet = || futures_util::stream::pending::<reqwest::Result<Bytes>>().boxed();
        let relay =
            |idle, id: i64| Relay::new(quiet(), idle, Some(Value::from(id)), "u".into(), log());
        let mut listen = Box::pin(relay(None, 1).run());
        let mut call = Box::pin(relay(Some(Duration::from_secs(300)), 2).run());
        // A day of silence, on the paused clock.
        let day = tokio::time::sleep(Duration::from_secs(86_400));
        tokio::select! {
            _ = listen.next() => panic!("the listen stream ended"),
            _ = day => {}
        }
        let ended = call.next().await.expect("an error event").expect("bytes");
        assert!(String::from_utf8_lossy(&ended).contains("sent nothing for 300 s"));
    }
}
