//! The rules of the funnel: pipelines and their stages, opportunities, and
//! how an opportunity may move between stages. Plain data and pure functions;
//! transport and storage live elsewhere.

mod error;
mod ids;
pub mod limits;
mod opportunity;
mod pipeline;
mod transition;

pub use error::{DomainError, Result};
pub use ids::{OpportunityId, PipelineName, StageKey};
pub use opportunity::{ActivityKind, Money, OpportunityState, Status};
pub use pipeline::{PipelineDef, StageChange, StageDef, default_pipeline};
pub use transition::{Command, Transition, TransitionKind, apply, check_occurred_at, created, decide, replay};
