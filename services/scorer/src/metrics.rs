//! Prometheus metrics of the scorer daemon, served by `funnel-scorer run`
//! on the metrics port. Per pipeline unless noted:
//!
//! - `funnel_scorer_training_runs_total{result}`: `activated`, `candidate`
//!   (the gate refused it), `insufficient_data` or `failed`
//! - `funnel_scorer_last_training_timestamp_seconds`, `..._duration_seconds`:
//!   the last run that finished (any result but `failed`)
//! - `funnel_scorer_training_examples{class="advanced"|"leaked"}`
//! - `funnel_scorer_model_roc_auc{model="trained"|"baseline"}`: the last
//!   trained model's held-out AUC and its stage-only baseline's
//! - `funnel_scorer_active_model_version`, `funnel_scorer_active_model_trained_timestamp_seconds`
//! - `funnel_scorer_scored_total`, `funnel_scorer_score_failures_total`,
//!   `funnel_scorer_flagged_ratio`, `funnel_scorer_last_score_timestamp_seconds`
//! - `funnel_scorer_queued_jobs` and `funnel_scorer_tick_failures_total` (no pipeline label)

use std::sync::LazyLock;

use chrono::Utc;
use funnel_domain::PipelineName;
use funnel_store::ModelRecord;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::error::Result;
use crate::score::ScoreReport;
use crate::train::{TrainOutcome, TrainReport};

static METRICS: LazyLock<ScorerMetrics> = LazyLock::new(ScorerMetrics::new);

/// The registry holding the scorer's metrics (one per process).
pub fn registry() -> Registry {
    METRICS.registry.clone()
}

struct ScorerMetrics {
    registry: Registry,
    training_runs: IntCounterVec,
    last_training_time: GaugeVec,
    last_training_duration: GaugeVec,
    training_examples: GaugeVec,
    model_auc: GaugeVec,
    active_version: GaugeVec,
    active_trained_time: GaugeVec,
    scored: IntCounterVec,
    score_failures: IntCounterVec,
    flagged_ratio: GaugeVec,
    last_score_time: GaugeVec,
    queued_jobs: IntGauge,
    tick_failures: IntCounter,
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let gauge = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(gauge.clone())).expect("metric names are unique");
    gauge
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(counter.clone())).expect("metric names are unique");
    counter
}

impl ScorerMetrics {
    fn new() -> Self {
        let registry = Registry::new();
        let by_pipeline = ["pipeline"];
        let queued_jobs =
            IntGauge::new("funnel_scorer_queued_jobs", "Retraining jobs waiting for a worker").expect("valid metric");
        registry.register(Box::new(queued_jobs.clone())).expect("metric names are unique");
        let tick_failures =
            IntCounter::new("funnel_scorer_tick_failures_total", "Daemon rounds that failed").expect("valid metric");
        registry.register(Box::new(tick_failures.clone())).expect("metric names are unique");
        Self {
            training_runs: counter(
                &registry,
                "funnel_scorer_training_runs_total",
                "Training runs by result: activated, candidate, insufficient_data, failed",
                &["pipeline", "result"],
            ),
            last_training_time: gauge(
                &registry,
                "funnel_scorer_last_training_timestamp_seconds",
                "When the last training run that did not fail finished (Unix time)",
                &by_pipeline,
            ),
            last_training_duration: gauge(
                &registry,
                "funnel_scorer_last_training_duration_seconds",
                "How long the last training run that did not fail took",
                &by_pipeline,
            ),
            training_examples: gauge(
                &registry,
                "funnel_scorer_training_examples",
                "Examples of the last training run, by class",
                &["pipeline", "class"],
            ),
            model_auc: gauge(
                &registry,
                "funnel_scorer_model_roc_auc",
                "Held-out ROC AUC of the last trained model and of its stage-only baseline",
                &["pipeline", "model"],
            ),
            active_version: gauge(
                &registry,
                "funnel_scorer_active_model_version",
                "Version of the active model (0: none, stage baselines score)",
                &by_pipeline,
            ),
            active_trained_time: gauge(
                &registry,
                "funnel_scorer_active_model_trained_timestamp_seconds",
                "When the active model was trained (Unix time)",
                &by_pipeline,
            ),
            scored: counter(&registry, "funnel_scorer_scored_total", "Lead scores written", &by_pipeline),
            score_failures: counter(
                &registry,
                "funnel_scorer_score_failures_total",
                "Open opportunities that could not be scored",
                &by_pipeline,
            ),
            flagged_ratio: gauge(
                &registry,
                "funnel_scorer_flagged_ratio",
                "Share of open opportunities flagged as leaking at the last scoring run",
                &by_pipeline,
            ),
            last_score_time: gauge(
                &registry,
                "funnel_scorer_last_score_timestamp_seconds",
                "When the last scoring run finished (Unix time)",
                &by_pipeline,
            ),
            queued_jobs,
            tick_failures,
            registry,
        }
    }
}

/// Records a training run, whatever its result.
pub fn record_training(pipeline: &PipelineName, result: &Result<TrainReport>) {
    let pipeline = pipeline.as_str();
    let report = match result {
        Ok(report) => report,
        Err(_) => {
            METRICS.training_runs.with_label_values(&[pipeline, "failed"]).inc();
            return;
        }
    };
    let (outcome, advanced, leaked) = match &report.outcome {
        TrainOutcome::Registered { model, verdict, .. } => {
            METRICS.model_auc.with_label_values(&[pipeline, "trained"]).set(model.roc_auc.unwrap_or(f64::NAN));
            METRICS
                .model_auc
                .with_label_values(&[pipeline, "baseline"])
                .set(model.baseline_roc_auc.unwrap_or(f64::NAN));
            let outcome = if verdict.activate { "activated" } else { "candidate" };
            (outcome, model.advanced_examples as f64, model.leaked_examples as f64)
        }
        TrainOutcome::InsufficientData { advanced, leaked, .. } => {
            ("insufficient_data", *advanced as f64, *leaked as f64)
        }
    };
    METRICS.training_runs.with_label_values(&[pipeline, outcome]).inc();
    METRICS.training_examples.with_label_values(&[pipeline, "advanced"]).set(advanced);
    METRICS.training_examples.with_label_values(&[pipeline, "leaked"]).set(leaked);
    METRICS.last_training_time.with_label_values(&[pipeline]).set(unix_now());
    METRICS.last_training_duration.with_label_values(&[pipeline]).set(report.seconds);
}

/// Records a scoring run.
pub fn record_scoring(report: &ScoreReport) {
    let pipeline = report.pipeline.as_str();
    METRICS.scored.with_label_values(&[pipeline]).inc_by(report.scored);
    METRICS.score_failures.with_label_values(&[pipeline]).inc_by(report.failed);
    let ratio = if report.scored == 0 { 0.0 } else { report.flagged as f64 / report.scored as f64 };
    METRICS.flagged_ratio.with_label_values(&[pipeline]).set(ratio);
    METRICS.last_score_time.with_label_values(&[pipeline]).set(unix_now());
}

/// Records which model is active; read from the store, so a restart or an
/// activation through the API shows too.
pub fn record_active_model(pipeline: &PipelineName, active: Option<&ModelRecord>) {
    let pipeline = pipeline.as_str();
    let (version, trained_at) = match active {
        Some(model) => (model.version as f64, model.created_at.timestamp() as f64),
        None => (0.0, 0.0),
    };
    METRICS.active_version.with_label_values(&[pipeline]).set(version);
    METRICS.active_trained_time.with_label_values(&[pipeline]).set(trained_at);
}

pub fn record_queued_jobs(queued: u64) {
    METRICS.queued_jobs.set(i64::try_from(queued).unwrap_or(i64::MAX));
}

pub fn record_tick_failure() {
    METRICS.tick_failures.inc();
}

fn unix_now() -> f64 {
    Utc::now().timestamp_millis() as f64 / 1000.0
}
