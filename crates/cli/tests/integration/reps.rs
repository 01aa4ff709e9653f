use funnel_cli::opportunities::{ShowArgs, show};
use funnel_cli::simulate::load_simulation;
use funnel_dataset::SimulationConfig;

use crate::support::{TestServer, first_open_opportunity, stderr_text};

async fn server_with_leads() -> TestServer {
    let server = TestServer::start().await;
    let config = SimulationConfig { seed: 11, opportunities: 60, ..SimulationConfig::default() };
    load_simulation(&server.client().await, &config, 20, false).await.expect("simulation loads");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rep_commands_change_the_opportunity_and_show_tells_its_whole_story() {
    let server = server_with_leads().await;
    let opportunity = first_open_opportunity(&server.client().await, "sales").await;
    let id = opportunity.id.as_str();
    let target = if opportunity.stage == "prospect" { "qualified" } else { "prospect" };

    let logged = server.run_json(&["--actor", "alice", "log", id, "call", "--note", "left a voicemail"]).await;
    assert_eq!(logged["activity"]["kind"], "call");
    let moved = server.run_json(&["--actor", "alice", "move", id, target, "--note", "demo booked"]).await;
    assert_eq!((moved["action"].as_str(), moved["opportunity"]["stage"].as_str()), (Some("moved"), Some(target)));
    let leaked = server.run_json(&["--actor", "alice", "leak", id, "--reason", "no budget"]).await;
    assert_eq!(leaked["opportunity"]["status"], "leaked");
    assert_eq!(leaked["opportunity"]["leak_reason"], "no budget");
    let reopened = server.run_json(&["--actor", "alice", "reopen", id, "--stage", "committed"]).await;
    assert_eq!(
        (reopened["opportunity"]["status"].as_str(), reopened["opportunity"]["stage"].as_str()),
        (Some("open"), Some("committed"))
    );
    let won = server.run_json(&["--actor", "alice", "won", id]).await;
    assert_eq!(
        (won["opportunity"]["status"].as_str(), won["opportunity"]["stage"].as_str()),
        (Some("won"), Some("transacted"))
    );

    let shown = server.run_json(&["show", id]).await;
    let history = shown["history"].as_array().expect("history is a list");
    let kinds: Vec<&str> = history.iter().filter_map(|row| row["kind"].as_str()).collect();
    assert_eq!(kinds[kinds.len() - 3..], ["leaked", "reopened", "won"]);
    let last_four_actors: Vec<&str> =
        history[history.len() - 4..].iter().filter_map(|row| row["actor"].as_str()).collect();
    assert_eq!(last_four_actors, ["alice"; 4], "--actor is recorded in the history");
    let activities = shown["activities"].as_array().expect("activities is a list");
    assert!(activities.iter().any(|activity| activity["note"] == "left a voicemail" && activity["actor"] == "alice"));
    assert!(shown["score"].is_null(), "nothing is scored without a scorer");

    // The library gives the same view.
    let report = show(&server.client().await, &ShowArgs { id: id.to_owned() }).await.expect("show runs");
    assert_eq!(report.opportunity.status, "won");
    assert_eq!(report.history.len(), history.len());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_says_not_scored_yet_when_no_scorer_answers() {
    let server = server_with_leads().await;
    let opportunity = first_open_opportunity(&server.client().await, "sales").await;
    let output = server.run_cli(&["show", &opportunity.id]).await;
    assert!(output.status.success(), "{}", stderr_text(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("score: not scored yet"), "{text}");
    assert!(text.contains("history:") && text.contains(&opportunity.title), "{text}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_id_prints_invalid_argument_with_the_field_and_exits_non_zero() {
    let server = TestServer::start().await;
    let output = server.run_cli(&["move", "not-a-uuid", "qualified"]).await;
    assert!(!output.status.success());
    let stderr = stderr_text(&output);
    assert!(stderr.contains("INVALID_ARGUMENT"), "{stderr}");
    assert!(stderr.contains("field `id`"), "{stderr}");
    assert!(!stderr.contains("Status {"), "no Debug dump: {stderr}");

    let output = server.run_cli(&["--json", "show", "not-a-uuid"]).await;
    assert!(!output.status.success());
    let error: serde_json::Value = serde_json::from_slice(&output.stderr).expect("--json error parses");
    assert_eq!(error["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(error["error"]["fields"][0]["field"], "id");
    assert!(output.stdout.is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precondition_failure_is_reported_with_its_code_and_message() {
    let server = server_with_leads().await;
    let opportunity = first_open_opportunity(&server.client().await, "sales").await;
    let output = server.run_cli(&["reopen", &opportunity.id]).await;
    assert!(!output.status.success());
    let stderr = stderr_text(&output);
    assert!(stderr.contains("ReopenOpportunity failed with FAILED_PRECONDITION"), "{stderr}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_commands_answer_before_any_model_is_trained() {
    // With a scorer worker these would show scores and models; that test
    // waits for `services/scorer`. Here nothing is trained yet.
    let server = server_with_leads().await;
    let leads = server.run_json(&["leads", "--pipeline", "sales", "--flagged"]).await;
    assert_eq!(leads["leads"], serde_json::json!([]));
    let models = server.run_json(&["models"]).await;
    assert_eq!(models["models"], serde_json::json!([]));

    let missing = server.run_cli(&["model", "99"]).await;
    assert!(!missing.status.success());
    assert!(stderr_text(&missing).contains("GetModel failed with NOT_FOUND"), "{}", stderr_text(&missing));

    let queued = server.run_json(&["retrain", "--pipeline", "sales"]).await;
    assert_eq!((queued["job"]["state"].as_str(), queued["job"]["pipeline"].as_str()), (Some("queued"), Some("sales")));
    // No worker claims the job, so waiting gives up after the timeout.
    let waited = server.run_cli(&["retrain", "--wait", "--timeout", "1"]).await;
    assert!(!waited.status.success());
    assert!(stderr_text(&waited).contains("gave up after 1 s"), "{}", stderr_text(&waited));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_reported_without_a_trace() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port binds");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let binary = env!("CARGO_BIN_EXE_funnel");
    let server = format!("http://{address}");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary).args(["--server", &server, "show", "x"]).output().expect("funnel runs")
    })
    .await
    .expect("blocking task joins");
    assert!(!output.status.success());
    let stderr = stderr_text(&output);
    assert!(stderr.starts_with("error: cannot reach the funnel server"), "{stderr}");
}
