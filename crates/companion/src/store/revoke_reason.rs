//! Why a grant was revoked, as the `grants.revoke_reason` column holds it.

use super::text_enum::stored_as_text;

/// Why a grant was revoked; stored as its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The person disconnected the assistant (window or CLI).
    RevokedByUser,
    /// The client revoked its own token (RFC 7009).
    RevokedByClient,
    /// An authorization code was used twice.
    AuthorizationCodeReuse,
    /// A refresh token was used again after its grace window.
    RefreshTokenReuse,
    /// The account's PAT was replaced.
    TokenReplaced,
    /// The account was removed.
    AccountRemoved,
    /// The upstream rejected the account's PAT.
    TokenRejected,
}

impl RevokeReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RevokedByUser => "revoked_by_user",
            Self::RevokedByClient => "revoked_by_client",
            Self::AuthorizationCodeReuse => "authorization_code_reuse",
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::TokenReplaced => "token_replaced",
            Self::AccountRemoved => "account_removed",
            Self::TokenRejected => "token_rejected",
        }
    }

    /// Reads a wire name; `None` for one this version does not know.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::RevokedByUser,
            Self::RevokedByClient,
            Self::AuthorizationCodeReuse,
            Self::RefreshTokenReuse,
            Self::TokenReplaced,
            Self::AccountRemoved,
            Self::TokenRejected,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for RevokeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

stored_as_text!(RevokeReason);
