//! The `funnel` command with authentication on: `funnel token new` makes a
//! token the service accepts, and the CLI sends it (`--token` /
//! `FUNNEL_TOKEN`), so the server records its principal as the actor.

use std::process::Command;

use funnel_cli::{Client, ConnectArgs};
use funnel_pipeline::{Security, ServeOptions};
use funnel_proto::v1 as pb;
use funnel_store::Store;
use tokio::net::TcpListener;

fn funnel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(args)
        .env_remove("FUNNEL_TOKEN")
        .env_remove("FUNNEL_ACTOR")
        .output()
        .expect("funnel binary runs")
}

/// `funnel token new --json` for a rep: the token and its tokens-file line.
fn new_rep_token() -> (String, String) {
    let output = funnel(&["--json", "token", "new", "--name", "ana-rep", "--role", "rep", "--owner", "ana"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let made: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let token = made["token"].as_str().expect("a token").to_owned();
    let line = made["tokens_file_line"].as_str().expect("a line").to_owned();
    (token, line)
}

// Two threads: the `funnel` runs below block one while the server answers on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_its_token_and_the_server_records_the_principal() {
    let (token, line) = new_rep_token();
    let database_dir = tempfile::tempdir().expect("temp dir");
    let tokens_file = database_dir.path().join("tokens.jsonl");
    std::fs::write(&tokens_file, format!("{line}\n")).expect("write tokens file");
    let security = Security::load(Some(&tokens_file), None, None, false).expect("the made line loads");

    let url = format!("sqlite://{}/t.db?mode=rwc", database_dir.path().display());
    let store = Store::connect(&url, &Default::default()).await.expect("sqlite store connects");
    store.migrate().await.expect("migrations apply");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("ephemeral port binds");
    let server = format!("http://{}", listener.local_addr().expect("address"));
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions::default().with_security(security);
    tokio::spawn(funnel_pipeline::serve_with(listener, store, options, async {
        let _ = stopped.await;
    }));

    let args = ConnectArgs { server: server.clone(), token: Some(token.clone()), ..ConnectArgs::default() };
    let client = Client::connect(&args).await.expect("connects");
    let request = pb::CreateOpportunityRequest {
        pipeline: "sales".into(),
        title: "ACME".into(),
        owner: "ana".into(),
        ..Default::default()
    };
    let created = client.pipeline().create_opportunity(request).await.expect("a rep creates its own").into_inner();

    let with_token = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["--server", &server, "--json", "show", &created.id])
        .env("FUNNEL_TOKEN", &token)
        .output()
        .expect("funnel show runs");
    assert!(with_token.status.success(), "{}", String::from_utf8_lossy(&with_token.stderr));
    let shown = String::from_utf8_lossy(&with_token.stdout);
    assert!(shown.contains("\"ana-rep\""), "the principal is the actor: {shown}");

    let without_token = funnel(&["--server", &server, "show", &created.id]);
    assert!(!without_token.status.success());
    let stderr = String::from_utf8_lossy(&without_token.stderr).to_lowercase();
    assert!(stderr.contains("unauthenticated"), "{stderr}");
}

#[test]
fn token_hash_reads_the_token_from_standard_input() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_funnel"))
        .args(["token", "hash"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("funnel token hash runs");
    child.stdin.take().expect("stdin").write_all(b"abc\n").expect("write the token");
    let output = child.wait_with_output().expect("it finishes");
    assert!(output.status.success());
    // sha256("abc"), FIPS 180-2 appendix B.1.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
