//! One error type for the crate. Row-level trouble in a data file is not an
//! `Error`: readers yield [`crate::RowError`] per row and keep going, and the
//! CRM mapping collects [`crate::RowProblem`]s.

use std::path::PathBuf;

/// Whole-file or whole-call failures: nothing useful can be produced.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing a record to an in-memory or caller-supplied writer failed.
    #[error("cannot write {what}: {reason}")]
    Write { what: &'static str, reason: String },
    /// A CSV file is unusable as a whole (missing header, missing column).
    #[error("{file}: {reason}")]
    CsvFile { file: String, reason: String },
    /// A record breaks the format rules of FORMAT.md.
    #[error("invalid record {external_id}: {reason}")]
    InvalidRecord { external_id: String, reason: String },
    /// A record carries an attribute the CSV writer has no column for.
    #[error("record {external_id} has attribute {attribute} with no column in opportunities.csv")]
    UnknownAttribute { external_id: String, attribute: String },
    /// A simulation parameter is out of range.
    #[error("invalid simulation config: {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
}

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, Error>;
