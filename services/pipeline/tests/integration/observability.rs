//! What ops see: the Prometheus endpoint counts real RPCs by method and
//! status code, and every response carries the request's id.

use funnel_pipeline::REQUEST_ID_METADATA;
use funnel_proto::v1 as pb;
use funnel_testkit::{TestDatabase, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;
use tonic::{Code, Request};
use tonic_reflection::pb::v1;

const PIPELINE_SERVICE: &str = r#"grpc_service="funnel.v1.PipelineService""#;

async fn sqlite_server() -> (TestServer, TestDatabase) {
    let database = TestDatabase::sqlite();
    let server = TestServer::start(database.store().await).await;
    (server, database)
}

/// Scrapes `/metrics` the way Prometheus does, over plain HTTP/1.1.
async fn scrape() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the metrics port");
    let address = listener.local_addr().expect("bound address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let endpoint =
        tokio::spawn(funnel_telemetry::serve_metrics(listener, funnel_pipeline::metrics::registry(), async {
            let _ = stopped.await;
        }));
    let mut stream = TcpStream::connect(address).await.expect("connect to the metrics port");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: funnel\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the scrape");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read the scrape");
    let _ = stop.send(());
    endpoint.await.expect("the endpoint task does not panic").expect("the endpoint stops cleanly");
    assert!(response.starts_with("HTTP/1.1 200"), "response: {response}");
    assert!(response.contains("text/plain; version=0.0.4"), "response: {response}");
    response
}

/// The value of the first sample whose line contains every one of `parts`.
fn sample(text: &str, parts: &[&str]) -> Option<f64> {
    let line = text.lines().find(|line| !line.starts_with('#') && parts.iter().all(|part| line.contains(part)))?;
    line.rsplit(' ').next()?.parse().ok()
}

#[tokio::test]
async fn the_metrics_endpoint_counts_rpcs_by_method_and_status_code() {
    let (server, _database) = sqlite_server().await;
    let mut client = server.client();
    client.get_pipeline(pb::GetPipelineRequest { name: "sales".to_owned() }).await.expect("the default pipeline");
    let missing = client
        .get_pipeline(pb::GetPipelineRequest { name: "nowhere".to_owned() })
        .await
        .expect_err("an unknown pipeline");
    assert_eq!(missing.code(), Code::NotFound);

    let text = scrape().await;
    let get_pipeline = r#"grpc_method="GetPipeline""#;
    let ok = sample(&text, &["grpc_server_handled_total{", r#"grpc_code="OK""#, get_pipeline, PIPELINE_SERVICE]);
    assert!(ok.is_some_and(|count| count >= 1.0), "no OK GetPipeline in:\n{text}");
    // An error answered in the headers alone (trailers-only) is counted too.
    let not_found =
        sample(&text, &["grpc_server_handled_total{", r#"grpc_code="NOT_FOUND""#, get_pipeline, PIPELINE_SERVICE]);
    assert!(not_found.is_some_and(|count| count >= 1.0), "no NOT_FOUND GetPipeline in:\n{text}");
    let started = sample(&text, &["grpc_server_started_total{", get_pipeline]);
    assert!(started.is_some_and(|count| count >= 2.0), "started:\n{text}");
    let timed = sample(&text, &["grpc_server_handling_seconds_count{", get_pipeline]);
    assert!(timed.is_some_and(|count| count >= 2.0), "latency histogram:\n{text}");
    assert!(sample(&text, &["funnel_db_pool_connections{", r#"state="idle""#]).is_some(), "pool:\n{text}");
    assert!(sample(&text, &["funnel_db_pool_max_connections"]).is_some(), "pool:\n{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_streaming_rpc_is_counted_when_its_stream_ends() {
    let (server, _database) = sqlite_server().await;
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(server.channel());
    let list = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        reflection.server_reflection_info(tokio_stream::once(list)).await.expect("reflection").into_inner();
    while let Some(response) = responses.next().await {
        response.expect("a successful response");
    }

    let text = scrape().await;
    let handled = sample(
        &text,
        &[
            "grpc_server_handled_total{",
            r#"grpc_code="OK""#,
            r#"grpc_method="ServerReflectionInfo""#,
            r#"grpc_service="grpc.reflection.v1.ServerReflection""#,
        ],
    );
    assert!(handled.is_some_and(|count| count >= 1.0), "no finished reflection stream in:\n{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_request_id_is_echoed_in_the_response_metadata() {
    let (server, _database) = sqlite_server().await;
    let mut client = server.client();

    let mut request = Request::new(pb::GetPipelineRequest { name: "sales".to_owned() });
    request.metadata_mut().insert(REQUEST_ID_METADATA, "checkout-7f3a".parse().expect("ascii"));
    let response = client.get_pipeline(request).await.expect("the default pipeline");
    assert_eq!(response.metadata().get(REQUEST_ID_METADATA).and_then(|id| id.to_str().ok()), Some("checkout-7f3a"));

    // Errors carry it as well, so a failed call can be found in the logs.
    let mut request = Request::new(pb::GetPipelineRequest { name: "nowhere".to_owned() });
    request.metadata_mut().insert(REQUEST_ID_METADATA, "checkout-7f3b".parse().expect("ascii"));
    let status = client.get_pipeline(request).await.expect_err("an unknown pipeline");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.metadata().get(REQUEST_ID_METADATA).and_then(|id| id.to_str().ok()), Some("checkout-7f3b"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_one() {
    let (server, _database) = sqlite_server().await;
    let mut client = server.client();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = client.get_pipeline(pb::GetPipelineRequest { name: "sales".to_owned() }).await.expect("get");
        let id = response.metadata().get(REQUEST_ID_METADATA).expect("a generated request id");
        ids.push(id.to_str().expect("ascii").to_owned());
    }
    assert_eq!(ids[0].len(), 32, "a simple uuid: {ids:?}");
    assert!(ids[0].chars().all(|character| character.is_ascii_hexdigit()), "{ids:?}");
    assert_ne!(ids[0], ids[1]);

    // One that cannot go into a log line verbatim is replaced.
    let mut request = Request::new(pb::GetPipelineRequest { name: "sales".to_owned() });
    request.metadata_mut().insert(REQUEST_ID_METADATA, "x".repeat(300).parse().expect("ascii"));
    let response = client.get_pipeline(request).await.expect("get");
    let id = response.metadata().get(REQUEST_ID_METADATA).expect("a request id");
    assert_eq!(id.len(), 32);
    server.shutdown().await;
}
