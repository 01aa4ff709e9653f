//! `funnel simulate`: the deterministic funnel simulator of
//! `funnel_dataset`, written as JSON Lines or loaded straight into a server.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use funnel_dataset::{SimulationConfig, simulate, write_jsonl_record};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::import::{ImportReport, ensure_pipeline, import_stream};
use crate::output::{self, Report};

/// What to simulate and where it goes.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("destination").required(true).args(["out", "load"])))]
pub struct SimulateArgs {
    /// Same seed and flags, same records.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// How many opportunities (10 to 10,000,000).
    #[arg(long, default_value_t = 1_000)]
    pub opportunities: u64,
    /// How many sales reps own them.
    #[arg(long, default_value_t = 12)]
    pub reps: u32,
    /// First day opportunities are created (default 2024-01-01).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub start: Option<NaiveDate>,
    /// Day the simulation stops; stories still running stay open (default 2025-01-01).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub end: Option<NaiveDate>,
    /// Write the records to this JSON Lines file (the import format).
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
    /// Stream the records straight into the server instead.
    #[arg(long)]
    pub load: bool,
    /// How many rejections the summary lists (--json has all).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
}

/// What `funnel simulate` did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum SimulateReport {
    /// Records written to a file.
    Written { path: String, opportunities: u64, elapsed_seconds: f64 },
    /// Records loaded into the server.
    Loaded(ImportReport),
}

impl SimulateArgs {
    /// The simulator's configuration, checked.
    pub fn config(&self) -> Result<SimulationConfig> {
        let defaults = SimulationConfig::default();
        let midnight = |date: NaiveDate| date.and_time(chrono::NaiveTime::MIN).and_utc();
        let config = SimulationConfig {
            seed: self.seed,
            opportunities: self.opportunities,
            reps: self.reps,
            start: self.start.map_or(defaults.start, midnight),
            end: self.end.map_or(defaults.end, midnight),
            ..defaults
        };
        config.validate()?;
        Ok(config)
    }
}

/// Runs `funnel simulate`: `--out` writes a file, `--load` needs `client`.
pub async fn run(client: Option<&Client>, args: &SimulateArgs, progress: bool) -> Result<SimulateReport> {
    let config = args.config()?;
    if let Some(path) = args.out.clone() {
        let written = tokio::task::spawn_blocking(move || write_simulation(&config, &path, progress))
            .await
            .map_err(|error| CliError::invalid("--out", format!("writing task failed: {error}")))??;
        return Ok(written);
    }
    let Some(client) = client else {
        return Err(CliError::invalid("--load", "needs a server (--server)"));
    };
    let loaded = load_simulation(client, &config, args.show, progress).await?;
    Ok(SimulateReport::Loaded(loaded))
}

/// Writes the simulated records to `path` as JSON Lines. Blocking.
pub fn write_simulation(config: &SimulationConfig, path: &Path, progress: bool) -> Result<SimulateReport> {
    let started = Instant::now();
    let io_error = |error: std::io::Error| CliError::Io { path: path.to_path_buf(), reason: error.to_string() };
    let mut writer = BufWriter::new(File::create(path).map_err(io_error)?);
    let bar =
        if progress { output::counting_bar(config.opportunities, "opportunities") } else { ProgressBar::hidden() };
    let mut written = 0_u64;
    for record in simulate(config)? {
        write_jsonl_record(&mut writer, &record)?;
        written += 1;
        bar.inc(1);
    }
    writer.flush().map_err(io_error)?;
    bar.finish_and_clear();
    Ok(SimulateReport::Written {
        path: path.display().to_string(),
        opportunities: written,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Streams a simulation into the server, creating its pipeline if missing.
/// This is what dev mode and benchmarks call.
pub async fn load_simulation(
    client: &Client,
    config: &SimulationConfig,
    show: usize,
    progress: bool,
) -> Result<ImportReport> {
    let simulation = simulate(config)?;
    let created = ensure_pipeline(client, &simulation.pipeline()).await?;
    let bar =
        if progress { output::counting_bar(config.opportunities, "opportunities") } else { ProgressBar::hidden() };
    let records = simulation.zip(1_u64..).map(|(record, number)| Ok((number, record)));
    let source = format!("simulation (seed {}, {} opportunities)", config.seed, config.opportunities);
    let mut report = import_stream(client, source, "record", records, bar, true, show).await?;
    if created && !report.pipelines_created.contains(&config.pipeline) {
        report.pipelines_created.push(config.pipeline.clone());
    }
    Ok(report)
}

impl Report for SimulateReport {
    fn human(&self) -> String {
        match self {
            SimulateReport::Written { path, opportunities, elapsed_seconds } => {
                format!("wrote {opportunities} opportunities to {path} in {elapsed_seconds:.1} s")
            }
            SimulateReport::Loaded(report) => report.human(),
        }
    }
}
