//! The bridge's loopback redirect target (RFC 8252 §7.3): a one-shot HTTP
//! listener on `127.0.0.1` that waits for the authorization response
//! carrying our `state`, shows the person a short page, and stops.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::sensitive::Sensitive;
use crate::tokens::constant_time_eq;

/// The callback port bridges use when it is free, so the registered
/// redirect URI stays the same from run to run.
pub const CALLBACK_PORT: u16 = 7768;
/// The callback path.
pub const CALLBACK_PATH: &str = "/callback";

/// What the authorization server sent back.
#[derive(Debug)]
pub enum Outcome {
    /// Approved: the code, and `iss` when the server sent it (RFC 9207).
    Code {
        /// The authorization code.
        code: Sensitive<String>,
        /// The issuer the response claims to come from.
        iss: Option<String>,
    },
    /// Refused or failed: the OAuth error and its description.
    Error {
        /// `error`, e.g. `access_denied`.
        error: String,
        /// `error_description`, if any.
        description: Option<String>,
    },
}

/// A bound callback listener, not yet serving.
#[derive(Debug)]
pub struct Callback {
    listener: TcpListener,
    port: u16,
}

#[derive(Clone)]
struct Shared {
    state: Sensitive<String>,
    tx: mpsc::Sender<Outcome>,
}

impl Callback {
    /// Binds `127.0.0.1:preferred`, or any free port when that one is taken
    /// (loopback redirect URIs match on any port, RFC 8252 §7.3).
    pub async fn bind(preferred: u16) -> std::io::Result<Self> {
        let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, preferred)).await {
            Ok(l) => l,
            Err(_) if preferred != 0 => TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?,
            Err(e) => return Err(e),
        };
        let port = listener.local_addr()?.port();
        Ok(Self { listener, port })
    }

    /// The redirect URI this listener answers.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Serves until a response with `state` arrives or `timeout` passes.
    pub async fn wait(self, state: Sensitive<String>, timeout: Duration) -> Option<Outcome> {
        let (tx, mut rx) = mpsc::channel(1);
        let app = Router::new()
            .route(CALLBACK_PATH, get(callback))
            .with_state(Shared { state, tx });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(
                self.listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future(),
        );
        let outcome = tokio::time::timeout(timeout, rx.recv())
            .await
            .ok()
            .flatten();
        let _ = stop_tx.send(());
        // Let the page that was just answered finish sending; bounded.
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        outcome
    }
}

async fn callback(
    State(shared): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state_ok = q
        .get("state")
        .is_some_and(|s| constant_time_eq(s, shared.state.expose()));
    if !state_ok {
        return page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is out of date",
            "It does not match the connection the Spor bridge is waiting for. Start again from your assistant.",
        );
    }
    let outcome =
        match (q.get("code"), q.get("error")) {
            (Some(code), None) if !code.is_empty() => Outcome::Code {
                code: Sensitive::new(code.clone()),
                iss: q.get("iss").cloned(),
            },
            (_, Some(error)) => Outcome::Error {
                error: error.clone(),
                description: q.get("error_description").cloned(),
            },
            _ => return page(
                StatusCode::BAD_REQUEST,
                "Something went wrong",
                "The answer carried neither a code nor an error. Start again from your assistant.",
            ),
        };
    let denied = matches!(outcome, Outcome::Error { .. });
    if shared.tx.try_send(outcome).is_err() {
        return page(
            StatusCode::CONFLICT,
            "Already answered",
            "This connection was already decided. You can close this tab.",
        );
    }
    if denied {
        page(
            StatusCode::OK,
            "Not connected",
            "Your assistant was not given access. You can close this tab.",
        )
    } else {
        page(
            StatusCode::OK,
            "Connected",
            "Your assistant can now use your Spor account. You can close this tab.",
        )
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    // Fixed strings only: nothing from the query is echoed into the page.
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title} · Spor Companion</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;margin:0;display:grid;place-items:center;\
         min-height:100vh;background:#f6f7f9;color:#1d2430}}main{{background:#fff;padding:2rem 2.5rem;\
         border-radius:12px;box-shadow:0 1px 3px #0002;max-width:28rem}}h1{{font-size:1.3rem;margin:0 0 .5rem}}\
         p{{margin:0;color:#4a5568}}</style></head><body><main><h1>{title}</h1><p>{text}</p></main></body></html>"
    );
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        Html(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_awaited_state_is_accepted_and_nothing_is_echoed() {
        let cb = Callback::bind(0).await.expect("bind");
        let base = cb.redirect_uri();
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        let waiting = tokio::spawn(cb.wait(
            Sensitive::new("s3cret-state".into()),
            Duration::from_secs(10),
        ));
        let http = reqwest::Client::new();
        let wrong = http
            .get(format!("{base}?state=other&code=<script>x</script>"))
            .send()
            .await
            .expect("wrong state answered");
        assert_eq!(wrong.status(), 400);
        let page = wrong.text().await.expect("page");
        assert!(
            page.contains("out of date") && !page.contains("<script>x"),
            "{page}"
        );
        let ok = http
            .get(format!(
                "{base}?state=s3cret-state&code=the-code&iss=http%3A%2F%2F127.0.0.1%3A1"
            ))
            .send()
            .await
            .expect("answered");
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()["cache-control"], "no-store");
        match waiting.await.expect("joined") {
            Some(Outcome::Code { code, iss }) => {
                assert_eq!(code.expose(), "the-code");
                assert_eq!(iss.as_deref(), Some("http://127.0.0.1:1"));
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_denial_is_reported_and_silence_times_out() {
        let cb = Callback::bind(0).await.expect("bind");
        let base = cb.redirect_uri();
        let waiting = tokio::spawn(cb.wait(Sensitive::new("st".into()), Duration::from_secs(10)));
        let denied = reqwest::get(format!(
            "{base}?state=st&error=access_denied&error_description=no"
        ))
        .await
        .expect("answered");
        assert!(denied.text().await.expect("page").contains("Not connected"));
        assert!(matches!(
            waiting.await.expect("joined"),
            Some(Outcome::Error { error, description }) if error == "access_denied" && description.as_deref() == Some("no")
        ));
        let cb = Callback::bind(0).await.expect("bind");
        assert!(cb
            .wait(Sensitive::new("st".into()), Duration::from_millis(50))
            .await
            .is_none());
    }

    #[tokio::test]
    async fn a_taken_preferred_port_falls_back_to_a_free_one() {
        let first = Callback::bind(0).await.expect("bind");
        let port: u16 = first
            .redirect_uri()
            .trim_start_matches("http://127.0.0.1:")
            .trim_end_matches(CALLBACK_PATH)
            .parse()
            .expect("port");
        let second = Callback::bind(port).await.expect("fallback");
        assert_ne!(second.redirect_uri(), first.redirect_uri());
    }
}
