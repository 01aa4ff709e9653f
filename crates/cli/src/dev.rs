//! `funnel dev`: the pipeline service and the scorer in one process on an
//! embedded SQLite file, with a simulated funnel loaded on first start,
//! trained and scored, serving until Ctrl-C. Like `temporal server start-dev`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use funnel_dataset::SimulationConfig;
use funnel_domain::PipelineName;
use funnel_scorer::{TrainOutcome, TrainSettings, WorkerConfig, score_pipeline, train_now};
use funnel_store::{Store, StoreOptions, Trigger};
use tokio::net::TcpListener;

use crate::client::{Client, ConnectArgs};
use crate::error::{CliError, Result};
use crate::simulate::load_simulation;

/// What data a fresh dev database starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SeedData {
    /// A simulated year of the default `sales` funnel.
    Demo,
    /// An empty funnel.
    None,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// SQLite file of the dev database (created if missing).
    #[arg(long, env = "FUNNEL_DEV_DATABASE", default_value = "funnel-dev.db")]
    pub database: PathBuf,
    /// Address to serve gRPC on; port 0 picks a free one.
    #[arg(long, env = "FUNNEL_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Data loaded into a database that has no opportunities yet.
    #[arg(long, value_enum, default_value_t = SeedData::Demo)]
    pub seed_data: SeedData,
    /// Opportunities in the demo data.
    #[arg(long, default_value_t = 3_000)]
    pub opportunities: u64,
    /// Seed of the demo data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Rescore every this many seconds (and soon after changes).
    #[arg(long, default_value_t = 60)]
    pub score_every_secs: u64,
}

fn failed(what: &str, error: impl std::fmt::Display) -> CliError {
    CliError::invalid("dev", format!("{what}: {error}"))
}

/// Runs dev mode until Ctrl-C.
pub async fn run(args: &DevArgs, progress: bool) -> Result<()> {
    // Dev mode has no tokens: like the service, it serves only on loopback.
    if !args.listen.ip().is_loopback() {
        return Err(CliError::invalid(
            "--listen",
            format!("dev mode runs without tokens and serves only on a loopback address, not {}", args.listen),
        ));
    }
    let url = format!("sqlite://{}?mode=rwc", args.database.display());
    let store = Store::connect(&url, &StoreOptions::for_url(&url))
        .await
        .map_err(|error| failed("opening the database", error))?;
    store.migrate().await.map_err(|error| failed("migrating the database", error))?;
    let listener =
        TcpListener::bind(args.listen).await.map_err(|error| failed(&format!("binding {}", args.listen), error))?;
    let address = listener.local_addr().map_err(|error| failed("reading the bound address", error))?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(funnel_pipeline::serve(listener, store.clone(), async {
        let _ = server_stopped.await;
    }));
    let server_url = format!("http://{address}");
    let client = Client::connect(&ConnectArgs {
        server: server_url.clone(),
        actor: Some("dev".to_owned()),
        ..ConnectArgs::default()
    })
    .await?;

    let sales = PipelineName::parse("pipeline", "sales").map_err(|error| failed("pipeline", error))?;
    let existing = store.count_opportunities(&sales, None).await.map_err(|error| failed("counting", error))?;
    if existing == 0 && args.seed_data == SeedData::Demo {
        // A year of history ending now, so open leads have realistic ages.
        let end = Utc::now();
        let config = SimulationConfig {
            seed: args.seed,
            opportunities: args.opportunities,
            start: end - chrono::Duration::days(365),
            end,
            ..SimulationConfig::default()
        };
        let report = load_simulation(&client, &config, 0, progress).await?;
        println!("loaded {} simulated opportunities ({:.0}/s)", report.imported, report.opportunities_per_second);
    }

    let settings = TrainSettings { worker: format!("dev-{}", std::process::id()), ..TrainSettings::default() };
    if store.active_model(&sales).await.map_err(|error| failed("reading models", error))?.is_none() {
        match train_now(&store, &sales, Trigger::Manual, &settings).await {
            Ok(report) => match report.outcome {
                TrainOutcome::Registered { model, verdict, .. } => {
                    println!("trained model {} ({}): {}", model.version, model.status.as_str(), verdict.reason)
                }
                TrainOutcome::InsufficientData { message, .. } => println!("no model yet: {message}"),
            },
            Err(error) => println!("training skipped: {error}"),
        }
    }
    let scored = score_pipeline(&store, &sales, settings.batch_size, Utc::now(), &|_| {})
        .await
        .map_err(|error| failed("scoring", error))?;
    println!("scored {} open leads, {} flagged as likely leaking", scored.scored, scored.flagged);

    let worker_config = WorkerConfig {
        train: settings,
        train_schedule: "0 0 3 * * *".parse().map_err(|error| failed("schedule", error))?,
        score_every: Duration::from_secs(args.score_every_secs.max(1)),
        retrain_after_outcomes: 200,
        poll_every: Duration::from_secs(5),
        score_history_days: 365,
    };
    let (stop_worker, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(funnel_scorer::run(store.clone(), worker_config, async {
        let _ = worker_stopped.await;
    }));

    let funnel = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.strip_prefix(std::env::current_dir().ok()?).ok().map(|path| path.display().to_string()))
        .unwrap_or_else(|| "funnel".to_owned());
    println!("funnel dev is serving on {server_url} (database {})", args.database.display());
    println!("try:");
    println!("  {funnel} --server {server_url} leads --flagged");
    println!("  {funnel} --server {server_url} models");
    println!("  {funnel} --server {server_url} show <ID from leads>");
    println!("Ctrl-C stops it.");

    let _ = tokio::signal::ctrl_c().await;
    println!("stopping");
    let _ = stop_worker.send(());
    let _ = stop_server.send(());
    let _ = worker.await;
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(failed("serving", error)),
        Err(error) => Err(failed("server task", error)),
    }
}
