//! SQLite storage: one file in the data dir, WAL, foreign keys on, embedded
//! append-only migrations. Every call runs on the blocking pool.

mod accounts;
mod audit;
mod calls;
mod clients;
mod db;
mod error;
mod grant_types;
mod grants;
mod group;
mod revoke_reason;
mod text_enum;

pub use accounts::{Account, AccountKind, AccountStatus, NewAccount, RejectReason, Upserted};
pub use calls::{CallOutcome, CallRecord, Era, HeaderCheck, GRANT_PRINCIPAL, MAX_CALLS_KEPT};
pub use clients::Client;
pub use db::{Mark, Store};
pub use error::StoreError;
pub use grant_types::{
    AccessCheck, AccessContext, AccessSnapshot, CodeExchange, GrantSummary, IssuedPair, NewCode,
    Redeemed, RefreshOutcome, ACCESS_TOKEN_TTL, REFRESH_GRACE_SECS, REFRESH_TOKEN_TTL,
    REVOKED_GRANT_RETENTION_SECS,
};
pub use revoke_reason::RevokeReason;
