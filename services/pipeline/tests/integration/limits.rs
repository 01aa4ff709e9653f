//! Staying up under load: deadlines cancel database work, the concurrency
//! limit sheds at once, oversized messages are refused. The database is
//! made slow on purpose: on SQLite by holding its write lock from a
//! connection of the test's, so that writes wait for it; on PostgreSQL by
//! holding a row lock, so that a request's transaction waits in the middle
//! of its work.

use std::time::{Duration, Instant};

use funnel_pipeline::{ServeOptions, ServerLimits};
use funnel_proto::v1 as pb;
use funnel_store::{Store, StoreOptions};
use funnel_testkit::{PIPELINE_SERVICE, TestDatabase, TestServer};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, PgConnection, SqliteConnection};
use tonic::{Code, Request};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{by, create, new_opportunity};

/// How long after the client's deadline the server's has surely passed too.
const SERVER_DEADLINE_MARGIN: Duration = Duration::from_millis(200);

/// A store with one pooled reader besides its writer, which requests wait for up to 10 s.
async fn store_with_one_connection(database: &TestDatabase) -> Store {
    let options =
        StoreOptions { max_connections: 1, acquire_timeout: Duration::from_secs(10), ..StoreOptions::default() };
    let store = Store::connect(database.url(), &options).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// Holds the SQLite file's write lock until the connection is dropped, as
/// another process writing would.
async fn hold_the_write_lock(database: &TestDatabase) -> SqliteConnection {
    let mut connection = SqliteConnection::connect(database.url()).await.expect("connect");
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut connection).await.expect("take the write lock");
    connection
}

fn with_limits(limits: ServerLimits) -> ServeOptions {
    ServeOptions::default().with_limits(limits)
}

async fn count_titled(client: &mut crate::support::Client, title: &str) -> usize {
    let request = pb::ListOpportunitiesRequest { page_size: 1000, ..Default::default() };
    let page = client.list_opportunities(request).await.expect("list opportunities").into_inner();
    page.opportunities.iter().filter(|opportunity| opportunity.title == title).count()
}

#[tokio::test]
async fn a_client_deadline_cancels_the_database_work_it_interrupts() {
    let database = TestDatabase::sqlite();
    let store = store_with_one_connection(&database).await;
    let server = TestServer::start_with(store.clone(), ServeOptions::default()).await;
    let mut client = server.client();
    let held = hold_the_write_lock(&database).await;

    let mut request = by("alice", new_opportunity("Deadline", "ana"));
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = client.create_opportunity(request).await.expect_err("the deadline passes first");
    let took = started.elapsed();
    // tonic answers an expired client deadline with CANCELLED; its client may also report DEADLINE_EXCEEDED.
    assert!(matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded), "{status:?}");
    assert!(took < Duration::from_secs(2), "answered after {took:?}, not at the 300 ms deadline");

    // The client gives up first; the server's copy of the deadline, started
    // when the request arrived, passes a moment later. Release after that.
    tokio::time::sleep(SERVER_DEADLINE_MARGIN).await;
    drop(held);
    assert_eq!(count_titled(&mut client, "Deadline").await, 0, "the interrupted create was not committed");
    client.create_opportunity(by("alice", new_opportunity("After", "ana"))).await.expect("the server carries on");
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_running_past_the_server_limit_is_deadline_exceeded() {
    let database = TestDatabase::sqlite();
    let store = store_with_one_connection(&database).await;
    let limits = ServerLimits { request_timeout: Duration::from_millis(400), ..ServerLimits::default() };
    let server = TestServer::start_with(store.clone(), with_limits(limits)).await;
    let mut client = server.client();
    let held = hold_the_write_lock(&database).await;

    let started = Instant::now();
    let result = client.create_opportunity(by("alice", new_opportunity("Slow", "ana"))).await;
    let took = started.elapsed();
    let status = result.expect_err("the server's limit passes first");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("limit"), "{:?}", status.message());
    assert!(took < Duration::from_secs(2), "answered after {took:?}");

    drop(held);
    assert_eq!(count_titled(&mut client, "Slow").await, 0, "the timed-out create was not committed");
    server.shutdown().await;
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_are_shed_at_once_and_health_still_answers() {
    let database = TestDatabase::sqlite();
    let store = store_with_one_connection(&database).await;
    let limits = ServerLimits { max_concurrent_requests: 2, ..ServerLimits::default() };
    let server = TestServer::start_with(store.clone(), with_limits(limits)).await;
    let held = hold_the_write_lock(&database).await;

    // Two writes wait for the connection and hold both permits; shed, they try again.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stuck = Vec::new();
    for title in ["Stuck 1", "Stuck 2"] {
        let mut client = server.client();
        stuck.push(tokio::spawn(async move {
            loop {
                match client.create_opportunity(by("alice", new_opportunity(title, "ana"))).await {
                    Err(status) if status.code() == Code::ResourceExhausted && Instant::now() < deadline => {}
                    other => return other.map(|_| ()),
                }
            }
        }));
    }
    // The probe is refused before it touches the database, so it holds a
    // permit for microseconds and never starves the writers of theirs.
    let mut client = server.client();
    let shed = loop {
        let probe = Request::new(pb::GetPipelineRequest { name: String::new() });
        let started = Instant::now();
        match client.get_pipeline(probe).await {
            Err(status) if status.code() == Code::ResourceExhausted => break (status, started.elapsed()),
            Err(status) if status.code() == Code::InvalidArgument && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => panic!("no request was shed while two were in flight: {other:?}"),
        }
    };
    let (status, took) = shed;
    assert!(status.message().contains("limit of 2 requests"), "{:?}", status.message());
    assert!(took < Duration::from_millis(500), "shedding took {took:?}: it must not queue");

    let health = HealthClient::new(server.channel())
        .check(HealthCheckRequest { service: PIPELINE_SERVICE.to_owned() })
        .await
        .expect("health is never shed")
        .into_inner();
    // Answered, not shed; SERVING or not depends on when the watcher last pinged.
    assert_ne!(health.status, ServingStatus::Unknown as i32);

    drop(held);
    for request in stuck {
        request.await.expect("the task does not panic").expect("the waiting writes complete");
    }
    client.get_pipeline(pb::GetPipelineRequest { name: "sales".to_owned() }).await.expect("permits are returned");
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_and_the_server_carries_on() {
    let database = TestDatabase::sqlite();
    let limits = ServerLimits { max_message_bytes: 64 * 1024, ..ServerLimits::default() };
    let server = TestServer::start_with(database.store().await, with_limits(limits)).await;
    let mut client = server.client();

    let mut oversized = new_opportunity("Big", "ana");
    oversized.note = "x".repeat(100 * 1024);
    let status = client.create_opportunity(Request::new(oversized)).await.expect_err("too large");
    assert!(matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted), "{status:?}");
    client.create_opportunity(by("alice", new_opportunity("Small", "ana"))).await.expect("a normal request works");
    server.shutdown().await;
}

#[tokio::test]
async fn on_postgres_a_client_deadline_rolls_back_a_transaction_waiting_in_the_middle() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let server = TestServer::start(database.store().await).await;
    let mut client = server.client();
    let opportunity = create(&mut client, "Locked", "ana").await;

    // Another session locks the row: the move's UPDATE waits on it, inside its transaction.
    let mut other = PgConnection::connect(database.url()).await.expect("a second session");
    let lock = format!("BEGIN; SELECT 1 FROM opportunities WHERE id = '{}' FOR UPDATE", opportunity.id);
    sqlx::raw_sql(AssertSqlSafe(lock)).execute(&mut other).await.expect("lock the row");
    let mut request = by(
        "alice",
        pb::MoveOpportunityRequest { id: opportunity.id.clone(), stage: "qualified".to_owned(), ..Default::default() },
    );
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = client.move_opportunity(request).await.expect_err("the deadline passes first");
    let took = started.elapsed();
    assert!(matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded), "{status:?}");
    assert!(took < Duration::from_secs(2), "answered after {took:?}");

    tokio::time::sleep(SERVER_DEADLINE_MARGIN).await;
    sqlx::raw_sql("COMMIT").execute(&mut other).await.expect("release the row");
    other.close().await.expect("close");
    let found = client.get_opportunity(pb::GetOpportunityRequest { id: opportunity.id.clone() }).await;
    let found = found.expect("get").into_inner();
    assert_eq!((found.stage.as_str(), found.etag.as_str()), ("prospect", "1"), "the interrupted move was rolled back");
    let moved = crate::support::move_to(&mut client, &opportunity.id, "qualified").await;
    assert_eq!(moved.etag, "2", "the row and the pool work after the cancellation");
    server.shutdown().await;
}
