//! A `TestServer` fixture and helpers to run the built `funnel` binary.

use std::process::Output;

use funnel_cli::{Client, ConnectArgs};
use funnel_proto::v1 as pb;
use funnel_testkit::TestDatabase;

/// The real pipeline service (`funnel_testkit::TestServer`) on a fresh
/// SQLite file, plus ways to run the `funnel` binary against it.
pub struct TestServer {
    server: funnel_testkit::TestServer,
    _database: TestDatabase,
}

impl TestServer {
    /// The pipeline service on an ephemeral port over a fresh SQLite file.
    pub async fn start() -> TestServer {
        let database = TestDatabase::sqlite();
        let server = funnel_testkit::TestServer::start(database.store().await).await;
        TestServer { server, _database: database }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    pub async fn client(&self) -> Client {
        self.client_as(None).await
    }

    pub async fn client_as(&self, actor: Option<&str>) -> Client {
        let args = ConnectArgs { server: self.url(), actor: actor.map(str::to_owned), ..ConnectArgs::default() };
        Client::connect(&args).await.expect("client connects to the test server")
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }

    /// Runs `funnel --server <this> ARGS...` and waits for it.
    pub async fn run_cli(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_funnel"));
        command.arg("--server").arg(self.url()).args(args).env_remove("FUNNEL_ACTOR");
        tokio::task::spawn_blocking(move || command.output().expect("funnel binary runs"))
            .await
            .expect("blocking task joins")
    }

    /// Runs the binary with `--json`, expects success and parses stdout.
    pub async fn run_json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let output = self.run_cli(&with_json).await;
        assert!(output.status.success(), "funnel {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("--json output parses")
    }
}

/// An open opportunity of a pipeline, as the service lists it.
pub async fn first_open_opportunity(client: &Client, pipeline: &str) -> pb::Opportunity {
    let request = pb::ListOpportunitiesRequest {
        pipeline: pipeline.to_owned(),
        status: pb::OpportunityStatus::Open as i32,
        page_size: 1,
        ..Default::default()
    };
    let response = client.pipeline().list_opportunities(request).await.expect("ListOpportunities answers");
    response.into_inner().opportunities.into_iter().next().expect("an open opportunity exists")
}

pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
