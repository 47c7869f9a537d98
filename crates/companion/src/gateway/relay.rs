//! The upstream's answer on its way to the host: anything but an event
//! stream is read whole, bounded in size and idle time; an event stream is
//! relayed chunk by chunk with an idle bound.

use std::time::Duration;

use axum::body::Bytes;
use axum::BoxError;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use spor_wire::jsonrpc;

use super::error::GatewayError;
use super::log::PendingLog;
use crate::http_body::{read_whole, BodyError};
use crate::store::CallOutcome;

/// Largest answer read whole from the upstream (anything but an event
/// stream: one JSON-RPC response, an empty `202`, an error body); a larger
/// one becomes an error for the host.
pub(super) const MAX_ANSWER_BODY: usize = 16 * 1024 * 1024;

/// Reads a whole answer of at most [`MAX_ANSWER_BODY`] bytes from `url`,
/// giving up when nothing arrives for `idle`.
pub(super) async fn read_answer(
    resp: &mut reqwest::Response,
    idle: Duration,
    url: &str,
) -> Result<Bytes, GatewayError> {
    let url = url.to_string();
    read_whole(resp, MAX_ANSWER_BODY, Some(idle))
        .await
        .map(Bytes::from)
        .map_err(|e| match e {
            BodyError::TooLarge => GatewayError::AnswerTooLarge {
                url,
                limit: MAX_ANSWER_BODY,
            },
            BodyError::Broken(_) => GatewayError::AnswerBroken { url },
            BodyError::Idle => GatewayError::AnswerIdle {
                url,
                secs: idle.as_secs(),
            },
        })
}

/// An upstream event stream being relayed to the host.
pub(super) struct Relay {
    upstream: BoxStream<'static, reqwest::Result<Bytes>>,
    idle: Duration,
    /// The id of the POST this stream answers, if any.
    answers: Option<Value>,
    url: String,
    /// The last few bytes relayed: whether an event was left half-sent.
    tail: Vec<u8>,
    log: PendingLog,
    done: bool,
}

impl Relay {
    /// Relays `upstream` for the call `log` records; `answers` is the id of
    /// the POST it answers, if any.
    pub(super) fn new(
        upstream: BoxStream<'static, reqwest::Result<Bytes>>,
        idle: Duration,
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
        }
    }

    /// Relays chunk by chunk as they come, never re-parsing and never
    /// buffering (memory stays one chunk however long the stream, its
    /// events or its lines), malformed SSE included: the host's MCP client
    /// judges the bytes, as it would talking to the server directly.
    ///
    /// Why an idle bound: a stalled upstream (a hung process, a machine gone
    /// without closing the connection) would otherwise hold the host's call
    /// open forever. After `stream_idle_timeout` without a byte, or when the
    /// upstream cuts the stream, the companion hangs up on the upstream,
    /// logs `stream_idle` / `stream_broken`, and:
    /// - a POST's stream (a call waiting for its answer) gets a last event,
    ///   a JSON-RPC error for the request's id naming the cause, then ends,
    ///   so the host's call fails at once with a reason;
    /// - a GET stream ends (cleanly when idle: MCP clients reopen it, and a
    ///   dead upstream then answers 502/504 at once; cut when cut).
    ///
    /// In the middle of an event no event can be added, so the host's
    /// connection is cut instead of completing half an event with ours.
    pub(super) fn run(self) -> impl Stream<Item = Result<Bytes, BoxError>> {
        futures_util::stream::unfold(self, |mut r| async move {
            if r.done {
                return None;
            }
            match tokio::time::timeout(r.idle, r.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    r.remember(&chunk);
                    Some((Ok(chunk), r))
                }
                Ok(None) => None,
                Ok(Some(Err(_))) => {
                    r.log.outcome = CallOutcome::StreamBroken;
                    r.finish("closed the connection in the middle of its answer", true)
                }
                Err(_) => {
                    r.log.outcome = CallOutcome::StreamIdle;
                    let why = format!(
                        "sent nothing for {} s; the call was ended",
                        r.idle.as_secs()
                    );
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
