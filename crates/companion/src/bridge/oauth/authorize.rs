//! Authorization code + PKCE S256 through the browser: the loopback
//! callback, (re)registration when the server lost ours, the consent page,
//! the RFC 9207 issuer check and the code exchange.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::credentials::{CredentialStore, Credentials};
use super::discovery::Endpoints;
use super::error::AuthError;
use super::registration::{client_known, register};
use super::settings::ClientSettings;
use super::token::{self, TokenFailure};
use crate::bridge::browser;
use crate::bridge::callback::{Callback, Outcome};
use crate::clock::Clock;
use crate::sensitive::Sensitive;
use crate::tokens::random_b64;

fn pkce_pair() -> (Sensitive<String>, String) {
    let verifier = random_b64(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (Sensitive::new(verifier), challenge)
}

/// Asks the person, through the browser, to let `creds`' client in
/// (registering it first if need be) and returns it with fresh tokens.
pub(super) async fn authorize(
    http: &reqwest::Client,
    settings: &ClientSettings,
    vault: &CredentialStore,
    clock: &dyn Clock,
    ep: &Endpoints,
    mut creds: Credentials,
) -> Result<Credentials, AuthError> {
    let callback = Callback::bind(settings.callback_port)
        .await
        .map_err(|e| AuthError::Callback(e.to_string()))?;
    let redirect_uri = callback.redirect_uri();
    if !creds.client_id.is_empty()
        && !client_known(http, ep, &settings.resource, &creds.client_id).await?
    {
        tracing::info!("the server no longer knows this bridge; registering again");
        creds.client_id.clear();
    }
    if creds.client_id.is_empty() {
        creds.client_id = register(http, ep, &settings.client_name, &redirect_uri).await?;
        creds.issuer = ep.issuer.clone();
        creds.clear_tokens();
        // Keep the registration even if the person never approves.
        vault.save(&creds).await?;
    }
    let (verifier, challenge) = pkce_pair();
    let state = Sensitive::new(random_b64(24));
    let mut url = ep.authorization.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &creds.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state.expose())
        .append_pair("resource", settings.resource.as_str());
    // The page is where the person decides; stderr reaches the host's log.
    eprintln!(
        "spor bridge: approve the connection in your browser. If no browser opened, visit:\n{url}"
    );
    if let Err(e) = browser::open(url.as_str()) {
        tracing::warn!("{e}");
    }
    let timeout = settings.auth_timeout;
    let outcome = callback
        .wait(state, timeout)
        .await
        .ok_or(AuthError::TimedOut(timeout.as_secs()))?;
    let (code, iss) = match outcome {
        Outcome::Code { code, iss } => (code, iss),
        Outcome::Error { error, description } => {
            return Err(AuthError::Denied(match description {
                Some(d) => format!("{error}: {d}"),
                None => error,
            }))
        }
    };
    // RFC 9207: a response from another issuer is a mix-up attack.
    match iss {
        Some(i) if i != ep.issuer => {
            return Err(AuthError::Token(format!(
                "the answer came from {i}, not {}",
                ep.issuer
            )))
        }
        None if ep.iss_parameter => {
            return Err(AuthError::Token(
                "the answer did not say who issued it".into(),
            ))
        }
        _ => {}
    }
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.expose().as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", creds.client_id.as_str()),
        ("code_verifier", verifier.expose().as_str()),
        ("resource", settings.resource.as_str()),
    ];
    match token::request(http, ep, &form).await {
        Ok(t) => {
            creds.set_tokens(t, clock.now());
            Ok(creds)
        }
        Err(TokenFailure::Refused(code, why)) => Err(AuthError::Token(format!("{code}: {why}"))),
        Err(TokenFailure::Other(e)) => Err(e),
    }
}
