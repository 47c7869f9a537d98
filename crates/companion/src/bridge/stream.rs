//! The server's own stream (GET): requests and notifications not tied to a
//! host request, written to the host as they come. One listener per session
//! generation; it reconnects with `Last-Event-ID` until the session changes
//! or the bridge stops.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::sync::{watch, Mutex};

use super::mcp::Mcp;
use super::oauth::OAuthClient;
use super::session::Session;
use super::stdio::{one_line, Host, MAX_MESSAGE};
use crate::sse;

/// What a listener needs, cloned out of the relay so it outlives no one.
pub(super) struct Listener {
    /// The endpoint to GET.
    pub(super) mcp: Mcp,
    /// The session it listens for; a new generation ends it.
    pub(super) session: Arc<Mutex<Session>>,
    /// Where its tokens come from.
    pub(super) auth: Arc<OAuthClient>,
    /// Where its messages go.
    pub(super) host: Host,
    /// Set when the bridge stops.
    pub(super) stop: watch::Receiver<bool>,
}

impl Listener {
    /// Listens in the background for the session of `generation`.
    pub(super) fn spawn(self, generation: u64) {
        let Self {
            mcp,
            session,
            auth,
            host,
            mut stop,
        } = self;
        tokio::spawn(async move {
            let mut last_id: Option<String> = None;
            let mut backoff = Duration::from_millis(500);
            loop {
                let (sid, protocol) = {
                    let s = session.lock().await;
                    match (&s.id, s.generation == generation) {
                        (Some(id), true) => (id.clone(), s.protocol.clone()),
                        _ => return,
                    }
                };
                if *stop.borrow() {
                    return;
                }
                let Ok(token) = auth.access_token(None).await else {
                    return;
                };
                let request = mcp.listen(&token, &sid, protocol.as_deref(), last_id.as_deref());
                let sent = tokio::select! {
                    r = mcp.send(request) => r,
                    _ = stop.wait_for(|s| *s) => return,
                };
                match sent {
                    Ok(resp) if resp.status().is_success() => {
                        backoff = Duration::from_millis(500);
                        let mut resp = resp;
                        let mut parser = sse::Parser::new(MAX_MESSAGE);
                        loop {
                            let chunk = tokio::select! {
                                c = resp.chunk() => c,
                                _ = stop.wait_for(|s| *s) => return,
                            };
                            let Ok(Some(c)) = chunk else { break };
                            let Ok(events) = parser.feed(&c) else { break };
                            for ev in events {
                                if ev.event.as_deref().is_some_and(|e| e != "message") {
                                    continue;
                                }
                                if let Some(line) = one_line(ev.data.as_bytes()) {
                                    host.emit(line).await;
                                }
                            }
                        }
                        last_id = parser.last_id().map(str::to_string).or(last_id);
                    }
                    // No standalone stream offered, or the session is gone
                    // (a re-initialization starts a new listener).
                    Ok(resp)
                        if matches!(
                            resp.status(),
                            StatusCode::METHOD_NOT_ALLOWED
                                | StatusCode::NOT_FOUND
                                | StatusCode::BAD_REQUEST
                        ) =>
                    {
                        return
                    }
                    Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED => {
                        let Ok(_) = auth.renew(Some(&token), None).await else {
                            return;
                        };
                    }
                    _ => {}
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        });
    }
}
