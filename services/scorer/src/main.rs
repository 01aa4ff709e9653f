use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use funnel_domain::PipelineName;
use funnel_scorer::{TrainSettings, WorkerConfig, all_pipelines, report, run, score_pipeline, train_now};
use funnel_scoring::TrainParams;
use funnel_store::{Store, StoreOptions, Trigger};
use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

/// The funnel scoring worker.
#[derive(Debug, Parser)]
#[command(name = "funnel-scorer", version)]
struct Cli {
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://...`.
    #[arg(long, env = "FUNNEL_DATABASE_URL", default_value = "sqlite://funnel.db?mode=rwc", global = true)]
    database_url: String,
    /// Only this pipeline (default: every pipeline).
    #[arg(long, env = "FUNNEL_PIPELINE", global = true)]
    pipeline: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Fewer advanced or leaked examples than this: no model, stage baselines.
    #[arg(long, env = "FUNNEL_MIN_EXAMPLES_PER_CLASS", default_value_t = 40, global = true)]
    min_examples_per_class: usize,
    /// Precision for leaks the flag threshold aims at.
    #[arg(long, env = "FUNNEL_LEAK_PRECISION", default_value_t = 0.8, global = true)]
    leak_precision: f64,
    /// How much worse than the active model's AUC a new one may be and still replace it.
    #[arg(long, env = "FUNNEL_AUC_TOLERANCE", default_value_t = 0.01, global = true)]
    auc_tolerance: f64,
    /// Opportunities read and scored per batch.
    #[arg(long, env = "FUNNEL_BATCH_SIZE", default_value_t = 2000, global = true)]
    batch_size: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
        /// Seconds between looks for jobs and changes.
        #[arg(long, env = "FUNNEL_POLL_SECS", default_value_t = 5)]
        poll_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let store = Store::connect(&cli.database_url, &StoreOptions::default()).await.context("connecting")?;
    store.migrate().await.context("migrating")?;
    let pipelines = match &cli.pipeline {
        Some(name) => vec![PipelineName::parse("pipeline", name).map_err(|error| anyhow::anyhow!("{error}"))?],
        None => all_pipelines(&store).await?,
    };
    let settings = TrainSettings {
        params: TrainParams::default()
            .min_examples_per_class(cli.min_examples_per_class)
            .target_leak_precision(cli.leak_precision),
        auc_tolerance: cli.auc_tolerance,
        batch_size: cli.batch_size,
        ..TrainSettings::default()
    };
    match cli.command {
        Command::Train => {
            for pipeline in &pipelines {
                let report = train_now(&store, pipeline, Trigger::Manual, &settings).await?;
                if cli.json {
                    println!("{}", report::train_json(&report));
                } else {
                    println!("{}", report::train_table(&report));
                }
            }
        }
        Command::Score => {
            let mut reports = Vec::new();
            for pipeline in &pipelines {
                let total = store.count_opportunities(pipeline, Some(funnel_domain::Status::Open)).await?;
                let bar = ProgressBar::new(total);
                if let Ok(style) = ProgressStyle::with_template("{msg:>10} {bar:40} {pos}/{len} ({per_sec}, {eta})") {
                    bar.set_style(style);
                }
                bar.set_message(pipeline.to_string());
                let report = score_pipeline(&store, pipeline, cli.batch_size, chrono::Utc::now(), &|done| {
                    bar.set_position(done)
                })
                .await?;
                bar.finish_and_clear();
                reports.push(report);
            }
            if cli.json {
                println!("{}", serde_json::Value::Array(reports.iter().map(report::score_json).collect()));
            } else {
                println!("{}", report::score_table(&reports));
            }
        }
        Command::Run { train_cron, score_every_secs, retrain_after_outcomes, poll_secs } => {
            let config = WorkerConfig {
                train: settings,
                train_schedule: cron::Schedule::from_str(&train_cron)
                    .with_context(|| format!("--train-cron {train_cron:?}"))?,
                score_every: Duration::from_secs(score_every_secs),
                retrain_after_outcomes,
                poll_every: Duration::from_secs(poll_secs.max(1)),
            };
            run(store, config, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
    }
    Ok(())
}
