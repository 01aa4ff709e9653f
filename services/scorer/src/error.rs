use thiserror::Error;

/// Why a training or scoring run failed.
#[derive(Debug, Error)]
pub enum ScorerError {
    #[error(transparent)]
    Store(#[from] funnel_store::StoreError),
    #[error("model: {0}")]
    Model(#[from] funnel_scoring::Error),
    #[error("the training lease of pipeline {0} was lost to another worker; nothing was written")]
    LeaseLost(String),
    #[error("pipeline {0} is being trained by another worker")]
    Busy(String),
    #[error("background task failed: {0}")]
    Task(String),
}

pub type Result<T, E = ScorerError> = std::result::Result<T, E>;
