use funnel_domain::DomainError;
use sea_orm::{DbErr, RuntimeErr, SqlErr};
use thiserror::Error;

/// Why a store operation failed, classified once here so that callers never
/// see raw driver text.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    AlreadyExists(String),
    /// A stale etag or a lost race against a concurrent writer.
    #[error("{0}")]
    Conflict(String),
    #[error("the database is unavailable, try again later")]
    Unavailable(String),
    /// Anything unexpected; the cause is logged, not shown to clients.
    #[error("internal storage error")]
    Internal(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Self::NotFound { kind, id: id.to_string() }
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = error.sql_err() {
            return StoreError::AlreadyExists(format!("a record with the same key already exists ({detail})"));
        }
        if let Some(SqlErr::ForeignKeyConstraintViolation(detail)) = error.sql_err() {
            return StoreError::Conflict(format!("a referenced record changed concurrently ({detail})"));
        }
        match &error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreError::Unavailable(error.to_string()),
            DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))
                if is_transient(&inner.to_string()) =>
            {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Internal(error.to_string()),
        }
    }
}

/// Errors after which the same request may succeed: a busy SQLite file, a
/// dropped or refused PostgreSQL connection, a failover.
fn is_transient(message: &str) -> bool {
    const MARKERS: [&str; 9] = [
        "database is locked",
        "error communicating with database",
        "unexpected eof",
        "connection refused",
        "connection reset",
        "broken pipe",
        "pool timed out",
        "terminating connection",
        "the database system is",
    ];
    let message = message.to_ascii_lowercase();
    MARKERS.iter().any(|marker| message.contains(marker))
}
