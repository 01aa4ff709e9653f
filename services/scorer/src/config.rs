//! Flags of `funnel-scorer`, each also read from a `FUNNEL_*` environment
//! variable. In the library so the deploy checks can list what it reads.

use funnel_telemetry::MetricsListen;

/// The funnel scoring worker.
#[derive(Debug, clap::Parser)]
#[command(name = "funnel-scorer", version)]
pub struct Cli {
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://...`.
    #[arg(long, env = "FUNNEL_DATABASE_URL", default_value = "sqlite://funnel.db?mode=rwc", global = true)]
    pub database_url: String,
    /// Only this pipeline (default: every pipeline).
    #[arg(long, env = "FUNNEL_PIPELINE", global = true)]
    pub pipeline: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Fewer advanced or leaked examples than this: no model, stage baselines.
    #[arg(long, env = "FUNNEL_MIN_EXAMPLES_PER_CLASS", default_value_t = 40, global = true)]
    pub min_examples_per_class: usize,
    /// Precision for leaks the flag threshold aims at.
    #[arg(long, env = "FUNNEL_LEAK_PRECISION", default_value_t = 0.8, global = true)]
    pub leak_precision: f64,
    /// How much worse than the active model's AUC a new one may be and still replace it.
    #[arg(long, env = "FUNNEL_AUC_TOLERANCE", default_value_t = 0.01, global = true)]
    pub auc_tolerance: f64,
    /// Training examples kept at most; past it, a uniform sample of this
    /// many, so the trainer's memory stays bounded (~2 KiB per example).
    #[arg(long, env = "FUNNEL_MAX_EXAMPLES", default_value_t = funnel_scoring::DEFAULT_MAX_EXAMPLES, global = true)]
    pub max_examples: usize,
    /// Opportunities read and scored per batch.
    #[arg(long, env = "FUNNEL_BATCH_SIZE", default_value_t = 2000, global = true)]
    pub batch_size: u64,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "FUNNEL_LOG_JSON", default_value_t = false, global = true)]
    pub log_json: bool,
    /// OpenTelemetry collector to export spans to over OTLP/gRPC (e.g.
    /// `http://otel-collector:4317`); none when unset.
    #[arg(long, env = "FUNNEL_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// One training run per pipeline; prints the metrics table.
    Train,
    /// Rescore every open opportunity, in batches.
    Score,
    /// Daemon: scheduled and queued retraining, periodic rescoring.
    Run {
        /// Cron schedule of retraining (sec min hour day month weekday), UTC.
        #[arg(long, env = "FUNNEL_TRAIN_CRON", default_value = "0 0 3 * * *")]
        train_cron: String,
        /// Rescore at least every this many seconds.
        #[arg(long, env = "FUNNEL_SCORE_EVERY_SECS", default_value_t = 300)]
        score_every_secs: u64,
        /// Queue a retrain once this many new outcomes arrived (0 = never).
        #[arg(long, env = "FUNNEL_RETRAIN_AFTER_OUTCOMES", default_value_t = 500)]
        retrain_after_outcomes: u64,
        /// Days of score history kept (what `as_of` questions can reach);
        /// older rows are deleted once a day. 0 keeps everything.
        #[arg(long, env = "FUNNEL_SCORE_HISTORY_DAYS", default_value_t = 365)]
        score_history_days: u32,
        /// Seconds between looks for jobs and changes.
        #[arg(long, env = "FUNNEL_POLL_SECS", default_value_t = 5)]
        poll_secs: u64,
        /// Address of the Prometheus endpoint (`/metrics`), or `off`.
        #[arg(long, env = "FUNNEL_METRICS_LISTEN", default_value = "127.0.0.1:9465")]
        metrics_listen: MetricsListen,
    },
}
