//! The one error type of the scoring crate.

/// Everything that can go wrong while building examples, training or scoring.
///
/// Too little data is not an error: `train_model` answers it with
/// `TrainingOutcome::InsufficientData`, so callers can fall back to the
/// baseline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline has no stages.
    #[error("the pipeline has no stages")]
    NoStages,

    /// Two stages share a key.
    #[error("stage key {key} appears more than once in the pipeline")]
    DuplicateStage { key: String },

    /// An opportunity has no creation record.
    #[error("opportunity {id} has no transitions, not even its creation")]
    EmptyHistory { id: String },

    /// Only open opportunities can be scored.
    #[error("opportunity {id} is not open (status {status})")]
    NotOpen { id: String, status: String },

    /// A training parameter is out of range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParam { name: &'static str, reason: String },

    /// Fitting needs both labels in the data it is given.
    #[error("cannot fit a classifier on one class ({advanced} advanced, {leaked} leaked)")]
    SingleClass { advanced: usize, leaked: usize },

    /// A feature row does not have as many values as the model has columns.
    #[error("expected {expected} feature columns, found {found}")]
    ColumnMismatch { expected: usize, found: usize },

    /// A stored model does not hold one coefficient per column.
    #[error("the model is inconsistent: {reason}")]
    InconsistentModel { reason: String },

    /// A stored model could not be read or written as JSON.
    #[error("model json is invalid")]
    Json(#[from] serde_json::Error),

    /// The solver itself failed (bad input values, line search failure).
    #[error("logistic regression fit failed")]
    Fit(#[from] linfa_logistic::error::Error),
}

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
