//! What every test needs: a server per backend, requests with an actor, and
//! assertions on statuses.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use funnel_pipeline::ACTOR_METADATA;
use funnel_proto::v1 as pb;
use funnel_proto::v1::pipeline_service_client::PipelineServiceClient;
use funnel_testkit::{TestDatabase, TestServer, backends};
use prost_types::Timestamp;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};
use tonic_types::StatusExt;

pub type Client = PipelineServiceClient<Channel>;

/// A server on a fresh database; the database outlives the server.
pub struct Running {
    pub server: TestServer,
    pub database: TestDatabase,
}

/// One running server per backend: SQLite, then PostgreSQL when configured.
pub async fn servers() -> Vec<Running> {
    let mut running = Vec::new();
    for database in backends().await {
        let server = TestServer::start(database.store().await).await;
        running.push(Running { server, database });
    }
    running
}

/// A request made by `actor` (the `x-funnel-actor` metadata).
pub fn by<T>(actor: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(ACTOR_METADATA, actor.parse().expect("test actors are ASCII"));
    request
}

/// A valid request for an opportunity in the default `sales` pipeline.
pub fn new_opportunity(title: &str, owner: &str) -> pb::CreateOpportunityRequest {
    pb::CreateOpportunityRequest {
        pipeline: "sales".to_owned(),
        title: title.to_owned(),
        account: "Acme".to_owned(),
        owner: owner.to_owned(),
        amount: Some(pb::Money { currency_code: "USD".to_owned(), amount_minor: 125_000 }),
        source: "referral".to_owned(),
        ..Default::default()
    }
}

pub async fn create(client: &mut Client, title: &str, owner: &str) -> pb::Opportunity {
    client
        .create_opportunity(by("alice", new_opportunity(title, owner)))
        .await
        .expect("create opportunity")
        .into_inner()
}

pub async fn move_to(client: &mut Client, id: &str, stage: &str) -> pb::Opportunity {
    let request = pb::MoveOpportunityRequest { id: id.to_owned(), stage: stage.to_owned(), ..Default::default() };
    client.move_opportunity(by("alice", request)).await.expect("move opportunity").into_inner()
}

/// Every history row, read page by page.
pub async fn history(client: &mut Client, id: &str) -> Vec<pb::StageTransition> {
    let mut rows = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListStageHistoryRequest { opportunity_id: id.to_owned(), page_size: 2, page_token };
        let page = client.list_stage_history(request).await.expect("list stage history").into_inner();
        rows.extend(page.transitions);
        if page.next_page_token.is_empty() {
            return rows;
        }
        page_token = page.next_page_token;
    }
}

/// A whole number of seconds ago: exact on every backend.
pub fn ago(duration: Duration) -> DateTime<Utc> {
    (Utc::now() - duration).trunc_subsecs(0)
}

pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}

/// Asserts the call failed with `code` and a message containing `message`.
#[track_caller]
pub fn expect_status<T: std::fmt::Debug>(result: Result<Response<T>, Status>, code: Code, message: &str) -> Status {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "unexpected code; message: {:?}", status.message());
    assert!(status.message().contains(message), "message {:?} does not contain {message:?}", status.message());
    status
}

/// Asserts INVALID_ARGUMENT naming `field`, in the message and in the
/// bad-request details.
#[track_caller]
pub fn expect_invalid<T: std::fmt::Debug>(result: Result<Response<T>, Status>, field: &str, message: &str) -> Status {
    let status = expect_status(result, Code::InvalidArgument, message);
    assert!(status.message().starts_with(&format!("{field}: ")), "message {:?} names no {field}", status.message());
    let details = status.get_details_bad_request().expect("INVALID_ARGUMENT carries bad-request details");
    let fields: Vec<&str> = details.field_violations.iter().map(|violation| violation.field.as_str()).collect();
    assert_eq!(fields, [field], "bad-request details name the field");
    status
}
