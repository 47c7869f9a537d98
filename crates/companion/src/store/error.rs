//! What can go wrong in the storage layer; a leaf, so every table module
//! and the write grouping can name it.

/// Errors from the storage layer. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// A blocking task panicked or was cancelled.
    #[error("database task failed")]
    Join,
    /// A row held something the code cannot read (hand-edited database?).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A grouped write's transaction did not begin or did not reach the disk.
    #[error("database write not committed: {0}")]
    NotCommitted(String),
}
