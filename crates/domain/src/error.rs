use thiserror::Error;

/// Why a request breaks a rule of the funnel.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A value is malformed or out of range; `field` names it as the API does.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The request is well formed but the current state does not allow it.
    #[error("{0}")]
    FailedPrecondition(String),
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), reason: reason.into() }
    }
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;
