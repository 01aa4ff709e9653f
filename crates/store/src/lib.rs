//! Storage of funnel: sea-orm entities, migrations and repositories, on
//! SQLite (embedded default) and PostgreSQL (production).

mod activities;
mod connect;
mod entity;
mod error;
mod histories;
mod import;
mod jobs;
mod migration;
mod migration_scoring;
mod model;
mod opportunities;
mod page;
mod pipelines;
mod registry;
mod scores;
pub mod time;

pub use connect::{Backend, Store, StoreOptions};
pub use error::{Result, StoreError};
pub use histories::OpportunityHistory;
pub use import::{ImportActivity, ImportHistory, ImportOutcome, ImportRecord, ImportRejection, check_attributes};
pub use jobs::{JobState, RetrainJob};
pub use model::{
    Activity, HistoryRow, NewActivity, NewOpportunity, Opportunity, OpportunityFilter, OpportunityPatch, Page,
    Pipeline, StageCommand,
};
pub use registry::{ModelRecord, ModelStatus, NewModel, Trigger};
pub use scores::{LeadScoreRecord, ScoreFactor, ScoreFilter};
