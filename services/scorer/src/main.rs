use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use funnel_domain::PipelineName;
use funnel_scorer::config::{Cli, Command};
use funnel_scorer::{
    TrainProgress, TrainSettings, WorkerConfig, all_pipelines, metrics, report, run, score_pipeline,
    train_now_with_progress,
};
use funnel_scoring::TrainParams;
use funnel_store::{Store, StoreOptions, Trigger};
use funnel_telemetry::TracingOptions;
use funnel_telemetry::shutdown_signal;
use indicatif::{ProgressBar, ProgressStyle};

// Reading, featurizing and scoring allocate many small blocks per row;
// mimalloc does that with less CPU than glibc's malloc (issue 7, B6).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let _tracing = funnel_telemetry::init_tracing(&TracingOptions {
        service_name: "funnel-scorer",
        json: cli.log_json,
        otlp_endpoint: cli.otlp_endpoint.clone(),
    })?;
    let store =
        Store::connect(&cli.database_url, &StoreOptions::for_url(&cli.database_url)).await.context("connecting")?;
    store.migrate().await.context("migrating")?;
    let pipelines = match &cli.pipeline {
        Some(name) => vec![PipelineName::parse("pipeline", name).map_err(|error| anyhow::anyhow!("{error}"))?],
        None => all_pipelines(&store).await?,
    };
    let settings = TrainSettings {
        params: TrainParams::default()
            .min_examples_per_class(cli.min_examples_per_class)
            .target_leak_precision(cli.leak_precision)
            .max_examples(cli.max_examples),
        auc_tolerance: cli.auc_tolerance,
        batch_size: cli.batch_size,
        ..TrainSettings::default()
    };
    match cli.command {
        Command::Train => {
            for pipeline in &pipelines {
                let total = store.count_opportunities(pipeline, None).await?;
                let bar = progress_bar(total, pipeline);
                let report =
                    train_now_with_progress(&store, pipeline, Trigger::Manual, &settings, &|progress| match progress {
                        TrainProgress::Reading { read } => bar.set_position(read),
                        TrainProgress::Fitting { examples } => {
                            bar.set_message(format!("{pipeline}: fitting on {examples} examples"));
                        }
                    })
                    .await?;
                bar.finish_and_clear();
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
                let bar = progress_bar(total, pipeline);
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
        Command::Run {
            train_cron,
            score_every_secs,
            retrain_after_outcomes,
            poll_secs,
            metrics_listen,
            score_history_days,
        } => {
            let config = WorkerConfig {
                train: settings,
                train_schedule: cron::Schedule::from_str(&train_cron)
                    .with_context(|| format!("--train-cron {train_cron:?}"))?,
                score_every: Duration::from_secs(score_every_secs),
                retrain_after_outcomes,
                poll_every: Duration::from_secs(poll_secs.max(1)),
                score_history_days,
            };
            funnel_telemetry::start_metrics_endpoint(metrics_listen, metrics::registry()).await?;
            run(store, config, shutdown_signal()).await?;
        }
    }
    Ok(())
}

/// A bar over a pipeline's opportunities; hidden when stderr is not a terminal.
fn progress_bar(total: u64, pipeline: &PipelineName) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} {bar:40} {pos}/{len} ({per_sec}, {elapsed} elapsed, {eta} left)")
    {
        bar.set_style(style);
    }
    bar.set_message(pipeline.to_string());
    // Fitting moves no position: keep the elapsed time ticking.
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}
