//! `/oauth/authorize` and the consent page behind it. Everything about the
//! request is validated before anything is shown; problems with `client_id`
//! or `redirect_uri` are shown, never redirected.

use std::collections::HashMap;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;

use spor_wire::oauth::authorize::{check_request, client_redirect, select_redirect};
use spor_wire::oauth::client_metadata::{is_document_url, verifying_host};
use spor_wire::oauth::{param, parse_params};

use super::consent_page::{self, PageError, PageModel, TOOL_BOX};
use crate::access::{Access, AccessError};
use crate::accounts::{self, AccountError};
use crate::config::ConsentMode;
use crate::consent::{self, requester, ConsentError, PendingRequest};
use crate::host::LocalHost;
use crate::peer::known_app_named;
use crate::sensitive::{Abbreviated, Sensitive};
use crate::state::AppState;
use crate::store::Client;
use crate::tokens;

/// Longest authorization query we read.
const MAX_QUERY: usize = 8 * 1024;

fn shown_error(status: StatusCode, message: &str) -> Response {
    consent_page::error_page(status, message)
}

/// `GET /oauth/authorize`
pub async fn authorize(
    State(state): State<AppState>,
    Extension(host): Extension<LocalHost>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if query.len() > MAX_QUERY {
        return shown_error(
            StatusCode::URI_TOO_LONG,
            "The authorization request is too long.",
        );
    }
    let params = match parse_params(&query) {
        Ok(p) => p,
        Err(e) => {
            return shown_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The authorization request is malformed: {}.",
                    e.description()
                ),
            )
        }
    };
    let get = |k: &str| param(&params, k);

    // 1. Who is asking, and where would the answer go? Errors here are shown.
    let Some(client_id) = get("client_id") else {
        return shown_error(
            StatusCode::BAD_REQUEST,
            "The authorization request has no client_id.",
        );
    };
    let client = if is_document_url(client_id) {
        match document_client(&state, client_id).await {
            Ok(c) => c,
            Err(page) => return page,
        }
    } else {
        match state.store.client(client_id.to_string()).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return shown_error(
                    StatusCode::BAD_REQUEST,
                    "This assistant is not registered with Spor Companion (unknown client_id). Ask it to connect again.",
                )
            }
            Err(e) => {
                tracing::error!(error = %e, "storage failure");
                return shown_error(StatusCode::INTERNAL_SERVER_ERROR, "Spor Companion could not read its database.");
            }
        }
    };
    let (redirect_uri, redirect) = match select_redirect(&client.redirect_uris, get("redirect_uri"))
    {
        Ok(r) => r,
        Err(message) => return shown_error(StatusCode::BAD_REQUEST, message),
    };
    let issuer = host.issuer();
    let client_state = get("state").map(str::to_string);
    let fail = |code: &str, desc: &str| -> Response {
        Redirect::to(&client_redirect(
            &redirect_uri,
            &[("error", code), ("error_description", desc)],
            client_state.as_deref(),
            &issuer,
        ))
        .into_response()
    };

    // 2. The rest is reported back to the client.
    let checked = match check_request(&params, &host) {
        Ok(c) => c,
        Err((code, description)) => return fail(code, &description),
    };

    if is_document_url(&client.id) {
        // Stored only now that the whole request holds up.
        if let Err(page) = store_document_client(&state, &client).await {
            return page;
        }
    }
    // A document naming a known host (e.g. Claude Code) expects that host's
    // program on the redirect port.
    let expected_app = is_document_url(&client.id)
        .then(|| known_app_named(&client.name).map(str::to_string))
        .flatten();
    let requester =
        requester::inspect(client.registered_by.clone(), expected_app, &redirect_uri).await;
    let now = state.now();
    let request = PendingRequest {
        id: tokens::random_b64(16),
        client_id: client.id.clone(),
        client_name: client.name.clone(),
        redirect_uri: redirect_uri.clone(),
        redirect_sent: get("redirect_uri").is_some(),
        redirect_host: redirect.display_host(),
        state: client_state.clone(),
        code_challenge: checked.code_challenge,
        scope: checked.scope,
        resource: checked.resource,
        issuer: issuer.clone(),
        created_at: now,
        csrf: Sensitive::new(tokens::random_b64(24)),
        requester,
        verified_by: verifying_host(&client.id),
    };
    let id = request.id.clone();
    // The id gives the consent page and its CSRF token, so it stays out of
    // INFO; `consent list` shows it to the person who runs the daemon.
    tracing::info!(
        client = %client.id,
        name = %client.name,
        "authorization request waiting for consent (approve in the browser, or see: spor-companiond consent list)"
    );
    tracing::debug!(request = %Abbreviated(&id), "consent request created");
    state.consent.submit(request, now);
    Redirect::to(&format!("/oauth/consent/{id}")).into_response()
}

/// The client a metadata document URL names: its document fetched (or
/// still fresh) and checked, not stored yet. A document that cannot be used
/// gets a page naming the URL and why.
async fn document_client(state: &AppState, url: &str) -> Result<Client, Response> {
    let document = match state.client_documents.get(url, state.now()).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(
                code = e.code(),
                "a client's metadata document was refused: {e}"
            );
            return Err(consent_page::refusal_page(
                StatusCode::BAD_REQUEST,
                e.code(),
                &format!(
                    "Spor Companion could not verify this assistant. Its metadata document at {url} cannot be used: {e}."
                ),
            ));
        }
    };
    Ok(Client {
        id: url.to_string(),
        name: document.name,
        redirect_uris: document.redirect_uris,
        created_at: state.now(),
        // No program registers a document client; the consent still
        // names who listens on its redirect port.
        registered_by: None,
        application_type: None,
    })
}

/// Stores a document client under its URL, so one client stands for every
/// installation of it, or brings it up to date with its document.
async fn store_document_client(state: &AppState, client: &Client) -> Result<(), Response> {
    match state
        .store
        .upsert_document_client(client.clone(), state.limits.max_clients)
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(shown_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many assistants are connected to Spor Companion; disconnect one first.",
        )),
        Err(e) => {
            tracing::error!(error = %e, "storage failure");
            Err(shown_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Spor Companion could not write its database.",
            ))
        }
    }
}

async fn render(
    state: &AppState,
    request: &PendingRequest,
    error: Option<PageError>,
    status: StatusCode,
    load_tools: Option<&str>,
) -> Response {
    let options = consent::org_options(state).await;
    // Only the page that decides shows the checklist.
    let tools = match state.config.consent_mode {
        ConsentMode::Browser => consent::tool_choices(state, &options, load_tools).await,
        _ => Vec::new(),
    };
    let model = PageModel {
        request,
        tools,
        loaded: load_tools.map(str::to_string),
        options,
        // Unreadable accounts show no server here; the form's POST checks
        // again and fails closed.
        known_servers: accounts::known_servers(state).await.unwrap_or_default(),
        hosted: state.upstream.hosted().default_spor().clone(),
        mode: state.config.consent_mode,
        cli: consent_page::cli_command(&state.config.data_dir),
        error,
    };
    consent_page::consent(status, &model)
}

/// What the consent page's URL may ask for.
#[derive(Deserialize, Default)]
pub struct PageQuery {
    /// Load this account's tools for the checklist (the person picked
    /// "Chosen tools"); opening the page alone contacts no MCP server.
    #[serde(default)]
    tools: Option<String>,
}

/// `GET /oauth/consent/{id}`
pub async fn consent_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    match state.consent.pending(&id, state.now()) {
        Some(req) => render(&state, &req, None, StatusCode::OK, query.tools.as_deref()).await,
        None => gone(),
    }
}

fn gone() -> Response {
    shown_error(
        StatusCode::NOT_FOUND,
        "This authorization request has expired or was already decided. Go back to your assistant and connect again.",
    )
}

/// A form POST must come from our own page: same origin, right CSRF token.
fn check_form_origin(host: &LocalHost, headers: &HeaderMap) -> bool {
    let ours = host.base();
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin == ours,
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|r| r.starts_with(&format!("{ours}/"))),
    }
}

/// What a consent form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormAction {
    Allow,
    Deny,
    AddToken,
}

/// Why a consent form was refused before it was acted on; each is a `403`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormRefusal {
    /// Native mode: the desktop window decides.
    DecidedInApp,
    /// `--consent cli`: only the terminal allows or adds tokens.
    DecidedInTerminal,
    /// Not sent from our own page (`Origin`, else `Referer`).
    ForeignOrigin,
    /// The CSRF token does not match the request's.
    StaleForm,
}

impl FormRefusal {
    /// The stable code the page names in `data-error`.
    fn code(self) -> &'static str {
        match self {
            Self::DecidedInApp => "approve_in_app",
            Self::DecidedInTerminal => "approve_in_terminal",
            Self::ForeignOrigin => "foreign_origin",
            Self::StaleForm => "stale_form",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::DecidedInApp => "Approve this request in the Spor Companion window.",
            Self::DecidedInTerminal => {
                "This Spor Companion takes approvals and tokens only from a terminal: \
                 run spor-companiond consent approve with the id shown on the page."
            }
            Self::ForeignOrigin => "This form must be sent from the Spor Companion page itself.",
            Self::StaleForm => {
                "This form is stale or was not sent from the Spor Companion page. \
                 Reload the page and try again."
            }
        }
    }

    fn page(self) -> Box<Response> {
        Box::new(consent_page::refusal_page(
            StatusCode::FORBIDDEN,
            self.code(),
            self.message(),
        ))
    }
}

/// Whether the consent mode lets the page do `action` at all.
fn mode_allows(mode: ConsentMode, action: FormAction) -> Result<(), FormRefusal> {
    match (mode, action) {
        (ConsentMode::Browser, _) | (ConsentMode::Cli, FormAction::Deny) => Ok(()),
        (ConsentMode::Cli, FormAction::Allow | FormAction::AddToken) => {
            Err(FormRefusal::DecidedInTerminal)
        }
        (ConsentMode::Native, _) => Err(FormRefusal::DecidedInApp),
    }
}

/// Fields of the decision form.
#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    decision: String,
    #[serde(default)]
    account_id: Option<String>,
    /// `full` (or absent), `read_only`, or `tools` with the ticked `tool:NAME`
    /// boxes.
    #[serde(default)]
    access: Option<String>,
    /// The checklist's boxes, `tool:NAME=on` (names are any text a server chose).
    #[serde(flatten)]
    boxes: HashMap<String, String>,
}

impl DecisionForm {
    /// The access the form asks for.
    fn access(&self) -> Result<Access, AccessError> {
        match self.access.as_deref().unwrap_or("full") {
            "full" => Ok(Access::Full),
            "read_only" => Ok(Access::ReadOnly),
            "tools" => Access::tools(self.boxes.keys().filter_map(|k| k.strip_prefix(TOOL_BOX))),
            other => Err(AccessError::Unknown(other.chars().take(60).collect())),
        }
    }
}

/// Checks mode, origin and CSRF for a consent form, in that order (the mode
/// refuses whatever the form carries); on success returns the pending
/// request.
fn guard_form(
    state: &AppState,
    host: &LocalHost,
    headers: &HeaderMap,
    id: &str,
    csrf: &str,
    action: FormAction,
) -> Result<PendingRequest, Box<Response>> {
    mode_allows(state.config.consent_mode, action).map_err(FormRefusal::page)?;
    if !check_form_origin(host, headers) {
        return Err(FormRefusal::ForeignOrigin.page());
    }
    let Some(req) = state.consent.pending(id, state.now()) else {
        return Err(Box::new(gone()));
    };
    if !tokens::constant_time_eq(req.csrf.expose(), csrf) {
        return Err(FormRefusal::StaleForm.page());
    }
    Ok(req)
}

/// `POST /oauth/consent/{id}`: Allow or Deny.
pub async fn consent_decision(
    State(state): State<AppState>,
    Extension(host): Extension<LocalHost>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Response {
    let action = match form.decision.as_str() {
        "allow" => FormAction::Allow,
        "deny" => FormAction::Deny,
        _ => return shown_error(StatusCode::BAD_REQUEST, "Unknown decision."),
    };
    let req = match guard_form(&state, &host, &headers, &id, &form.csrf, action) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let access = match form.access() {
        Ok(a) => a,
        Err(e) => {
            let error = PageError {
                code: e.code(),
                message: e.to_string(),
            };
            return render(&state, &req, Some(error), StatusCode::BAD_REQUEST, None).await;
        }
    };
    let result = if action == FormAction::Allow {
        consent::approve(
            &state,
            &id,
            form.account_id.as_deref().filter(|s| !s.is_empty()),
            access,
        )
        .await
    } else {
        consent::deny(&state, &id)
    };
    match result {
        Ok(decision) => {
            // Collected here; the page's poll must not hand it out again.
            let _ = state.consent.take_decision(&id, req.csrf.expose());
            Redirect::to(decision.redirect.expose()).into_response()
        }
        Err(ConsentError::UnknownRequest) => gone(),
        Err(e @ ConsentError::Store(_)) => {
            tracing::error!(error = %e, "approval failed");
            let error = PageError {
                code: e.code(),
                message: "Spor Companion could not save the approval; see its log.".into(),
            };
            render(
                &state,
                &req,
                Some(error),
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
            )
            .await
        }
        Err(e) => {
            let error = PageError {
                code: e.code(),
                message: e.to_string(),
            };
            render(&state, &req, Some(error), StatusCode::BAD_REQUEST, None).await
        }
    }
}

/// Fields of the add-token form.
#[derive(Deserialize)]
pub struct AccountForm {
    csrf: String,
    #[serde(default)]
    server_url: Option<String>,
    #[serde(default)]
    mcp_url: Option<String>,
    pat: String,
}

/// `POST /oauth/consent/{id}/account`: paste a PAT, then back to the page.
pub async fn consent_add_account(
    State(state): State<AppState>,
    Extension(host): Extension<LocalHost>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let req = match guard_form(
        &state,
        &host,
        &headers,
        &id,
        &form.csrf,
        FormAction::AddToken,
    ) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let pat = Sensitive::new(form.pat);
    match accounts::paste_token_on_page(
        &state,
        form.server_url.as_deref(),
        form.mcp_url.as_deref(),
        pat,
    )
    .await
    {
        Ok(added) => {
            let mut to = format!("/oauth/consent/{id}");
            if let Some(w) = added.warnings.first() {
                tracing::warn!(account = %added.account.id, "{w}");
                to.push_str("?notice=unbound");
            }
            Redirect::to(&to).into_response()
        }
        Err(e) => {
            let status = match e {
                AccountError::Secret(_) | AccountError::Store(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                AccountError::Upstream(_) => StatusCode::BAD_GATEWAY,
                AccountError::TimedOut { .. } => StatusCode::GATEWAY_TIMEOUT,
                AccountError::TooManyPastes => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::BAD_REQUEST,
            };
            let message = if matches!(e, AccountError::TooManyPastes) {
                "Too many rejected tokens in the last minute. Wait a minute, then paste the token again.".to_string()
            } else {
                e.to_string()
            };
            let error = PageError {
                code: e.code(),
                message,
            };
            render(&state, &req, Some(error), status, None).await
        }
    }
}

/// `GET /oauth/consent/{id}/status?csrf=…`: lets the waiting page finish by
/// itself when the decision was made elsewhere (CLI, desktop window).
pub async fn consent_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params: HashMap<String, String> =
        parse_params(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let csrf = params.get("csrf").map(String::as_str).unwrap_or_default();
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    if state.consent.is_waiting(&id, csrf, state.now()) {
        return (no_store, Json(serde_json::json!({ "status": "pending" }))).into_response();
    }
    match state.consent.take_decision(&id, csrf) {
        Some(d) => (
            no_store,
            Json(serde_json::json!({ "status": "decided", "approved": d.approved, "redirect": d.redirect.expose() })),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, no_store, Json(serde_json::json!({ "status": "gone" }))).into_response(),
    }
}
