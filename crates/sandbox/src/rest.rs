//! The `/v1` REST routes: identity, org choices, token list and revoke.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorCode};
use crate::server::AppState;
use crate::store::{Person, TokenInfo};
use crate::time;

/// The `/v1` routes, all bearer-protected.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/me/org-choices", get(org_choices))
        .route("/v1/me/tokens", get(list_tokens))
        .route("/v1/me/tokens/{hash_prefix}", delete(revoke_token))
}

/// Fallback for unknown routes: the 404 envelope.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Fallback for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "method not allowed",
    )
}

async fn me(Authenticated(caller): Authenticated) -> Json<Value> {
    let (person, name, email) = match &caller.person {
        Some(p) => (json!(p.id), json!(p.name), json!(p.email)),
        None => (Value::Null, Value::Null, Value::Null),
    };
    Json(json!({
        "person": person,
        "name": name,
        "email": email,
        "bound": caller.person.is_some(),
        "is_admin": caller.is_admin,
        "org": caller.org,
    }))
}

async fn org_choices(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    // Faults fire after authentication: a real server checks the token
    // before asking its identity provider.
    if state.faults.org_choices_502 {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Internal,
            "identity provider unavailable (injected fault org-choices-502)",
        ));
    }
    if state.faults.org_choices_404 {
        return Err(ApiError::not_found(
            "no such route (injected fault org-choices-404)",
        ));
    }
    let bound = caller.person.is_some();
    let token_org = caller.org.clone();
    let members = {
        let caller = caller.clone();
        state.with_store(move |s| s.memberships(&caller)).await?
    };
    let mut choices = vec![json!({
        "slug": token_org,
        "label": org_label(&token_org),
        "default": true,
    })];
    choices.extend(
        members
            .iter()
            .filter(|org| **org != token_org)
            .map(|org| json!({ "slug": org, "label": org_label(org) })),
    );
    Ok(Json(json!({
        "org_choices": choices,
        "source": if bound { "idp" } else { "bound" },
    })))
}

async fn list_tokens(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let person = caller.person.clone();
    let tokens = state.with_store(move |s| s.list_tokens(&caller)).await?;
    let now = time::now();
    let rows: Vec<Value> = tokens
        .iter()
        .map(|t| token_json(t, person.as_ref(), now))
        .collect();
    Ok(Json(json!({ "count": rows.len(), "tokens": rows })))
}

async fn revoke_token(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = path.map_err(|_| ApiError::bad_request("malformed hash prefix"))?;
    let prefix = raw.to_ascii_lowercase();
    let revoked = {
        let prefix = prefix.clone();
        state
            .with_store(move |s| s.revoke(&caller, &prefix))
            .await?
    };
    if !revoked {
        return Err(
            ApiError::not_found("no such token").with_details(json!({ "hash_prefix": prefix }))
        );
    }
    Ok(Json(json!({
        "revoked": true,
        "hash_prefix": prefix,
        "oauth_grants_revoked": 0,
    })))
}

/// One row as Spor documents it; every listed token is the caller's
/// person's (an unbound caller sees only its own token, with no person).
fn token_json(t: &TokenInfo, person: Option<&Person>, now: i64) -> Value {
    json!({
        "hash_prefix": t.hash_prefix,
        "person": person.map(|p| &p.id),
        "label": t.label,
        "name": person.map(|p| &p.name),
        "email": person.map(|p| &p.email),
        "created": time::rfc3339(t.created),
        "expires": t.expires.map(time::rfc3339),
        "expired": t.expires.is_some_and(|e| e <= now),
        "last_used": t.last_used.map(time::rfc3339),
    })
}

/// Display label for an org slug: the slug with its first letter upper-cased.
pub fn org_label(slug: &str) -> String {
    let mut chars = slug.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::org_label;

    #[test]
    fn labels() {
        assert_eq!(org_label("acme"), "Acme");
        assert_eq!(org_label("acme-labs"), "Acme-labs");
        assert_eq!(org_label("9lives"), "9lives");
        assert_eq!(org_label(""), "");
    }
}
