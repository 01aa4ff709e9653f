//! What ops type: `models`, `model`, `retrain` and `activate`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use funnel_proto::v1 as pb;
use indicatif::ProgressBar;
use serde::Serialize;

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::{self, Report};
use crate::views::{enum_word, time};

/// How often `retrain --wait` asks about the job.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ModelsArgs {
    /// Only models of this pipeline.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// At most this many models, newest first (up to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: i32,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// The model's registry version.
    pub version: i64,
    /// How many coefficients to list, largest weight first (--json has all).
    #[arg(long, default_value_t = 15)]
    pub coefficients: usize,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RetrainArgs {
    /// Pipeline to retrain (the service's default, `sales`, when not given).
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Follow the job until it succeeds or fails.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ActivateArgs {
    /// Version of the model to make active (also to roll back).
    pub version: i64,
}

/// Held-out quality of a model or its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsView {
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    pub brier: f64,
    pub examples: i64,
    pub calibration: Vec<CalibrationBinView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationBinView {
    pub lower: f64,
    pub upper: f64,
    pub mean_predicted: f64,
    pub observed_rate: f64,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoefficientView {
    pub feature: String,
    pub weight: f64,
}

/// A model of the registry.
#[derive(Debug, Clone, Serialize)]
pub struct ModelView {
    pub version: i64,
    pub pipeline: String,
    pub status: String,
    pub status_reason: String,
    pub trigger: String,
    pub created_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub advanced_examples: i64,
    pub leaked_examples: i64,
    /// Examples the history gave; more than advanced + leaked when the model
    /// learnt from a sample (0 when not recorded).
    pub examples_seen: i64,
    pub metrics: Option<MetricsView>,
    pub baseline_metrics: Option<MetricsView>,
    pub coefficients: Vec<CoefficientView>,
    pub intercept: f64,
    pub alpha: f64,
    pub converged: bool,
    pub iterations: i64,
    pub leak_threshold: f64,
    pub training_seconds: f64,
}

/// A retraining job.
#[derive(Debug, Clone, Serialize)]
pub struct RetrainJobView {
    pub id: String,
    pub pipeline: String,
    pub state: String,
    pub trigger: String,
    pub created_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub model_version: i64,
    pub message: String,
    pub attempts: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelsReport {
    pub models: Vec<ModelView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub model: ModelView,
    #[serde(skip)]
    pub coefficients_shown: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetrainReport {
    pub job: RetrainJobView,
}

pub async fn models(client: &Client, args: &ModelsArgs) -> Result<ModelsReport> {
    let request = pb::ListModelsRequest {
        pipeline: args.pipeline.clone().unwrap_or_default(),
        page_size: args.limit.clamp(1, 1_000),
        page_token: String::new(),
    };
    let response = client.scoring().list_models(request).await.map_err(CliError::rpc("ListModels"))?;
    Ok(ModelsReport { models: response.into_inner().models.into_iter().map(ModelView::from).collect() })
}

pub async fn model(client: &Client, args: &ModelArgs) -> Result<ModelReport> {
    let request = pb::GetModelRequest { version: args.version };
    let response = client.scoring().get_model(request).await.map_err(CliError::rpc("GetModel"))?;
    Ok(ModelReport { model: response.into_inner().into(), coefficients_shown: args.coefficients })
}

pub async fn activate(client: &Client, args: &ActivateArgs) -> Result<ModelReport> {
    let request = pb::ActivateModelRequest { version: args.version };
    let response = client.scoring().activate_model(request).await.map_err(CliError::rpc("ActivateModel"))?;
    Ok(ModelReport { model: response.into_inner().into(), coefficients_shown: 0 })
}

/// Queues a job; with `wait`, follows it (spinner on stderr when
/// `progress`) and fails when the job fails.
pub async fn retrain(client: &Client, args: &RetrainArgs, progress: bool) -> Result<RetrainReport> {
    let request =
        pb::TriggerRetrainRequest { pipeline: args.pipeline.clone().unwrap_or_default(), request_id: String::new() };
    let mut job =
        client.scoring().trigger_retrain(request).await.map_err(CliError::rpc("TriggerRetrain"))?.into_inner();
    if !args.wait {
        return Ok(RetrainReport { job: job.into() });
    }
    let spinner = if progress { output::spinner("queued") } else { ProgressBar::hidden() };
    let started = Instant::now();
    loop {
        match pb::RetrainJobState::try_from(job.state) {
            Ok(pb::RetrainJobState::Succeeded) => break,
            Ok(pb::RetrainJobState::Failed) => {
                spinner.finish_and_clear();
                return Err(CliError::RetrainFailed { job_id: job.id, message: job.message });
            }
            Ok(pb::RetrainJobState::Queued | pb::RetrainJobState::Running | pb::RetrainJobState::Unspecified)
            | Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(args.timeout) {
            spinner.finish_and_clear();
            let what = format!("retraining job {} is still {}", job.id, job_state_word(job.state));
            return Err(CliError::TimedOut { what, seconds: args.timeout });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        let request = pb::GetRetrainJobRequest { id: job.id.clone() };
        job = client.scoring().get_retrain_job(request).await.map_err(CliError::rpc("GetRetrainJob"))?.into_inner();
        spinner.set_message(format!("training {}: {}", job.pipeline, job_state_word(job.state)));
    }
    spinner.finish_and_clear();
    Ok(RetrainReport { job: job.into() })
}

fn metrics_view(metrics: pb::ModelMetrics) -> MetricsView {
    let pb::ModelMetrics { roc_auc, pr_auc, log_loss, brier, calibration, examples } = metrics;
    let mut bins = Vec::with_capacity(calibration.len());
    for bin in calibration {
        let pb::CalibrationBin { lower, upper, mean_predicted, observed_rate, count } = bin;
        bins.push(CalibrationBinView { lower, upper, mean_predicted, observed_rate, count });
    }
    MetricsView { roc_auc, pr_auc, log_loss, brier, examples, calibration: bins }
}

impl From<pb::Model> for ModelView {
    fn from(model: pb::Model) -> Self {
        let pb::Model {
            version,
            pipeline,
            status,
            status_reason,
            trigger,
            created_at,
            activated_at,
            window_start,
            window_end,
            advanced_examples,
            leaked_examples,
            metrics,
            baseline_metrics,
            coefficients,
            intercept,
            alpha,
            converged,
            iterations,
            leak_threshold,
            training_seconds,
            examples_seen,
        } = model;
        let status_name = pb::ModelStatus::try_from(status).ok().map(|status| status.as_str_name());
        let trigger_name = pb::RetrainTrigger::try_from(trigger).ok().map(|trigger| trigger.as_str_name());
        let mut coefficient_views = Vec::with_capacity(coefficients.len());
        for coefficient in coefficients {
            coefficient_views.push(CoefficientView { feature: coefficient.feature, weight: coefficient.weight });
        }
        ModelView {
            version,
            pipeline,
            status: enum_word(status_name, "MODEL_STATUS_", status),
            status_reason,
            trigger: enum_word(trigger_name, "RETRAIN_TRIGGER_", trigger),
            created_at: time(created_at),
            activated_at: time(activated_at),
            window_start: time(window_start),
            window_end: time(window_end),
            advanced_examples,
            leaked_examples,
            examples_seen,
            metrics: metrics.map(metrics_view),
            baseline_metrics: baseline_metrics.map(metrics_view),
            coefficients: coefficient_views,
            intercept,
            alpha,
            converged,
            iterations,
            leak_threshold,
            training_seconds,
        }
    }
}

impl From<pb::RetrainJob> for RetrainJobView {
    fn from(job: pb::RetrainJob) -> Self {
        let pb::RetrainJob {
            id,
            pipeline,
            state,
            trigger,
            created_at,
            started_at,
            finished_at,
            model_version,
            message,
            attempts,
        } = job;
        let trigger_name = pb::RetrainTrigger::try_from(trigger).ok().map(|trigger| trigger.as_str_name());
        RetrainJobView {
            id,
            pipeline,
            state: job_state_word(state),
            trigger: enum_word(trigger_name, "RETRAIN_TRIGGER_", trigger),
            created_at: time(created_at),
            started_at: time(started_at),
            finished_at: time(finished_at),
            model_version,
            message,
            attempts,
        }
    }
}

fn job_state_word(state: i32) -> String {
    let state_name = pb::RetrainJobState::try_from(state).ok().map(|state| state.as_str_name());
    enum_word(state_name, "RETRAIN_JOB_STATE_", state)
}

fn auc(metrics: Option<&MetricsView>) -> String {
    metrics.map_or_else(|| "-".to_owned(), |metrics| output::decimal(metrics.roc_auc))
}

/// Whether the model learnt from a sample of the examples its history gave.
fn sampled(model: &ModelView) -> bool {
    model.examples_seen > model.advanced_examples + model.leaked_examples
}

/// The examples a model learnt from, and of how many when sampled.
fn examples(model: &ModelView) -> String {
    let used = model.advanced_examples + model.leaked_examples;
    if sampled(model) { format!("{used} of {}", model.examples_seen) } else { used.to_string() }
}

impl Report for ModelsReport {
    fn human(&self) -> String {
        if self.models.is_empty() {
            return "no models trained yet; run `funnel retrain --wait`".to_owned();
        }
        let header = ["version", "pipeline", "status", "trigger", "AUC", "baseline AUC", "examples", "trained at"];
        let mut table = output::table(&header, &[0, 4, 5, 6]);
        for model in &self.models {
            table.add_row([
                model.version.to_string(),
                model.pipeline.clone(),
                model.status.clone(),
                model.trigger.clone(),
                auc(model.metrics.as_ref()),
                auc(model.baseline_metrics.as_ref()),
                examples(model),
                output::time(model.created_at),
            ]);
        }
        table.to_string()
    }
}

impl Report for ModelReport {
    fn human(&self) -> String {
        let model = &self.model;
        let mut sections = vec![format!(
            "model v{} of {}: {}{} (trigger {}, trained {}, {} advanced / {} leaked examples{})",
            model.version,
            model.pipeline,
            model.status,
            if model.status_reason.is_empty() { String::new() } else { format!(" ({})", model.status_reason) },
            model.trigger,
            output::time(model.created_at),
            model.advanced_examples,
            model.leaked_examples,
            if sampled(model) { format!(", a uniform sample of {}", model.examples_seen) } else { String::new() }
        )];
        if self.coefficients_shown == 0 {
            return sections.join("\n");
        }
        sections.push(metrics_table(model.metrics.as_ref(), model.baseline_metrics.as_ref()));
        if let Some(metrics) = &model.metrics {
            let mut calibration = output::table(&["predicted", "mean predicted", "observed", "examples"], &[1, 2, 3]);
            for bin in &metrics.calibration {
                calibration.add_row([
                    format!("{:.1}-{:.1}", bin.lower, bin.upper),
                    output::percent(bin.mean_predicted),
                    output::percent(bin.observed_rate),
                    bin.count.to_string(),
                ]);
            }
            sections.push(format!("calibration (held out):\n{calibration}"));
        }
        let mut by_weight: Vec<&CoefficientView> = model.coefficients.iter().collect();
        by_weight.sort_by(|left, right| right.weight.abs().total_cmp(&left.weight.abs()));
        let mut coefficients = output::table(&["feature", "weight"], &[1]);
        for coefficient in by_weight.iter().take(self.coefficients_shown) {
            coefficients.add_row([coefficient.feature.clone(), format!("{:+.3}", coefficient.weight)]);
        }
        let mut coefficient_text =
            format!("coefficients (intercept {:+.3}, alpha {}):\n{coefficients}", model.intercept, model.alpha);
        if let Some(more) = output::more_line(self.coefficients_shown, model.coefficients.len(), "coefficients") {
            coefficient_text.push_str(&format!("\n{more}"));
        }
        sections.push(coefficient_text);
        sections.join("\n\n")
    }
}

/// Reads one metric of a [`MetricsView`] as text.
type MetricText = fn(&MetricsView) -> String;

fn metrics_table(model: Option<&MetricsView>, baseline: Option<&MetricsView>) -> String {
    let mut table = output::table(&["metric", "model", "baseline"], &[1, 2]);
    let rows: [(&str, MetricText); 5] = [
        ("ROC AUC", |metrics| output::decimal(metrics.roc_auc)),
        ("PR AUC", |metrics| output::decimal(metrics.pr_auc)),
        ("log loss", |metrics| output::decimal(metrics.log_loss)),
        ("Brier", |metrics| output::decimal(metrics.brier)),
        ("held-out examples", |metrics| metrics.examples.to_string()),
    ];
    for (name, value) in rows {
        let dash = || "-".to_owned();
        table.add_row([name.to_owned(), model.map_or_else(dash, value), baseline.map_or_else(dash, value)]);
    }
    format!("held-out metrics:\n{table}")
}

impl Report for RetrainReport {
    fn human(&self) -> String {
        let job = &self.job;
        let mut text = format!("retraining job {} for {}: {}", job.id, job.pipeline, job.state);
        if job.model_version > 0 {
            text.push_str(&format!(", model v{} (see `funnel model {}`)", job.model_version, job.model_version));
        }
        if !job.message.is_empty() {
            text.push_str(&format!("\n{}", job.message));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(advanced: i64, leaked: i64, seen: i64) -> ModelView {
        let proto = pb::Model {
            version: 3,
            pipeline: "sales".to_owned(),
            status: pb::ModelStatus::Active as i32,
            trigger: pb::RetrainTrigger::Manual as i32,
            advanced_examples: advanced,
            leaked_examples: leaked,
            examples_seen: seen,
            ..Default::default()
        };
        ModelView::from(proto)
    }

    #[test]
    fn a_model_learnt_from_a_sample_says_of_how_many() {
        let sampled = model(300_000, 200_000, 8_628_188);
        let list = ModelsReport { models: vec![sampled.clone()] }.human();
        assert!(list.contains("500000 of 8628188"), "{list}");
        let one = ModelReport { model: sampled, coefficients_shown: 0 }.human();
        assert!(one.contains("300000 advanced / 200000 leaked examples, a uniform sample of 8628188"), "{one}");
        // All examples used, or an older model that did not record it.
        for seen in [500_000, 0] {
            let whole = model(300_000, 200_000, seen);
            let one = ModelReport { model: whole.clone(), coefficients_shown: 0 }.human();
            assert!(one.contains("200000 leaked examples)"), "{one}");
            let list = ModelsReport { models: vec![whole] }.human();
            assert!(list.contains("500000") && !list.contains(" of "), "{list}");
        }
    }
}
