//! One error type for the command. A failed RPC keeps its `tonic::Status`
//! so the message a person reads names the gRPC code, the server's message
//! and every bad-request field; nothing here prints a Debug dump.

use std::path::PathBuf;

use funnel_pipeline::metrics::code_name;
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Everything that can make a command fail.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server could not be reached at all.
    #[error("cannot reach the funnel server at {server}: {reason}")]
    Connect { server: String, reason: String },
    /// An RPC answered with an error status.
    #[error("{rpc} failed with {}: {}", code_name(.status.code()), status_message(.status))]
    Rpc { rpc: &'static str, status: Status },
    /// A flag or argument is unusable before anything is sent.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// A local file could not be read or written.
    #[error("cannot access {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// The data set reader or simulator refused the input as a whole.
    #[error(transparent)]
    Dataset(#[from] funnel_dataset::Error),
    /// A retraining job ended in FAILED.
    #[error("retraining job {job_id} failed: {message}")]
    RetrainFailed { job_id: String, message: String },
    /// Waiting for something took longer than allowed.
    #[error("gave up after {seconds} s: {what}")]
    TimedOut { what: String, seconds: u64 },
}

/// Result alias for the crate.
pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    /// Wraps a failed RPC; `rpc` is the method name as in the proto.
    pub fn rpc(rpc: &'static str) -> impl FnOnce(Status) -> CliError {
        move |status| CliError::Rpc { rpc, status }
    }

    pub fn invalid(field: &str, reason: impl Into<String>) -> CliError {
        CliError::InvalidArgument { field: field.to_owned(), reason: reason.into() }
    }

    /// The gRPC code, when the server answered.
    pub fn code(&self) -> Option<Code> {
        match self {
            CliError::Rpc { status, .. } => Some(status.code()),
            _ => None,
        }
    }

    /// Fields the server named as bad, with why.
    pub fn field_violations(&self) -> Vec<FieldViolation> {
        let CliError::Rpc { status, .. } = self else { return Vec::new() };
        let Some(bad_request) = status.get_details_bad_request() else { return Vec::new() };
        let mut violations = Vec::with_capacity(bad_request.field_violations.len());
        for violation in bad_request.field_violations {
            violations.push(FieldViolation { field: violation.field, description: violation.description });
        }
        violations
    }

    /// What a person could do next, when there is something obvious.
    pub fn hint(&self) -> Option<&'static str> {
        match self.code()? {
            Code::Unavailable => Some("is the server running? point --server (or FUNNEL_SERVER) at it"),
            Code::Unimplemented => Some("this server does not offer that RPC; is the scorer part of it?"),
            Code::Aborted => Some("someone else changed it meanwhile; read it again and retry"),
            Code::DeadlineExceeded => Some("the server is slow or overloaded; retry shortly"),
            _ => None,
        }
    }

    /// The whole error as text for a person: first line the error, then one
    /// line per bad field, then a hint.
    pub fn to_human(&self) -> String {
        let mut text = format!("error: {self}");
        for violation in self.field_violations() {
            text.push_str(&format!("\n  field `{}`: {}", violation.field, violation.description));
        }
        if let Some(hint) = self.hint() {
            text.push_str(&format!("\n  hint: {hint}"));
        }
        text
    }

    /// The whole error as a JSON value for scripts.
    pub fn to_json(&self) -> serde_json::Value {
        let rpc = match self {
            CliError::Rpc { rpc, .. } => Some(*rpc),
            _ => None,
        };
        let message = match self {
            CliError::Rpc { status, .. } => status_message(status),
            other => other.to_string(),
        };
        serde_json::json!({
            "error": {
                "rpc": rpc,
                "code": self.code().map(code_name),
                "message": message,
                "fields": self.field_violations(),
            }
        })
    }
}

/// One bad field as the server reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// The server's message, or the code's meaning when it sent none.
fn status_message(status: &Status) -> String {
    if status.message().is_empty() { status.code().description().to_lowercase() } else { status.message().to_owned() }
}
