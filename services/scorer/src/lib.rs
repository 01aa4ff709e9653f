//! The funnel scoring worker: trains a logistic model per pipeline on its
//! stage history, scores every open opportunity, explains each score and
//! flags likely leaks. Reads and writes only through `funnel-store`.

pub mod config;
pub mod convert;
mod error;
pub mod gate;
pub mod metrics;
mod pages;
pub mod report;
mod score;
mod train;
mod worker;

pub use error::{Result, ScorerError};
pub use score::{ScoreReport, score_pipeline};
pub use train::{
    TrainOutcome, TrainProgress, TrainReport, TrainSettings, load_histories, run_job, train_now,
    train_now_with_progress,
};
pub use worker::{WorkerConfig, all_pipelines, run};
