//! Storage of funnel: sea-orm entities, migrations and repositories, on
//! SQLite (embedded default) and PostgreSQL (production).

mod activities;
mod connect;
mod entity;
mod error;
mod import;
mod migration;
mod model;
mod opportunities;
mod page;
mod pipelines;
pub mod time;

pub use connect::{Backend, Store, StoreOptions};
pub use error::{Result, StoreError};
pub use import::{ImportActivity, ImportHistory, ImportOutcome, ImportRecord, ImportRejection, check_attributes};
pub use model::{
    Activity, HistoryRow, NewActivity, NewOpportunity, Opportunity, OpportunityFilter, OpportunityPatch, Page,
    Pipeline, StageCommand,
};
