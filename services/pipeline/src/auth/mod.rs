//! Who may do what. A bearer token names a [`Principal`] with a [`Role`];
//! [`AuthLayer`] checks, before any handler runs, that the token is known
//! (else UNAUTHENTICATED) and that the role may call the method (else
//! PERMISSION_DENIED, from the table in [`rules`]). Inside the handlers,
//! [`Scope`] narrows a rep to the opportunities it owns, answering for
//! anyone else's exactly as for one that does not exist.
//!
//! With no tokens configured the server is open (dev mode): no principal,
//! every call allowed, the actor taken from `x-funnel-actor`.

mod layer;
pub mod rules;
mod scope;
mod tokens;

use std::fmt;

pub use layer::AuthLayer;
pub use scope::{OwnerFilter, Scope};
pub use tokens::{TOKEN_PREFIX, TokenHash, Tokens, generate_token};

/// What a principal may do; see [`rules`] for the whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Another service: the whole API.
    Service,
    /// Reads everything; writes opportunities and activities only.
    Manager,
    /// Models, retraining and activation; reads pipelines and reports.
    Ops,
    /// A sales rep: only the opportunities (and their scores) it owns.
    Rep { owner: String },
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Service => "service",
            Role::Manager => "manager",
            Role::Ops => "ops",
            Role::Rep { .. } => "rep",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Whoever presented a known token; put in the request's extensions by
/// [`AuthLayer`], and recorded as the actor of every change it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// The principal of an authenticated request; `None` in open mode.
pub fn principal<T>(request: &tonic::Request<T>) -> Option<&Principal> {
    request.extensions().get::<Principal>()
}
