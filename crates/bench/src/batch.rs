//! B5-B7: training against scikit-learn, rescoring against COPY, the funnel
//! report against one hand-written query; and the child processes they run.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::Utc;
use funnel_domain::PipelineName;
use funnel_proto::v1 as pb;
use funnel_scorer::{TrainSettings, load_histories, score_pipeline, train_now};
use funnel_scoring::{
    FeatureRow, FeatureSpec, StageInfo, TrainParams, fit_logistic, roc_auc, train_model, training_examples,
};
use funnel_store::{Store, StoreOptions, Trigger};
use linfa::ParamGuard;
use ndarray::{Array2, Axis, Slice};

use crate::anchors;
use crate::context::Bench;
use crate::results::{Comparison, Goal};
use crate::system::{self, psql};

/// The L2 weight both sides fit with (the middle of funnel's grid).
const ALPHA: f64 = 1.0;
const HISTORY_BATCH: u64 = 2_000;

fn sales() -> anyhow::Result<PipelineName> {
    Ok(PipelineName::parse("pipeline", "sales")?)
}

async fn stages(store: &Store) -> anyhow::Result<Vec<StageInfo>> {
    let pipeline = store.get_pipeline(&sales()?).await?;
    Ok(pipeline
        .def
        .stages()
        .iter()
        .map(|stage| StageInfo { key: stage.key.to_string(), rot_after_days: stage.rot_after_days })
        .collect())
}

/// Writes a float64 matrix as `.npy` (format 1.0, C order).
fn write_npy(path: &Path, values: &[f64], shape: &[usize]) -> anyhow::Result<()> {
    let shape_text = match shape {
        [rows] => format!("({rows},)"),
        dims => format!("({})", dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header, padded to 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(b"\x93NUMPY\x01\x00")?;
    file.write_all(&u16::try_from(header.len())?.to_le_bytes())?;
    file.write_all(header.as_bytes())?;
    for value in values {
        file.write_all(&value.to_le_bytes())?;
    }
    file.flush()?;
    Ok(())
}

pub async fn b5(bench: &mut Bench) -> anyhow::Result<()> {
    println!("B5: training (linfa-logistic via funnel_scoring::fit_logistic) vs scikit-learn lbfgs");
    bench.postgres().await?;
    let Some(loaded) = bench.postgres.as_ref() else { return Ok(()) };
    let settings = bench.settings.clone();
    let histories = load_histories(&loaded.store, &sales()?, None, HISTORY_BATCH, &|_| {}).await?;
    let stages = stages(&loaded.store).await?;
    let mut examples = training_examples(&histories, &stages, &TrainParams::default(), Utc::now())?;
    drop(histories);
    let available = examples.len();
    examples.truncate(settings.examples);
    let cut = examples.len() * 4 / 5;
    let params = TrainParams::default().check()?;
    let train_rows: Vec<&FeatureRow> = examples[..cut].iter().map(|example| &example.row).collect();
    let all_rows: Vec<&FeatureRow> = examples.iter().map(|example| &example.row).collect();
    let spec = FeatureSpec::fit(
        &train_rows,
        &funnel_scoring::EncodingParams { min_category_count: 5, max_categories: 20, numeric_attribute_share: 0.9 },
    );
    let x: Array2<f64> = spec.transform_all(&all_rows);
    let labels: Vec<bool> = examples.iter().map(|example| example.advanced).collect();
    drop(examples);
    let (rows, width) = x.dim();
    println!("  {rows} examples ({available} available) x {width} features, {cut} to train");
    let dir = std::env::temp_dir().join("funnel-bench-b5");
    std::fs::create_dir_all(&dir)?;
    let (x_path, y_path) = (dir.join("x.npy"), dir.join("y.npy"));
    let flat: Vec<f64> = x.iter().copied().collect();
    write_npy(&x_path, &flat, &[rows, width])?;
    drop(flat);
    let y: Vec<f64> = labels.iter().map(|label| f64::from(u8::from(*label))).collect();
    write_npy(&y_path, &y, &[rows])?;
    let x_train = x.slice_axis(Axis(0), Slice::from(..cut)).to_owned();
    let x_test = x.slice_axis(Axis(0), Slice::from(cut..)).to_owned();
    let (y_train, y_test) = labels.split_at(cut);

    let mut comparison = Comparison::new(
        "B5",
        &format!("fit_logistic (linfa-logistic 0.8.1 with vendor/ patch), {cut} x {width}, alpha {ALPHA}"),
        "scikit-learn LogisticRegression(lbfgs, C=1/alpha) on the exported matrix",
        "s",
        Goal::AtMost(1.5),
    );
    let mut auc_gaps = Vec::new();
    let mut versions = String::new();
    for _ in 0..settings.pairs {
        let anchor = anchors::sklearn_fit(&x_path, &y_path, cut, ALPHA)?;
        let started = Instant::now();
        let fit = fit_logistic(&x_train, y_train, ALPHA, &params)?;
        let seconds = started.elapsed().as_secs_f64();
        let auc = roc_auc(&fit.probabilities(&x_test), y_test).unwrap_or(f64::NAN);
        println!(
            "    funnel: {seconds:.2} s, {} iterations, converged {}, AUC {auc:.4}; scikit-learn: {:.2} s, {} iterations, AUC {:.4}",
            fit.iterations, fit.converged, anchor.seconds, anchor.iterations, anchor.auc
        );
        auc_gaps.push((auc - anchor.auc).abs());
        versions = format!("scikit-learn {}, numpy {}", anchor.sklearn, anchor.numpy);
        comparison.push(seconds, anchor.seconds);
    }
    let gap = auc_gaps.iter().copied().fold(0.0, f64::max);
    comparison.notes = format!(
        "{rows} examples from {} opportunities; held-out AUC gap {gap:.4} ({}); {versions}",
        settings.opportunities,
        if gap <= 0.002 { "within 0.002" } else { "**over 0.002**" }
    );
    bench.results.comparisons.push(comparison);
    Ok(())
}

/// Makes sure the pipeline has an active model, so scoring uses one.
/// Trains once in its own process, so that its peak RSS is its own, and
/// makes sure a model is active for rescoring.
async fn train_once(bench: &mut Bench, url: &str) -> anyhow::Result<()> {
    let output = Command::new(std::env::current_exe()?).args(["train-once-child", "--database-url", url]).output()?;
    if !output.status.success() {
        bail!("train-once-child failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let child: TrainOnceChild = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("train-once-child printed {stdout:?}"))?;
    bench.note(
        "training (train_now: read in batches, evaluate, fit, register), own process",
        format!(
            "{} opportunities, {} examples in {:.1} s; peak RSS {:.0} MiB",
            child.opportunities,
            child.examples,
            child.seconds,
            child.peak_rss_kib as f64 / 1024.0
        ),
    );
    Ok(())
}

/// What `train-once-child` prints.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TrainOnceChild {
    pub opportunities: usize,
    pub examples: usize,
    pub seconds: f64,
    pub peak_rss_kib: u64,
}

/// One training run; leaves a model active for rescoring.
pub async fn train_once_child(database_url: &str) -> anyhow::Result<()> {
    let store = Store::connect(database_url, &StoreOptions::default()).await?;
    let pipeline = sales()?;
    let report = train_now(&store, &pipeline, Trigger::Manual, &TrainSettings::default()).await?;
    let examples = match &report.outcome {
        funnel_scorer::TrainOutcome::Registered { model, trained, .. } => {
            if store.active_model(&pipeline).await?.is_none() {
                store.activate_model(model.version, "benchmark").await?;
            }
            trained.counts.advanced + trained.counts.leaked
        }
        funnel_scorer::TrainOutcome::InsufficientData { advanced, leaked, .. } => advanced + leaked,
    };
    let (_, peak) = system::memory_kib(std::process::id());
    let line =
        TrainOnceChild { opportunities: report.opportunities, examples, seconds: report.seconds, peak_rss_kib: peak };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

/// What `score-child` prints.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ScoreChild {
    pub scored: u64,
    /// The second run, on connections the first opened: `funnel-scorer run`
    /// keeps its pool between runs.
    pub seconds: f64,
    /// The first run, which opened the connections and prepared the
    /// statements, as a one-off `funnel-scorer score` does.
    pub first_seconds: f64,
    pub peak_rss_kib: u64,
}

/// Rescoring as its own process, so its peak RSS is its own: twice, so
/// that both a fresh process and a running scorer are measured.
pub async fn score_child(database_url: &str) -> anyhow::Result<()> {
    let store = Store::connect(database_url, &StoreOptions::default()).await?;
    let first = score_pipeline(&store, &sales()?, HISTORY_BATCH, Utc::now(), &|_| {}).await?;
    let report = score_pipeline(&store, &sales()?, HISTORY_BATCH, Utc::now(), &|_| {}).await?;
    let (_, peak) = system::memory_kib(std::process::id());
    let line =
        ScoreChild { scored: report.scored, seconds: report.seconds, first_seconds: first.seconds, peak_rss_kib: peak };
    println!("{}", serde_json::to_string(&line)?);
    Ok(())
}

/// Training in a loop until killed (B8's background load).
pub async fn train_child(database_url: &str) -> anyhow::Result<()> {
    let store = Store::connect(database_url, &StoreOptions::default()).await?;
    let stages = stages(&store).await?;
    // B8 kills it; if funnel-bench itself is killed first, the orphan
    // notices its new parent and stops instead of loading the next round.
    let parent = std::os::unix::process::parent_id();
    while std::os::unix::process::parent_id() == parent {
        let histories = load_histories(&store, &sales()?, None, HISTORY_BATCH, &|_| {}).await?;
        let stages = stages.clone();
        tokio::task::spawn_blocking(move || train_model(&histories, &stages, &TrainParams::default(), Utc::now()))
            .await??;
    }
    Ok(())
}

/// Runs `score-child` and reads what it printed.
fn run_score_child(url: &str) -> anyhow::Result<ScoreChild> {
    let output = Command::new(std::env::current_exe()?).args(["score-child", "--database-url", url]).output()?;
    if !output.status.success() {
        bail!("score-child failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .with_context(|| format!("score-child printed {stdout:?}"))
}

pub async fn b6(bench: &mut Bench) -> anyhow::Result<()> {
    println!("B6: rescoring every open opportunity vs COPY of the same score rows");
    bench.postgres().await?;
    let Some(loaded) = bench.postgres.as_ref() else { return Ok(()) };
    let settings = bench.settings.clone();
    let url = loaded.url.clone();
    train_once(bench, &url).await?;
    psql(
        &url,
        "CREATE TABLE IF NOT EXISTS bench_score_history (LIKE score_history INCLUDING ALL); \
         CREATE TABLE IF NOT EXISTS bench_current_scores (LIKE current_scores INCLUDING ALL)",
    )?;
    let dir = std::env::temp_dir().join("funnel-bench-b6");
    std::fs::create_dir_all(&dir)?;
    let (history_file, current_file) = (dir.join("score_history.copy"), dir.join("current_scores.copy"));
    let script = dir.join("copy.sql");
    std::fs::write(
        &script,
        format!(
            "\\copy bench_score_history FROM '{}'\n\\copy bench_current_scores FROM '{}'\n",
            history_file.display(),
            current_file.display()
        ),
    )?;
    let mut comparison = Comparison::new(
        "B6",
        "score_pipeline on every open opportunity (read, featurize, predict, write), own process",
        "psql \\copy of the same score_history + current_scores rows",
        "opportunities/s",
        Goal::AtLeast(0.5),
    );
    // Every round starts from the same score tables: each run appends a row
    // per open opportunity to the history and leaves as many dead rows in
    // the current scores (autovacuum may be off), so otherwise a round's
    // figures would depend on how many rounds came before. One unmeasured
    // run fills the current scores, so that the measured ones update them.
    psql(&url, "TRUNCATE score_history, current_scores")?;
    run_score_child(&url)?;
    let mut peaks = Vec::new();
    let mut first_runs = Vec::new();
    let mut recorded = Vec::new();
    let mut scored = 0;
    for _ in 0..settings.pairs {
        let child = run_score_child(&url)?;
        scored = child.scored;
        first_runs.push(child.scored as f64 / child.first_seconds);
        peaks.push(child.peak_rss_kib as f64 / 1024.0);
        // The rows that run wrote, as the anchor's input: its current scores,
        // and the history rows it recorded (only changed scores are; a run
        // stamps all of its rows with one `scored_at`, its current scores').
        psql(
            &url,
            &format!(
                "\\copy (SELECT * FROM score_history WHERE scored_at = (SELECT max(scored_at) FROM current_scores)) \
                 TO '{}'",
                history_file.display()
            ),
        )?;
        recorded.push(psql(
            &url,
            "SELECT count(*) FROM score_history WHERE scored_at = (SELECT max(scored_at) FROM current_scores)",
        )?);
        psql(
            &url,
            &format!("\\copy (SELECT * FROM current_scores WHERE pipeline = 'sales') TO '{}'", current_file.display()),
        )?;
        psql(&url, "TRUNCATE bench_score_history, bench_current_scores")?;
        let anchor_seconds = system::psql_file(&url, &script)?.as_secs_f64();
        comparison.push(child.scored as f64 / child.seconds, child.scored as f64 / anchor_seconds);
    }
    let peak = peaks.iter().copied().fold(0.0, f64::max);
    let first_runs: Vec<String> = first_runs.iter().map(|rate| format!("{rate:.0}")).collect();
    comparison.notes = format!(
        "{scored} open opportunities, of which {} recorded in the history (changed scores only; the anchor copies \
         the same rows); the scorer's second run in its process (its first, opening the connections: {}/s); scorer \
         peak RSS {peak:.0} MiB ({})",
        recorded.join(", "),
        first_runs.join(", "),
        if peak <= 512.0 { "<= 512 MiB" } else { "**over 512 MiB**" }
    );
    bench.results.comparisons.push(comparison);
    bench.note(
        "scorer peak RSS (B6, VmHWM)",
        format!("{} MiB per run", peaks.iter().map(|peak| format!("{peak:.0}")).collect::<Vec<_>>().join(", ")),
    );
    Ok(())
}

pub async fn b7(bench: &mut Bench) -> anyhow::Result<()> {
    println!("B7: GetFunnelReport vs one hand-written SQL query in psql");
    bench.postgres().await?;
    let Some(loaded) = bench.postgres.as_ref() else { return Ok(()) };
    let settings = bench.settings.clone();
    let transitions = psql(&loaded.url, "SELECT COUNT(*) FROM transitions")?;
    let mut client = loaded.server.client().await?;
    let request = pb::GetFunnelReportRequest { pipeline: "sales".to_owned(), ..Default::default() };
    // Warm both up once: the first run reads the tables into the cache.
    client.get_funnel_report(request.clone()).await?;
    anchors::psql_script_seconds(&loaded.url, "b7_report.sql")?;
    let mut comparison = Comparison::new(
        "B7",
        "GetFunnelReport via gRPC (pipeline sales, all time)",
        "psql -f bench/b7_report.sql (the same aggregates, one query)",
        "s",
        Goal::AtMost(1.5),
    );
    for _ in 0..settings.pairs {
        let anchor = anchors::psql_script_seconds(&loaded.url, "b7_report.sql")?;
        let started = Instant::now();
        client.get_funnel_report(request.clone()).await?;
        comparison.push(started.elapsed().as_secs_f64(), anchor);
    }
    comparison.notes = format!("{} opportunities, {transitions} transitions", settings.opportunities);
    bench.results.comparisons.push(comparison);
    Ok(())
}
