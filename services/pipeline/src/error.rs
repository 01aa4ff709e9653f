//! The one place where errors become gRPC statuses.

use funnel_domain::DomainError;
use funnel_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::{error, warn};

/// INVALID_ARGUMENT naming the field, also as a machine-readable bad-request
/// violation.
pub fn invalid_argument(field: &str, reason: &str) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {reason}"),
        ErrorDetails::with_bad_request_violation(field, reason),
    )
}

pub fn domain_status(error: DomainError) -> Status {
    match error {
        DomainError::InvalidArgument { field, reason } => invalid_argument(&field, &reason),
        DomainError::FailedPrecondition(message) => Status::failed_precondition(message),
    }
}

/// Exhaustive on purpose: a new kind of error must be given a code here.
pub fn store_status(error: StoreError) -> Status {
    match error {
        StoreError::Domain(domain) => domain_status(domain),
        StoreError::NotFound { kind, id } => Status::not_found(format!("{kind} {id} not found")),
        StoreError::AlreadyExists(message) => Status::already_exists(message),
        StoreError::Conflict(message) => Status::aborted(message),
        StoreError::Unavailable(cause) => {
            warn!(%cause, "database unavailable");
            Status::unavailable("the database is unavailable; retry shortly")
        }
        StoreError::Internal(cause) => {
            error!(%cause, "internal storage error");
            Status::internal("internal error; the cause has been logged on the server")
        }
    }
}
