//! The store's error type: what went wrong, precise enough for the API to pick a status.

/// An error from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row that the operation needs does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; names what was taken (e.g. `username`).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database said no.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite message writer's own connection said no.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be read back (a bug or tampering, never user input).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The message or payment writer has stopped (the server is shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// A batch of payment answers kept meeting other writers' changes to its wallets (other
    /// nodes); nothing of it was written.
    #[error("the ledger is busy; try again")]
    Busy,
    /// An idempotency key came back with a different request than the one it first named.
    #[error("the idempotency key was already used for a different request")]
    IdempotencyKeyReused,
    /// An app's message found its send budget empty ([`NewMessage::budget`](crate::NewMessage));
    /// nothing was stored.
    #[error("the app's send budget is empty")]
    BudgetExceeded,
    /// The configuration names something the store cannot open.
    #[error("cannot open the database: {0}")]
    Open(String),
}

impl StoreError {
    /// Maps a unique-constraint violation to [`StoreError::Conflict`] naming `what`.
    pub(crate) fn conflict_on_unique(e: sqlx::Error, what: &'static str) -> Self {
        if let sqlx::Error::Database(db) = &e
            && db.is_unique_violation()
        {
            return StoreError::Conflict(what);
        }
        StoreError::Database(e)
    }
}
