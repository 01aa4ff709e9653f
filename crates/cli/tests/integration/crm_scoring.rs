//! The real CRM data set end to end: imported through the CLI, trained and
//! scored by the scorer, read back through the CLI. Whatever the data
//! supports, the registry must record it honestly: a model that does not beat
//! the stage baseline on held-out data stays a candidate.

use std::path::PathBuf;

use chrono::Utc;
use funnel_domain::PipelineName;
use funnel_scorer::{TrainOutcome, TrainSettings, score_pipeline, train_now};
use funnel_scoring::TrainParams;
use funnel_store::{ModelStatus, Trigger};
use funnel_testkit::{TestDatabase, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crm_data_set_trains_and_scores_and_the_registry_tells_the_truth_about_it() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/crm-sales-opportunities"));
    if !dir.join("sales_pipeline.csv").exists() {
        eprintln!("skipped: the CRM data set is not at {}", dir.display());
        return;
    }
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    let url = format!("http://{}", server.addr());
    let funnel = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_funnel"))
            .args(["--server", url.as_str(), "--json"])
            .args(args)
            .output()
            .expect("funnel runs");
        assert!(output.status.success(), "funnel {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("--json output parses")
    };
    let dir_text = dir.display().to_string();
    // The binary blocks; the server keeps running on the other worker thread.
    let imported = tokio::task::block_in_place(|| funnel(&["import", "--crm", &dir_text]));
    assert_eq!(imported["imported"], 8_800);

    let crm = PipelineName::parse("pipeline", "crm").expect("valid name");
    // One L2 weight and two snapshots per visit keep a debug-build test quick;
    // the registry's honesty does not depend on them.
    let params = TrainParams::default().alpha_grid(vec![1.0]).max_snapshots_per_visit(2);
    let settings = TrainSettings { params, ..TrainSettings::default() };
    let report = train_now(&store, &crm, Trigger::Manual, &settings).await.expect("training runs");
    let TrainOutcome::Registered { model, trained, verdict } = report.outcome else {
        panic!("8,800 opportunities are enough for a model: {:?}", report.outcome);
    };
    let evaluation = trained.evaluation.as_ref().expect("a held-out evaluation");
    let model_auc = evaluation.model.roc_auc.expect("model AUC");
    let baseline_auc = evaluation.baseline.roc_auc.expect("baseline AUC");
    // The gate's verdict follows from the numbers it recorded, whichever way they fall.
    assert_eq!(verdict.activate, model_auc >= baseline_auc, "{}", verdict.reason);
    assert_eq!(model.status == ModelStatus::Active, verdict.activate);
    assert_eq!(model.roc_auc, Some(model_auc));
    assert_eq!(model.baseline_roc_auc, Some(baseline_auc));
    eprintln!("crm: model AUC {model_auc:.4}, baseline {baseline_auc:.4}: {}", verdict.reason);

    let scored = score_pipeline(&store, &crm, 1_000, Utc::now(), &|_| {}).await.expect("scoring runs");
    assert_eq!(scored.failed, 0);
    assert_eq!(scored.scored, 1_589 + 500, "every open Engaging and Prospecting opportunity is scored");

    let models = tokio::task::block_in_place(|| funnel(&["models", "--pipeline", "crm"]));
    let listed = models.to_string();
    assert!(listed.contains(&format!("\"version\":{}", model.version)), "{listed}");
    let leads = tokio::task::block_in_place(|| funnel(&["leads", "--pipeline", "crm", "--flagged"]));
    // Open since 2017: every one is far past its stage's rot point.
    assert!(leads.to_string().contains("STALE_IN_STAGE"), "stale CRM leads are flagged: {leads}");
    server.shutdown().await;
}
