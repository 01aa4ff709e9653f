//! `funnel import`: JSON Lines, the three-file CSV variant, or the CRM Sales
//! Opportunities data set, streamed through ImportOpportunities. Everything
//! that was not imported is in the report: rows the reader could not read,
//! records the service rejected (with the field), and the data set's own
//! problem reports.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use funnel_dataset::{CRM_PIPELINE, PipelineSpec, crm_pipeline, default_pipeline, load_crm, open_csv_dir, read_jsonl};
use funnel_proto::v1 as pb;
use indicatif::ProgressBar;
use serde::Serialize;
use tonic::Code;

use crate::client::Client;
use crate::error::{CliError, Result};
use crate::output::{self, Report};
use crate::stream::{SourceItem, StreamOutcome, stream_records};

/// What to import.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "csv", "crm"])))]
pub struct ImportArgs {
    /// A JSON Lines file in the import format (crates/dataset/FORMAT.md).
    /// The built-in pipelines `sales` (simulator) and `crm` are created when
    /// the first record names one and it does not exist yet.
    #[arg(value_name = "FILE.jsonl")]
    pub file: Option<PathBuf>,
    /// A directory with opportunities.csv, history.csv and activities.csv.
    #[arg(long, value_name = "DIR")]
    pub csv: Option<PathBuf>,
    /// A directory with the CRM Sales Opportunities data set; the `crm`
    /// pipeline is created first if missing.
    #[arg(long, value_name = "DIR")]
    pub crm: Option<PathBuf>,
    /// How many rejections and problems the tables list (--json has all).
    #[arg(long, default_value_t = 20)]
    pub show: usize,
}

/// The summary of an import.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// What was read (file or directory).
    pub source: String,
    /// Pipelines this import created.
    pub pipelines_created: Vec<String>,
    /// Records sent to the service.
    pub sent: u64,
    pub imported: i64,
    pub already_present: i64,
    pub rejected: u64,
    pub batches: i64,
    pub elapsed_seconds: f64,
    pub opportunities_per_second: f64,
    /// What `RejectionView::position` counts: `line` of the file or 1-based `record`.
    pub position_kind: &'static str,
    /// Records the service refused, with the offending field.
    pub rejections: Vec<RejectionView>,
    /// Rows the reader could not read and the data set's own reports.
    pub problems: Vec<ProblemView>,
    /// Rows listed by the human tables.
    #[serde(skip)]
    pub show: usize,
}

/// One record the service refused.
#[derive(Debug, Clone, Serialize)]
pub struct RejectionView {
    /// Zero-based position in the stream.
    pub index: i64,
    /// Line (or record number) in the source.
    pub position: Option<u64>,
    pub external_id: String,
    pub field: String,
    pub reason: String,
}

/// One row the source reported: unreadable, skipped or imported imperfectly.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemView {
    pub file: String,
    pub line: u64,
    pub external_id: String,
    pub reason: String,
    /// `skipped` or `imported with ...`.
    pub action: String,
}

/// Runs `funnel import`. With `progress` false nothing is drawn.
pub async fn import(client: &Client, args: &ImportArgs, progress: bool) -> Result<ImportReport> {
    if let Some(dir) = &args.crm {
        return import_crm(client, dir, args.show, progress).await;
    }
    if let Some(dir) = &args.csv {
        let reader = open_csv_dir(dir)?;
        let bar = if progress { output::counting_spinner("opportunities") } else { ProgressBar::hidden() };
        let source = dir.join(funnel_dataset::OPPORTUNITIES_FILE).display().to_string();
        return import_stream(client, source, "line", reader, bar, true, args.show).await;
    }
    let Some(path) = &args.file else {
        return Err(CliError::invalid("FILE", "give a JSON Lines file, --csv DIR or --crm DIR"));
    };
    let file = File::open(path).map_err(|error| io_error(path, &error))?;
    let total_bytes = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let bar = if progress { output::bytes_bar(total_bytes) } else { ProgressBar::hidden() };
    let reader = read_jsonl(BufReader::new(bar.wrap_read(file)));
    import_stream(client, path.display().to_string(), "line", reader, bar, false, args.show).await
}

/// Streams `source` into the service and summarises. Creates the built-in
/// pipeline named by the first record if it is missing.
pub async fn import_stream<I>(
    client: &Client,
    source_name: String,
    position_kind: &'static str,
    source: I,
    bar: ProgressBar,
    progress_by_record: bool,
    show: usize,
) -> Result<ImportReport>
where
    I: Iterator<Item = SourceItem> + Send + 'static,
{
    let mut source = source.peekable();
    let mut pipelines_created = Vec::new();
    let first_pipeline = match source.peek() {
        Some(Ok((_, record))) => builtin_pipeline(&record.pipeline),
        _ => None,
    };
    if let Some(spec) = first_pipeline
        && ensure_pipeline(client, &spec).await?
    {
        pipelines_created.push(spec.name);
    }
    let outcome = stream_records(client, source, bar, progress_by_record).await?;
    Ok(summarise(source_name, position_kind, pipelines_created, outcome, Vec::new(), show))
}

async fn import_crm(client: &Client, dir: &Path, show: usize, progress: bool) -> Result<ImportReport> {
    let owned_dir = dir.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || load_crm(&owned_dir))
        .await
        .map_err(|error| CliError::invalid("--crm", format!("reading the data set failed: {error}")))??;
    let spec = crm_pipeline();
    let mut pipelines_created = Vec::new();
    if ensure_pipeline(client, &spec).await? {
        pipelines_created.push(spec.name);
    }
    let mut problems = Vec::with_capacity(loaded.problems.len());
    for problem in loaded.problems {
        problems.push(ProblemView {
            file: problem.file,
            line: problem.line,
            external_id: problem.external_id,
            reason: problem.reason,
            action: problem.action.to_string(),
        });
    }
    let total = loaded.records.len() as u64;
    let bar = if progress { output::counting_bar(total, "opportunities") } else { ProgressBar::hidden() };
    let records = loaded.records.into_iter().zip(1_u64..).map(|(record, number)| Ok((number, record)));
    let outcome = stream_records(client, records, bar, true).await?;
    Ok(summarise(dir.display().to_string(), "record", pipelines_created, outcome, problems, show))
}

/// Creates the pipeline unless it exists; true when this call created it.
pub async fn ensure_pipeline(client: &Client, spec: &PipelineSpec) -> Result<bool> {
    let mut stages = Vec::with_capacity(spec.stages.len());
    for stage in &spec.stages {
        stages.push(pb::Stage {
            key: stage.key.clone(),
            display_name: stage.display_name.clone(),
            rot_after_days: stage.rot_after_days,
        });
    }
    let request = pb::CreatePipelineRequest {
        name: spec.name.clone(),
        display_name: spec.display_name.clone(),
        stages,
        request_id: String::new(),
    };
    match client.pipeline().create_pipeline(request).await {
        Ok(_) => Ok(true),
        Err(status) if status.code() == Code::AlreadyExists => Ok(false),
        Err(status) => Err(CliError::Rpc { rpc: "CreatePipeline", status }),
    }
}

/// The pipelines the CLI knows how to create: the simulator's and the CRM's.
pub fn builtin_pipeline(name: &str) -> Option<PipelineSpec> {
    let simulated = default_pipeline();
    if name == simulated.name {
        return Some(simulated);
    }
    (name == CRM_PIPELINE).then(crm_pipeline)
}

fn summarise(
    source: String,
    position_kind: &'static str,
    pipelines_created: Vec<String>,
    outcome: StreamOutcome,
    mut problems: Vec<ProblemView>,
    show: usize,
) -> ImportReport {
    let StreamOutcome { response, sent, unreadable, positions, elapsed_seconds } = outcome;
    let pb::ImportOpportunitiesResponse { imported, already_present, rejections, batches } = response;
    let file_name =
        Path::new(&source).file_name().map_or_else(|| source.clone(), |name| name.to_string_lossy().into_owned());
    for row_error in unreadable {
        problems.push(ProblemView {
            file: file_name.clone(),
            line: row_error.line,
            external_id: String::new(),
            reason: row_error.reason,
            action: "skipped".to_owned(),
        });
    }
    let mut rejection_views = Vec::with_capacity(rejections.len());
    for rejection in rejections {
        let position = u64::try_from(rejection.index).ok().and_then(|index| positions.position(index));
        rejection_views.push(RejectionView {
            index: rejection.index,
            position,
            external_id: rejection.external_id,
            field: rejection.field,
            reason: rejection.reason,
        });
    }
    let opportunities_per_second = if elapsed_seconds > 0.0 { sent as f64 / elapsed_seconds } else { 0.0 };
    ImportReport {
        source,
        pipelines_created,
        sent,
        imported,
        already_present,
        rejected: rejection_views.len() as u64,
        batches,
        elapsed_seconds,
        opportunities_per_second,
        position_kind,
        rejections: rejection_views,
        problems,
        show,
    }
}

fn io_error(path: &Path, error: &std::io::Error) -> CliError {
    CliError::Io { path: path.to_path_buf(), reason: error.to_string() }
}

impl Report for ImportReport {
    fn human(&self) -> String {
        let mut lines = Vec::new();
        for pipeline in &self.pipelines_created {
            lines.push(format!("created pipeline {pipeline}"));
        }
        lines.push(format!(
            "imported from {} in {:.1} s ({:.0} opportunities/s)",
            self.source, self.elapsed_seconds, self.opportunities_per_second
        ));
        let mut counts =
            output::table(&["read", "imported", "already present", "rejected", "problems"], &[0, 1, 2, 3, 4]);
        counts.add_row([
            self.sent.to_string(),
            self.imported.to_string(),
            self.already_present.to_string(),
            self.rejected.to_string(),
            self.problems.len().to_string(),
        ]);
        lines.push(counts.to_string());
        if !self.rejections.is_empty() {
            lines.push(format!("\nrejected by the service ({}):", self.rejections.len()));
            let mut rejected = output::table(&[self.position_kind, "external id", "field", "reason"], &[0]);
            for rejection in self.rejections.iter().take(self.show) {
                let position = rejection.position.map_or_else(|| "-".to_owned(), |position| position.to_string());
                rejected.add_row([
                    position,
                    rejection.external_id.clone(),
                    rejection.field.clone(),
                    rejection.reason.clone(),
                ]);
            }
            lines.push(rejected.to_string());
            lines.extend(output::more_line(self.show, self.rejections.len(), "rejections"));
        }
        if !self.problems.is_empty() {
            lines.push(format!("\nproblems reported while reading ({}):", self.problems.len()));
            let mut problems = output::table(&["file", "line", "id", "reason", "action"], &[1]);
            for problem in self.problems.iter().take(self.show) {
                problems.add_row([
                    problem.file.clone(),
                    problem.line.to_string(),
                    problem.external_id.clone(),
                    problem.reason.clone(),
                    problem.action.clone(),
                ]);
            }
            lines.push(problems.to_string());
            lines.extend(output::more_line(self.show, self.problems.len(), "problems"));
        }
        lines.join("\n")
    }
}
