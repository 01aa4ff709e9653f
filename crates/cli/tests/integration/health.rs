//! `funnel health`, what container health checks run.

use funnel_cli::health::{HealthArgs, health};
use funnel_cli::{CliError, ConnectArgs};

use crate::support::TestServer;

fn ask(server: String, service: &str) -> (ConnectArgs, HealthArgs) {
    (ConnectArgs { server, ..ConnectArgs::default() }, HealthArgs { service: service.to_owned(), timeout_secs: 3 })
}

#[tokio::test]
async fn health_reports_serving_for_the_liveness_name() {
    let server = TestServer::start().await;
    let (connect, args) = ask(server.url(), funnel_pipeline::LIVENESS_SERVICE);
    let report = health(&connect, &args).await.expect("the server is alive");
    assert_eq!(report.status, "SERVING");
    server.shutdown().await;
}

#[tokio::test]
async fn health_of_an_unknown_service_is_an_error_naming_not_found() {
    let server = TestServer::start().await;
    let (connect, args) = ask(server.url(), "funnel.v1.Nope");
    let error = health(&connect, &args).await.expect_err("no such service");
    assert_eq!(error.code(), Some(tonic::Code::NotFound), "{error}");
    server.shutdown().await;
}

#[tokio::test]
async fn health_of_a_server_that_is_not_there_is_a_connection_error() {
    // Bound but not listening, and held: a freed port could be taken by
    // another test, or by this connection's own source port (a TCP
    // self-connect, seen once in CI as "UNKNOWN: transport error").
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let address = socket.local_addr().expect("address");
    let (connect, args) = ask(format!("http://{address}"), "");
    let error = health(&connect, &args).await.expect_err("nothing listens");
    assert!(matches!(error, CliError::Connect { .. }), "{error}");
    drop(socket);
}
