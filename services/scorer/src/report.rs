//! What `funnel-scorer train` and `score` print: aligned tables for people,
//! JSON with `--json`.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use funnel_scoring::Metrics;
use serde_json::json;

use crate::score::ScoreReport;
use crate::train::{TrainOutcome, TrainReport};

fn fmt(value: Option<f64>) -> String {
    value.map(|value| format!("{value:.4}")).unwrap_or_else(|| "n/a".to_owned())
}

fn metrics_json(metrics: &Metrics) -> serde_json::Value {
    json!({
        "examples": metrics.count,
        "roc_auc": metrics.roc_auc,
        "pr_auc": metrics.pr_auc,
        "log_loss": metrics.log_loss,
        "brier": metrics.brier,
        "calibration": metrics.calibration.iter().map(|bin| json!({
            "bin": bin.bin, "count": bin.count, "mean_predicted": bin.mean_predicted, "observed_rate": bin.observed_rate,
        })).collect::<Vec<_>>(),
    })
}

pub fn train_json(report: &TrainReport) -> serde_json::Value {
    let base = json!({
        "pipeline": report.pipeline.to_string(),
        "job": report.job.id.to_string(),
        "job_state": report.job.state.as_str(),
        "opportunities": report.opportunities,
        "examples_seen": report.examples_seen,
        "seconds": report.seconds,
    });
    let outcome = match &report.outcome {
        TrainOutcome::Registered { model, trained, verdict } => json!({
            "model_version": model.version,
            "status": model.status.as_str(),
            "activated": verdict.activate,
            "reason": verdict.reason,
            "converged": trained.converged,
            "alpha": trained.alpha,
            "advanced_examples": trained.counts.advanced,
            "leaked_examples": trained.counts.leaked,
            "leak_threshold": trained.leak_threshold.threshold,
            "model_metrics": trained.evaluation.as_ref().map(|evaluation| metrics_json(&evaluation.model)),
            "baseline_metrics": trained.evaluation.as_ref().map(|evaluation| metrics_json(&evaluation.baseline)),
        }),
        TrainOutcome::InsufficientData { advanced, leaked, message } => {
            json!({ "model_version": null, "advanced_examples": advanced, "leaked_examples": leaked, "reason": message })
        }
    };
    json!({ "run": base, "outcome": outcome })
}

/// Says so when training learnt from a sample of the examples.
fn sample_note(seen: u64, kept: usize) -> String {
    if seen > kept as u64 { format!(" (a uniform sample of {seen})") } else { String::new() }
}

pub fn train_table(report: &TrainReport) -> String {
    let mut out = format!(
        "pipeline {} · job {} · {} opportunities · {:.1} s\n",
        report.pipeline, report.job.id, report.opportunities, report.seconds
    );
    match &report.outcome {
        TrainOutcome::InsufficientData { message, .. } => out.push_str(&format!("no model: {message}\n")),
        TrainOutcome::Registered { model, trained, verdict } => {
            out.push_str(&format!(
                "model {} is {}: {}\nalpha {} · converged {} · leak threshold {:.3} · {} advanced / {} leaked examples{}\n",
                model.version,
                model.status.as_str(),
                verdict.reason,
                trained.alpha,
                trained.converged,
                trained.leak_threshold.threshold,
                trained.counts.advanced,
                trained.counts.leaked,
                sample_note(report.examples_seen, trained.counts.advanced + trained.counts.leaked)
            ));
            if let Some(evaluation) = &trained.evaluation {
                let mut table = Table::new();
                table.load_preset(UTF8_BORDERS_ONLY).set_header(["held-out metric", "model", "stage baseline"]);
                let (model_metrics, baseline) = (&evaluation.model, &evaluation.baseline);
                table.add_row(["examples".to_owned(), model_metrics.count.to_string(), baseline.count.to_string()]);
                table.add_row(["ROC AUC".to_owned(), fmt(model_metrics.roc_auc), fmt(baseline.roc_auc)]);
                table.add_row(["PR AUC".to_owned(), fmt(model_metrics.pr_auc), fmt(baseline.pr_auc)]);
                table.add_row(["log loss".to_owned(), fmt(Some(model_metrics.log_loss)), fmt(Some(baseline.log_loss))]);
                table.add_row(["Brier".to_owned(), fmt(Some(model_metrics.brier)), fmt(Some(baseline.brier))]);
                out.push_str(&format!("{table}\n"));
                let mut calibration = Table::new();
                calibration.load_preset(UTF8_BORDERS_ONLY).set_header([
                    "bin",
                    "examples",
                    "mean predicted",
                    "observed",
                ]);
                for bin in &model_metrics.calibration {
                    calibration.add_row([
                        format!("{:.1}-{:.1}", bin.bin as f64 / 10.0, (bin.bin + 1) as f64 / 10.0),
                        bin.count.to_string(),
                        fmt(bin.mean_predicted),
                        fmt(bin.observed_rate),
                    ]);
                }
                out.push_str(&format!("calibration (model)\n{calibration}\n"));
            }
        }
    }
    out
}

pub fn score_json(report: &ScoreReport) -> serde_json::Value {
    json!({
        "pipeline": report.pipeline.to_string(),
        "model_version": report.model_version,
        "scored": report.scored,
        "flagged": report.flagged,
        "failed": report.failed,
        "seconds": report.seconds,
    })
}

pub fn score_table(reports: &[ScoreReport]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(["pipeline", "model", "scored", "flagged", "failed", "seconds"]);
    for report in reports {
        let model = if report.model_version == 0 { "baseline".to_owned() } else { report.model_version.to_string() };
        table.add_row([
            report.pipeline.to_string(),
            model,
            report.scored.to_string(),
            report.flagged.to_string(),
            report.failed.to_string(),
            format!("{:.2}", report.seconds),
        ]);
    }
    table.to_string()
}
