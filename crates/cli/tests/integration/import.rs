use std::io::Write;
use std::path::PathBuf;

use funnel_cli::import::{ImportArgs, import};
use funnel_cli::simulate::{SimulateArgs, load_simulation, write_simulation};
use funnel_dataset::{SimulationConfig, load_crm};

use crate::support::TestServer;

fn simulation(opportunities: u64) -> SimulationConfig {
    SimulationConfig { seed: 7, opportunities, ..SimulationConfig::default() }
}

fn jsonl_args(path: PathBuf) -> ImportArgs {
    ImportArgs { file: Some(path), csv: None, crm: None, show: 20 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_load_imports_every_opportunity() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let report = load_simulation(&client, &simulation(300), 20, false).await.expect("simulation loads");
    assert_eq!((report.sent, report.imported, report.already_present, report.rejected), (300, 300, 0, 0));
    assert!(report.problems.is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_the_same_jsonl_twice_is_a_no_op_the_second_time() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("simulated.jsonl");
    write_simulation(&simulation(1_200), &path, false).expect("simulation writes");

    let first = import(&client, &jsonl_args(path.clone()), false).await.expect("first import runs");
    assert_eq!((first.imported, first.already_present, first.rejected), (1_200, 0, 0));
    assert_eq!(first.batches, 3, "1,200 records go in batches of 500");
    let second = import(&client, &jsonl_args(path), false).await.expect("second import runs");
    assert_eq!((second.imported, second.already_present, second.rejected), (0, 1_200, 0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_lines_and_rejected_records_are_reported_with_their_line() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let records: Vec<String> = funnel_dataset::simulate(&simulation(10))
        .expect("config is valid")
        .map(|record| serde_json::to_string(&record).expect("record serializes"))
        .collect();
    let mut unknown_stage = funnel_dataset::simulate(&simulation(10)).expect("config is valid").record(5);
    unknown_stage.history[0].stage = "nowhere".to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mixed.jsonl");
    let mut file = std::fs::File::create(&path).expect("file creates");
    // Line 1 good, 2 garbage, 3 blank, 4 an unknown stage, 5 good.
    let unknown_stage_line = serde_json::to_string(&unknown_stage).expect("record serializes");
    let lines = [records[0].as_str(), "{not json", "", unknown_stage_line.as_str(), records[1].as_str()];
    writeln!(file, "{}", lines.join("\n")).expect("file writes");

    let report = import(&client, &jsonl_args(path), false).await.expect("import runs");
    assert_eq!(report.imported, 2);
    assert_eq!(report.problems.len(), 1);
    assert_eq!((report.problems[0].line, report.problems[0].action.as_str()), (2, "skipped"));
    assert_eq!(report.rejections.len(), 1);
    let rejection = &report.rejections[0];
    assert_eq!(rejection.position, Some(4), "the rejection points at its line");
    assert_eq!(rejection.external_id, unknown_stage.external_id);
    assert!(rejection.field.starts_with("history"), "field names the history: {}", rejection.field);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crm_data_set_imports_8800_opportunities_with_every_problem_reported() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/crm-sales-opportunities"));
    if !dir.join("sales_pipeline.csv").exists() {
        eprintln!("skipped: the CRM data set is not at {}", dir.display());
        return;
    }
    let server = TestServer::start().await;
    let expected_problems = load_crm(&dir).expect("data set loads").problems.len();
    let dir_text = dir.display().to_string();

    let first = server.run_json(&["import", "--crm", &dir_text]).await;
    assert_eq!(first["imported"], 8_800);
    assert_eq!(first["rejected"], 0);
    assert_eq!(first["pipelines_created"], serde_json::json!(["crm"]));
    let problems = first["problems"].as_array().expect("problems is a list");
    assert_eq!(problems.len(), expected_problems, "every problem of the data set is reported");
    assert!(problems.iter().all(|problem| problem["line"].as_u64().is_some() && problem["reason"] != ""));

    let client = server.client().await;
    let crm_args = ImportArgs { file: None, csv: None, crm: Some(dir), show: 20 };
    let second = import(&client, &crm_args, false).await.expect("second import runs");
    assert_eq!((second.imported, second.already_present), (0, 8_800));
    assert!(second.pipelines_created.is_empty(), "the crm pipeline already exists");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_writes_the_import_format_and_reports_json() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("out.jsonl");
    let path_text = path.display().to_string();
    let written = server.run_json(&["simulate", "--seed", "3", "--opportunities", "25", "--out", &path_text]).await;
    assert_eq!(written["mode"], "written");
    assert_eq!(written["opportunities"], 25);
    let text = std::fs::read_to_string(&path).expect("output file reads");
    assert_eq!(text.lines().count(), 25);

    let loaded = server.run_json(&["simulate", "--seed", "3", "--opportunities", "25", "--load"]).await;
    assert_eq!(loaded["mode"], "loaded");
    assert_eq!(loaded["imported"], 25);
    let args =
        SimulateArgs { seed: 3, opportunities: 25, reps: 12, start: None, end: None, out: None, load: true, show: 20 };
    let again = funnel_cli::simulate::run(Some(&server.client().await), &args, false).await.expect("reload runs");
    let funnel_cli::simulate::SimulateReport::Loaded(again) = again else { panic!("--load loads") };
    assert_eq!((again.imported, again.already_present), (0, 25));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_variant_imports_like_json_lines() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let attribute_names = ["company_size", "industry", "product", "region"].map(str::to_owned).to_vec();
    let mut writer = funnel_dataset::create_csv_dir(dir.path(), attribute_names).expect("csv files create");
    writer.write_all(funnel_dataset::simulate(&simulation(40)).expect("config is valid")).expect("records write");
    writer.finish().expect("csv files flush");

    let csv_args = ImportArgs { file: None, csv: Some(dir.path().to_path_buf()), crm: None, show: 20 };
    let report = import(&server.client().await, &csv_args, false).await.expect("csv import runs");
    assert_eq!((report.imported, report.rejected, report.problems.len()), (40, 0, 0));
    server.shutdown().await;
}
