//! The types the grant operations take and give back (codes, token pairs,
//! access checks, the grant list) and how long what they mint lives. The
//! operations themselves are in `grants`.

use serde::Serialize;

use super::accounts::Account;
use super::db::Mark;
use super::revoke_reason::RevokeReason;
use crate::access::Access;
use crate::clock::Timestamp;
use crate::sensitive::Sensitive;

/// Access tokens live 30 days.
pub const ACCESS_TOKEN_TTL: i64 = 30 * 86_400;
/// Refresh tokens live 90 days.
pub const REFRESH_TOKEN_TTL: i64 = 90 * 86_400;
/// How long a revoked grant is kept (listed as disconnected) before pruning.
pub const REVOKED_GRANT_RETENTION_SECS: i64 = 30 * 86_400;
/// Two refreshes of the same token within this many seconds are a benign race
/// (both get the same successor pair); later reuse is treated as theft.
pub const REFRESH_GRACE_SECS: i64 = 30;

/// What a client receives from the token endpoint.
#[derive(Debug, Clone)]
pub struct IssuedPair {
    /// The grant the pair belongs to.
    pub grant_id: String,
    /// `spor_oat_…`
    pub access_token: Sensitive<String>,
    /// `spor_ort_…`
    pub refresh_token: Sensitive<String>,
    /// When the access token expires.
    pub access_expires_at: Timestamp,
    /// Granted scope.
    pub scope: String,
}

/// An authorization code to store.
#[derive(Debug, Clone)]
pub struct NewCode {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The account the user picked.
    pub account_id: String,
    /// The exact redirect URI of the authorization request.
    pub redirect_uri: String,
    /// Whether the request named it explicitly (OAuth 2.1 §4.1.3).
    pub redirect_sent: bool,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Granted scope.
    pub scope: String,
    /// The `resource` of the request, if one was sent.
    pub resource: Option<String>,
    /// Expiry.
    pub expires_at: Timestamp,
    /// What the person let the assistant do.
    pub access: Access,
}

/// A stored authorization code, as the token endpoint needs it.
#[derive(Debug, Clone)]
pub struct CodeExchange {
    /// The client it was issued to.
    pub client_id: String,
    /// Redirect URI to match exactly.
    pub redirect_uri: String,
    /// Whether the exchange must repeat the redirect URI.
    pub redirect_sent: bool,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Set once redeemed.
    pub used_at: Option<Timestamp>,
}

/// Result of exchanging a code, all decided in one write; `E` is why the
/// presenter was refused.
#[derive(Debug)]
pub enum Redeemed<E> {
    /// A new grant and its first token pair.
    Issued(IssuedPair),
    /// No such client is registered; nothing changed.
    UnknownClient,
    /// No such code; nothing changed.
    UnknownCode,
    /// The presenter is not the code's client with its redirect URI and
    /// verifier; nothing changed (a replay by whoever saw the code ends nothing).
    Refused(E),
    /// Its own client presented it again: the grant it minted (if any, and
    /// named here) is now revoked.
    AlreadyUsed(Option<String>),
    /// The code expired; nothing changed.
    Expired,
    /// The account behind it was removed or rejected meanwhile.
    AccountGone,
}

/// Result of a refresh.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// A new pair; the presented token is now used.
    Rotated(IssuedPair),
    /// The presented token was rotated moments ago: here is the same successor.
    Replayed(IssuedPair),
    /// No such client is registered; nothing changed.
    UnknownClient,
    /// The token is unusable for the stated reason; nothing changed.
    Invalid(&'static str),
    /// The token was used before, outside the grace window: the grant is revoked.
    ReuseDetected,
}

/// Who a valid access token speaks for.
#[derive(Debug, Clone)]
pub struct AccessContext {
    /// The grant.
    pub grant_id: String,
    /// The client holding it.
    pub client_id: String,
    /// The account it acts as.
    pub account_id: String,
    /// When the token stops working: its expiry, or, once a refresh
    /// replaced it, the end of its grace if that comes first.
    pub usable_until: Timestamp,
    /// What the grant may do with the account's tools.
    pub access: Access,
}

/// An access token's check, the account it acts as (when valid and still
/// there), and where the database stood just before they were read.
#[derive(Debug, Clone)]
pub struct AccessSnapshot {
    /// The check.
    pub check: AccessCheck,
    /// The account, for a valid token.
    pub account: Option<Account>,
    /// Taken before the reads, so a change racing with them makes it stale.
    pub mark: Mark,
}

/// Result of checking an access token.
#[derive(Debug, Clone)]
pub enum AccessCheck {
    /// Usable.
    Valid(AccessContext),
    /// Known but past its expiry.
    Expired,
    /// Known, but a refresh replaced it longer ago than the grace allows.
    Superseded,
    /// Known but its grant was revoked (or its account removed/rejected).
    Revoked,
    /// Never issued here.
    Unknown,
}

/// A grant as the grant list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct GrantSummary {
    /// Grant id.
    pub id: String,
    /// Client id.
    pub client_id: String,
    /// The client's name: its own claim, or its metadata document's.
    pub client_name: String,
    /// The host whose metadata document names the client (CIMD), if any.
    pub verified_by: Option<String>,
    /// Account id, if the account still exists.
    pub account_id: Option<String>,
    /// Organization of that account.
    pub org: Option<String>,
    /// Server of that account.
    pub server: Option<String>,
    /// When connected.
    pub created_at: Timestamp,
    /// When last used (minute granularity).
    pub last_used_at: Option<Timestamp>,
    /// When revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Why it was revoked.
    pub revoke_reason: Option<RevokeReason>,
    /// What it may do with the account's tools.
    pub access: Access,
}
