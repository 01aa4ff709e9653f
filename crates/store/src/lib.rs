//! Storage of funnel: sea-orm entities, migrations and repositories, on
//! SQLite (embedded default) and PostgreSQL (production).

mod activities;
mod bulk;
mod coalesce;
mod connect;
mod entity;
mod error;
mod events;
mod histories;
mod history_reads;
mod import;
mod jobs;
mod migration;
mod migration_event_round;
mod migration_events;
mod migration_last_activity;
mod migration_outbox;
mod migration_score_changes;
mod migration_scoring;
mod migration_visits;
mod model;
mod movement;
mod opportunities;
mod opportunity_reads;
mod page;
mod pipelines;
mod raw;
mod registry;
mod report;
mod score_writes;
mod scores;
mod sequencer;
mod stage_write;
pub mod time;

pub use connect::{
    Backend, COALESCED_READS, POSTGRES_MAX_CONNECTIONS, PoolUsage, SQLITE_MAX_CONNECTIONS, Store, StoreOptions,
};
pub use error::{Result, StoreError};
pub use events::{EventFilter, EventKind, EventRecord, MAX_IDS_PER_SCORES_EVENT};
pub use histories::{ActivitySpan, OpportunityHistory};
pub use import::{ImportActivity, ImportHistory, ImportOutcome, ImportRecord, ImportRejection, check_attributes};
pub use jobs::{JobState, RetrainJob};
pub use model::{
    Activity, HistoryRow, NewActivity, NewOpportunity, Opportunity, OpportunityFilter, OpportunityPatch, Page,
    Pipeline, StageCommand,
};
pub use movement::{MovementFigures, MovementQuery};
pub use registry::{ModelRecord, ModelStatus, NewModel, Trigger};
pub use report::{
    DurationFigures, FunnelFigures, MoneyFigure, ReportQuery, RotPoint, RotSource, StageFigures, WindowMode,
};
pub use scores::{LeadScoreRecord, Pruned, ScoreFactor, ScoreFilter};
