//! Data for the funnel: the generic import record format (JSON Lines and a
//! three-file CSV variant, see `FORMAT.md`), a deterministic funnel simulator
//! with a documented known truth, and the mapping of the public "CRM Sales
//! Opportunities" data set. Pure library: no async, no network, no database.

mod crm;
mod crm_rows;
mod crm_tables;
mod csv_read;
mod csv_write;
mod error;
mod jsonl;
mod record;
mod simulate;
mod story;
pub mod truth;

pub use crm::{
    ACCOUNTS_FILE, CRM_PIPELINE, CrmImport, PIPELINE_FILE, PRODUCTS_FILE, ProblemAction, RowProblem, TEAMS_FILE,
    crm_pipeline, load_crm,
};
pub use csv_read::{CsvReader, open_csv_dir, read_csv};
pub use csv_write::{ACTIVITIES_FILE, ATTRIBUTE_PREFIX, CsvWriter, HISTORY_FILE, OPPORTUNITIES_FILE, create_csv_dir};
pub use error::{Error, Result};
pub use jsonl::{JsonlReader, MAX_LINE_BYTES, RowError, read_jsonl, write_jsonl, write_jsonl_record};
pub use record::{ActivityEntry, ActivityKind, HistoryEntry, OpportunityRecord, PipelineSpec, RecordStatus, StageSpec};
pub use simulate::{MAX_OPPORTUNITIES, MIN_OPPORTUNITIES, Simulation, SimulationConfig, default_pipeline, simulate};
