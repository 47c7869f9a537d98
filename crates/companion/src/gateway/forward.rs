//! Forwarding an authorized `/mcp` call to the upstream at the transport
//! level, for both MCP eras on the one endpoint: legacy (2025-11-25 and
//! before: `initialize`, sessions bound to their grant, GET streams,
//! DELETE) and modern (2026-07-28: stateless POSTs carrying `_meta`,
//! `server/discover`, `subscriptions/listen`). Bodies and streams pass
//! through untouched; only the `Authorization` header is swapped, and
//! headers cross by the rules in `headers`.

use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::StreamExt;
use serde_json::Value;
use spor_wire::bearer::Bearer;
use spor_wire::peek::peek;

use super::auth::authorize;
use super::bearer::challenge;
use super::error::GatewayError;
use super::headers;
use super::log::PendingLog;
use super::mirror;
use super::policy;
use super::relay::{hold_answer, hold_whole, Held, Relay};
use super::session;
use super::state::Principal;
use crate::access::Access;
use crate::host::LocalHost;
use crate::http_body::read_prefix;
use crate::state::AppState;
use crate::store::{Account, CallOutcome, Era, RejectReason};
use crate::tokens;

/// Largest JSON-RPC POST body forwarded. POST bodies are read whole (they
/// are single JSON-RPC messages) so the call can be logged and an upstream
/// failure answered with the request's id.
const MAX_POST_BODY: usize = 4 * 1024 * 1024;

/// The 2026-07-28 request that opens a long-lived notification stream.
const LISTEN: &str = "subscriptions/listen";
/// The request whose answer is learnt and, under a policy, cut down.
const TOOLS_LIST: &str = "tools/list";

/// How much of an upstream's 401 body is read to learn why.
const REJECTION_BODY_LIMIT: usize = 8 * 1024;

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `POST|GET|DELETE /mcp`
pub async fn handle(
    State(state): State<AppState>,
    Extension(host): Extension<LocalHost>,
    req: Request,
) -> Response {
    let method = req.method().clone();
    if !matches!(method, Method::POST | Method::GET | Method::DELETE) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, POST, DELETE")],
        )
            .into_response();
    }
    let (principal, account) =
        match authorize(&state, &host, Bearer::from_headers(req.headers())).await {
            Ok(p) => p,
            Err(resp) => return resp,
        };
    let is_post = method == Method::POST;
    let (parts, body) = req.into_parts();

    let mut calls = Vec::new();
    let mut rpc_id = Value::Null;
    let mut body_bytes = None;
    if is_post {
        let Ok(bytes) = to_bytes(body, MAX_POST_BODY).await else {
            return GatewayError::BodyTooLarge(MAX_POST_BODY).answer(true, &Value::Null);
        };
        (calls, rpc_id) = peek(&bytes);
        body_bytes = Some(bytes);
    }
    let fail = |e: GatewayError| e.answer(is_post, &rpc_id);
    // Mirrored headers describe one message; a batch (legacy only) has none.
    let header_check = match calls.as_slice() {
        [one] => mirror::check(&parts.headers, one),
        _ => None,
    };
    let listen = matches!(calls.as_slice(), [one] if one.method == LISTEN);
    let modern = matches!(calls.as_slice(), [one] if mirror::era(one) == Era::Modern);

    let session = header_str(&parts.headers, "mcp-session-id").map(tokens::hash);
    if let Some(s) = &session {
        match session::owns(&state, &principal, s).await {
            Ok(true) => {}
            Ok(false) => return fail(GatewayError::SessionNotFound),
            Err(e) => return fail(e),
        }
    }

    if is_post {
        let len = body_bytes.as_ref().map_or(0, |b| b.len());
        if let Err(e) =
            policy::check(&state, &principal, &account, &parts.headers, &calls, len).await
        {
            tracing::info!(
                grant = principal.grant_id().unwrap_or_default(),
                code = e.code(),
                "call refused by the assistant's access"
            );
            PendingLog::start(&state, &principal, &account.id, calls, header_check).fail(&e);
            return fail(e);
        }
    }
    let lists_tools = matches!(calls.as_slice(), [one] if one.method == TOOLS_LIST);

    let Some(pat) = state.gateway.pats.get(&state.secrets, &account).await else {
        return fail(GatewayError::PatUnreadable);
    };
    let http = &state.gateway.http;
    let upstream = match state.gateway.urls.parsed(&account.mcp_url) {
        Ok(url) => http.request(method.clone(), url),
        // Unparsable: reqwest reports it when sent, as for any bad URL.
        Err(_) => http.request(method.clone(), &account.mcp_url),
    };
    let mut upstream = upstream
        .headers(headers::to_upstream(&parts.headers))
        .bearer_auth(pat.expose());
    if let Some(bytes) = body_bytes {
        upstream = upstream.body(bytes);
    }

    let mut log = PendingLog::start(&state, &principal, &account.id, calls, header_check);
    let mut resp = match send(&state, &account, upstream).await {
        Ok(r) => r,
        Err(e) => {
            log.fail(&e);
            return fail(e);
        }
    };
    let status = resp.status().as_u16();
    log.status = Some(status);

    if status == 401 {
        log.end(CallOutcome::Rejected);
        reject_account(&state, &account, resp).await;
        return challenge(
            &host,
            Some("the server rejected the stored Spor token; reconnect to paste a new one"),
        );
    }
    if status >= 500 {
        let e = GatewayError::UpstreamFailed {
            url: account.mcp_url.clone(),
            status,
        };
        log.fail(&e);
        return fail(e);
    }
    if !(200..300).contains(&status) {
        log.outcome = CallOutcome::Http(status);
    }

    // A JSON answer is held until it is one whole value, bounded in size
    // and idle time, so a cut, stalled or oversized answer reaches the host
    // as an error carrying its request id, not as a truncated body. A
    // listen stream is relayed from its first byte, whatever its type: it
    // stays open by design, and the host waits for nothing but its headers.
    let idle = state.gateway.stream_idle_timeout;
    let is_sse = header_str(resp.headers(), "content-type").is_some_and(|v| {
        v.trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
    });
    let held = if lists_tools && (200..300).contains(&status) {
        // A tool list is learnt (annotations for the access policy) and,
        // under a policy, cut down to what the grant allows: held whole.
        match hold_whole(&mut resp, idle, &account.mcp_url).await {
            Ok(bytes) => Held::Whole(list_answer(
                &state, &principal, &account, bytes, is_sse, &rpc_id,
            )),
            Err(e) => {
                log.fail(&e);
                return fail(e);
            }
        }
    } else if is_sse || listen {
        Held::Streaming(axum::body::Bytes::new())
    } else {
        match hold_answer(&mut resp, idle, &account.mcp_url).await {
            Ok(held) => held,
            Err(e) => {
                log.fail(&e);
                return fail(e);
            }
        }
    };

    // Bind a session the upstream just created; forget one that ended. A
    // modern request's 404 says the method is unknown, not the session.
    let returned = header_str(resp.headers(), "mcp-session-id").map(tokens::hash);
    if let Some(new) = returned.filter(|r| session.as_ref() != Some(r)) {
        if let Err(e) = session::bind(&state, &principal, new).await {
            return e.answer(false, &Value::Null);
        }
    }
    if let Some(s) = &session {
        let deleted = method == Method::DELETE && (200..300).contains(&status);
        if deleted || (status == 404 && !modern) {
            session::forget(&state, s).await;
        }
    }

    let mut out =
        Response::builder().status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY));
    if let Some(h) = out.headers_mut() {
        *h = headers::to_host(resp.headers());
    }
    let body = match held {
        // Logged (as `log` drops) once the answer is handed over.
        Held::Whole(bytes) => Body::from(bytes),
        // The stream ends when the upstream ends it, cuts it, stalls (see
        // `Relay`), the host closes it, or the grant is revoked.
        Held::Streaming(start) => {
            let cancel = state.gateway.stream_token(&principal);
            // Only an event stream can carry a last event for the call.
            let answers = (is_sse && is_post && !rpc_id.is_null()).then_some(rpc_id);
            let relay = Relay::new(
                resp.bytes_stream().boxed(),
                (!listen).then_some(idle),
                answers,
                account.mcp_url.clone(),
                log,
            )
            .watching_tool_changes(state.gateway.catalogue.clone(), account.id.clone());
            let start =
                futures_util::stream::iter(
                    (!start.is_empty()).then_some(Ok::<_, axum::BoxError>(start)),
                );
            Body::from_stream(
                start
                    .chain(relay.run())
                    .take_until(cancel.cancelled_owned()),
            )
        }
    };
    out.body(body)
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// A whole `tools/list` answer: its tools learnt for the account, and cut
/// down to what the principal's access offers. An answer that cannot be
/// read passes as it came under full access, and as nothing otherwise.
fn list_answer(
    state: &AppState,
    principal: &Principal,
    account: &Account,
    body: Bytes,
    is_sse: bool,
    id: &Value,
) -> Bytes {
    let access = principal.access();
    let rewritten = policy::rewrite_list_answer(&body, is_sse, id, |tools| {
        state.gateway.catalogue.learn(&account.id, tools);
        tools.retain(|t| policy::offers(access, t));
    });
    match rewritten {
        Some(out) if *access != Access::Full => Bytes::from(out),
        None if *access != Access::Full => {
            let error = spor_wire::jsonrpc::error_response(
                id,
                spor_wire::jsonrpc::SERVER_ERROR,
                &format!(
                    "the upstream MCP server at {} sent a tool list Spor Companion cannot read",
                    account.mcp_url
                ),
            );
            Bytes::from(error.to_string())
        }
        _ => body,
    }
}

/// Sends the request upstream, waiting at most the header timeout for the
/// answer's headers.
async fn send(
    state: &AppState,
    account: &Account,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, GatewayError> {
    let url = account.mcp_url.clone();
    match tokio::time::timeout(state.gateway.header_timeout, request.send()).await {
        Err(_) => Err(GatewayError::Timeout { url }),
        Ok(Err(e)) => {
            tracing::warn!(account = %account.id, connect = e.is_connect(), "upstream request failed");
            // Refused or unroutable, versus connected but then cut off or
            // answered with something that is not HTTP (e.g. oversized headers).
            Err(if e.is_connect() {
                GatewayError::Unreachable { url }
            } else {
                GatewayError::BadResponse { url }
            })
        }
        Ok(Ok(r)) => Ok(r),
    }
}

/// The upstream no longer accepts the PAT: every grant minted from it is
/// now worthless, so end them (the host then re-authorizes). The error body
/// (small, bounded) tells an expired token from a revoked one.
async fn reject_account(state: &AppState, account: &Account, mut resp: reqwest::Response) {
    let reason = match tokio::time::timeout(
        Duration::from_secs(2),
        read_prefix(&mut resp, REJECTION_BODY_LIMIT, |_| false),
    )
    .await
    {
        Ok(Ok(body)) => crate::upstream::reject_reason(&body),
        _ => RejectReason::Refused,
    };
    if let Err(e) = crate::accounts::reject(state, &account.id, reason).await {
        tracing::error!(error = %e, "could not record the rejected token");
    }
}
