//! Who may do what, end to end: every RPC x every role x (own record,
//! someone else's record, no token, bad token), each with its exact status,
//! on a real server with tokens configured. The expected table is written
//! out here on its own, not read from the service's rules.

use chrono::Utc;
use funnel_domain::{OpportunityId, PipelineName};
use funnel_pipeline::auth::TokenHash;
use funnel_pipeline::{Security, ServeOptions};
use funnel_proto::v1::scoring_service_client::ScoringServiceClient;
use funnel_proto::v1::{self as pb, pipeline_service_client::PipelineServiceClient};
use funnel_store::{LeadScoreRecord, NewModel, Store, Trigger};
use funnel_testkit::{TestDatabase, TestServer};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::support::new_opportunity;

const REP_OWNER: &str = "ana";
const OTHER_OWNER: &str = "bob";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Service,
    Manager,
    Ops,
    Rep,
    NoToken,
    BadToken,
}

const CALLERS: [Caller; 6] =
    [Caller::Service, Caller::Manager, Caller::Ops, Caller::Rep, Caller::NoToken, Caller::BadToken];

impl Caller {
    fn token(self) -> Option<&'static str> {
        match self {
            Caller::Service => Some("tok-service"),
            Caller::Manager => Some("tok-manager"),
            Caller::Ops => Some("tok-ops"),
            Caller::Rep => Some("tok-rep-ana"),
            Caller::NoToken => None,
            Caller::BadToken => Some("tok-nobody-has-this"),
        }
    }

    /// The letter of the role in [`Rpc::allowed`].
    fn letter(self) -> char {
        match self {
            Caller::Service => 's',
            Caller::Manager => 'm',
            Caller::Ops => 'o',
            Caller::Rep => 'r',
            Caller::NoToken | Caller::BadToken => '-',
        }
    }
}

/// Whose record a call is about (for calls about no record, both are run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Own,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    CreatePipeline,
    GetPipeline,
    ListPipelines,
    UpdatePipeline,
    CreateOpportunity,
    GetOpportunity,
    ListOpportunities,
    UpdateOpportunity,
    MoveOpportunity,
    LeakOpportunity,
    ReopenOpportunity,
    LogActivity,
    ListActivities,
    ListStageHistory,
    ImportOpportunities,
    GetFunnelReport,
    GetMovementStats,
    WatchEvents,
    GetLeadScore,
    ListLeadScores,
    ListModels,
    GetModel,
    TriggerRetrain,
    GetRetrainJob,
    ActivateModel,
}

/// What a call is about, which decides what a rep gets for another's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// About one opportunity: another's is NOT_FOUND for a rep.
    Record,
    /// Creates for an owner: another owner is PERMISSION_DENIED for a rep.
    Create,
    /// Lists: narrowed for a rep, never refused.
    List,
    /// About no opportunity.
    Plain,
}

impl Rpc {
    const ALL: [Rpc; 25] = [
        Rpc::CreatePipeline,
        Rpc::GetPipeline,
        Rpc::ListPipelines,
        Rpc::UpdatePipeline,
        Rpc::CreateOpportunity,
        Rpc::GetOpportunity,
        Rpc::ListOpportunities,
        Rpc::UpdateOpportunity,
        Rpc::MoveOpportunity,
        Rpc::LeakOpportunity,
        Rpc::ReopenOpportunity,
        Rpc::LogActivity,
        Rpc::ListActivities,
        Rpc::ListStageHistory,
        Rpc::ImportOpportunities,
        Rpc::GetFunnelReport,
        Rpc::GetMovementStats,
        Rpc::WatchEvents,
        Rpc::GetLeadScore,
        Rpc::ListLeadScores,
        Rpc::ListModels,
        Rpc::GetModel,
        Rpc::TriggerRetrain,
        Rpc::GetRetrainJob,
        Rpc::ActivateModel,
    ];

    /// The roles table of the README: s(ervice) m(anager) o(ps) r(ep).
    fn allowed(self) -> &'static str {
        match self {
            Rpc::CreatePipeline | Rpc::UpdatePipeline | Rpc::ImportOpportunities => "s",
            Rpc::GetPipeline | Rpc::ListPipelines => "smor",
            Rpc::CreateOpportunity
            | Rpc::GetOpportunity
            | Rpc::ListOpportunities
            | Rpc::UpdateOpportunity
            | Rpc::MoveOpportunity
            | Rpc::LeakOpportunity
            | Rpc::ReopenOpportunity
            | Rpc::LogActivity
            | Rpc::ListActivities
            | Rpc::ListStageHistory
            | Rpc::GetLeadScore
            | Rpc::ListLeadScores => "smr",
            Rpc::GetFunnelReport | Rpc::GetMovementStats | Rpc::ListModels | Rpc::GetModel | Rpc::GetRetrainJob => {
                "smo"
            }
            Rpc::WatchEvents => "sm",
            Rpc::TriggerRetrain | Rpc::ActivateModel => "so",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Rpc::GetOpportunity
            | Rpc::UpdateOpportunity
            | Rpc::MoveOpportunity
            | Rpc::LeakOpportunity
            | Rpc::ReopenOpportunity
            | Rpc::LogActivity
            | Rpc::ListActivities
            | Rpc::ListStageHistory
            | Rpc::GetLeadScore => Kind::Record,
            Rpc::CreateOpportunity => Kind::Create,
            Rpc::ListOpportunities | Rpc::ListLeadScores => Kind::List,
            _ => Kind::Plain,
        }
    }

    fn expected(self, caller: Caller, target: Target) -> Code {
        if matches!(caller, Caller::NoToken | Caller::BadToken) {
            return Code::Unauthenticated;
        }
        if !self.allowed().contains(caller.letter()) {
            return Code::PermissionDenied;
        }
        match (caller, target, self.kind()) {
            (Caller::Rep, Target::Other, Kind::Record) => Code::NotFound,
            (Caller::Rep, Target::Other, Kind::Create) => Code::PermissionDenied,
            _ => Code::Ok,
        }
    }
}

/// A server with one token per role (the rep owns `ana`'s records).
pub(crate) async fn secured_server(database: &TestDatabase) -> TestServer {
    TestServer::start_with(database.store().await, ServeOptions::default().with_security(security())).await
}

pub(crate) fn security() -> Security {
    let entry = |name: &str, role: &str, owner: &str, caller: Caller| {
        let token = caller.token().expect("a role with a token");
        format!("{name}:{role}:{owner}:{}", TokenHash::of(token).to_hex())
    };
    let tokens = [
        entry("svc", "service", "", Caller::Service),
        entry("mia", "manager", "", Caller::Manager),
        entry("oscar", "ops", "", Caller::Ops),
        entry("ana-rep", "rep", REP_OWNER, Caller::Rep),
    ]
    .join(",");
    Security::load(None, Some(&tokens), None, false).expect("valid tokens")
}

fn as_caller<T>(caller: Caller, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = caller.token() {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    }
    request
}

/// Records made (as the service) for one case.
struct Fixture {
    own: String,
    other: String,
    /// Two candidates: activating one makes it active, so each target has its own.
    model_versions: [i64; 2],
    job_id: String,
}

impl Fixture {
    fn id(&self, target: Target) -> String {
        match target {
            Target::Own => self.own.clone(),
            Target::Other => self.other.clone(),
        }
    }

    fn model_version(&self, target: Target) -> i64 {
        match target {
            Target::Own => self.model_versions[0],
            Target::Other => self.model_versions[1],
        }
    }
}

struct Harness {
    pipeline: PipelineServiceClient<Channel>,
    scoring: ScoringServiceClient<Channel>,
    store: Store,
    cases: u32,
}

impl Harness {
    async fn prepare(&mut self, rpc: Rpc) -> Fixture {
        let own = self.create(REP_OWNER).await;
        let other = self.create(OTHER_OWNER).await;
        if rpc == Rpc::ReopenOpportunity {
            for id in [&own, &other] {
                let leak =
                    pb::LeakOpportunityRequest { id: id.clone(), reason: "no budget".into(), ..Default::default() };
                self.pipeline.leak_opportunity(as_caller(Caller::Service, leak)).await.expect("leak as service");
            }
        }
        if matches!(rpc, Rpc::GetLeadScore | Rpc::ListLeadScores) {
            let scores = [score(&own, REP_OWNER), score(&other, OTHER_OWNER)];
            self.store.write_scores(&scores).await.expect("write scores");
        }
        let mut model_versions = [0; 2];
        if matches!(rpc, Rpc::GetModel | Rpc::ActivateModel) {
            for version in &mut model_versions {
                *version = self.store.register_model(candidate_model(), None).await.expect("register a model").version;
            }
        }
        let mut job_id = String::new();
        if rpc == Rpc::GetRetrainJob {
            let trigger = pb::TriggerRetrainRequest { pipeline: "sales".into(), ..Default::default() };
            let job = self.scoring.trigger_retrain(as_caller(Caller::Service, trigger)).await.expect("queue a job");
            job_id = job.into_inner().id;
        }
        Fixture { own, other, model_versions, job_id }
    }

    async fn create(&mut self, owner: &str) -> String {
        let request = as_caller(Caller::Service, new_opportunity("matrix", owner));
        self.pipeline.create_opportunity(request).await.expect("create as service").into_inner().id
    }

    async fn call(&mut self, rpc: Rpc, caller: Caller, target: Target, fixture: &Fixture) -> Result<(), Status> {
        self.cases += 1;
        let id = fixture.id(target);
        let owner = match target {
            Target::Own => REP_OWNER,
            Target::Other => OTHER_OWNER,
        };
        let pipeline = &mut self.pipeline;
        let scoring = &mut self.scoring;
        match rpc {
            Rpc::CreatePipeline => {
                let stages = ["new", "won"].map(|key| pb::Stage { key: key.into(), ..Default::default() }).to_vec();
                let name = format!("matrix-{}", self.cases);
                let message = pb::CreatePipelineRequest { name, stages, ..Default::default() };
                pipeline.create_pipeline(as_caller(caller, message)).await.map(drop)
            }
            Rpc::GetPipeline => pipeline
                .get_pipeline(as_caller(caller, pb::GetPipelineRequest { name: "sales".into() }))
                .await
                .map(drop),
            Rpc::ListPipelines => {
                pipeline.list_pipelines(as_caller(caller, pb::ListPipelinesRequest::default())).await.map(drop)
            }
            Rpc::UpdatePipeline => {
                let message = pb::UpdatePipelineRequest {
                    name: "sales".into(),
                    display_name: "Sales".into(),
                    update_mask: Some(prost_types::FieldMask { paths: vec!["display_name".into()] }),
                    ..Default::default()
                };
                pipeline.update_pipeline(as_caller(caller, message)).await.map(drop)
            }
            Rpc::CreateOpportunity => {
                pipeline.create_opportunity(as_caller(caller, new_opportunity("new", owner))).await.map(drop)
            }
            Rpc::GetOpportunity => {
                pipeline.get_opportunity(as_caller(caller, pb::GetOpportunityRequest { id })).await.map(drop)
            }
            Rpc::ListOpportunities => {
                let owner = if target == Target::Own { String::new() } else { OTHER_OWNER.to_owned() };
                let message = pb::ListOpportunitiesRequest { owner, ..Default::default() };
                pipeline.list_opportunities(as_caller(caller, message)).await.map(drop)
            }
            Rpc::UpdateOpportunity => {
                let opportunity = pb::Opportunity { id, title: "renamed".into(), ..Default::default() };
                let update_mask = Some(prost_types::FieldMask { paths: vec!["title".into()] });
                let message = pb::UpdateOpportunityRequest { opportunity: Some(opportunity), update_mask };
                pipeline.update_opportunity(as_caller(caller, message)).await.map(drop)
            }
            Rpc::MoveOpportunity => {
                let message = pb::MoveOpportunityRequest { id, stage: "qualified".into(), ..Default::default() };
                pipeline.move_opportunity(as_caller(caller, message)).await.map(drop)
            }
            Rpc::LeakOpportunity => {
                let message = pb::LeakOpportunityRequest { id, reason: "no budget".into(), ..Default::default() };
                pipeline.leak_opportunity(as_caller(caller, message)).await.map(drop)
            }
            Rpc::ReopenOpportunity => pipeline
                .reopen_opportunity(as_caller(caller, pb::ReopenOpportunityRequest { id, ..Default::default() }))
                .await
                .map(drop),
            Rpc::LogActivity => {
                let kind = pb::ActivityKind::Call as i32;
                let message = pb::LogActivityRequest { opportunity_id: id, kind, ..Default::default() };
                pipeline.log_activity(as_caller(caller, message)).await.map(drop)
            }
            Rpc::ListActivities => {
                let message = pb::ListActivitiesRequest { opportunity_id: id, ..Default::default() };
                pipeline.list_activities(as_caller(caller, message)).await.map(drop)
            }
            Rpc::ListStageHistory => {
                let message = pb::ListStageHistoryRequest { opportunity_id: id, ..Default::default() };
                pipeline.list_stage_history(as_caller(caller, message)).await.map(drop)
            }
            Rpc::ImportOpportunities => {
                let record = pb::ImportedOpportunity {
                    pipeline: "sales".into(),
                    external_id: format!("matrix-import-{}", self.cases),
                    title: "imported".into(),
                    owner: owner.into(),
                    history: vec![pb::ImportedHistoryEntry {
                        stage: "prospect".into(),
                        status: pb::OpportunityStatus::Open as i32,
                        occurred_at: Some(funnel_now()),
                        actor: "crm".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let batch = pb::ImportOpportunitiesRequest { opportunities: vec![record] };
                let stream = tokio_stream::iter(vec![batch]);
                pipeline.import_opportunities(as_caller(caller, stream)).await.map(drop)
            }
            Rpc::GetFunnelReport => {
                let message = pb::GetFunnelReportRequest { pipeline: "sales".into(), ..Default::default() };
                pipeline.get_funnel_report(as_caller(caller, message)).await.map(drop)
            }
            Rpc::GetMovementStats => {
                let start = prost_types::Timestamp { seconds: funnel_now().seconds - 30 * 86_400, nanos: 0 };
                let (start, end) = (Some(start), Some(funnel_now()));
                let message =
                    pb::GetMovementStatsRequest { pipeline: "sales".into(), start, end, ..Default::default() };
                pipeline.get_movement_stats(as_caller(caller, message)).await.map(drop)
            }
            Rpc::WatchEvents => {
                let start = Some(pb::watch_events_request::Start::FromBeginning(true));
                let message = pb::WatchEventsRequest { start, ..Default::default() };
                // Headers arrive once the call is admitted; the stream is dropped.
                pipeline.watch_events(as_caller(caller, message)).await.map(drop)
            }
            Rpc::GetLeadScore => {
                let message = pb::GetLeadScoreRequest { opportunity_id: id, ..Default::default() };
                scoring.get_lead_score(as_caller(caller, message)).await.map(drop)
            }
            Rpc::ListLeadScores => {
                let owner = if target == Target::Own { String::new() } else { OTHER_OWNER.to_owned() };
                let message = pb::ListLeadScoresRequest { owner, ..Default::default() };
                scoring.list_lead_scores(as_caller(caller, message)).await.map(drop)
            }
            Rpc::ListModels => scoring.list_models(as_caller(caller, pb::ListModelsRequest::default())).await.map(drop),
            Rpc::GetModel => scoring
                .get_model(as_caller(caller, pb::GetModelRequest { version: fixture.model_version(target) }))
                .await
                .map(drop),
            Rpc::TriggerRetrain => {
                let message = pb::TriggerRetrainRequest { pipeline: "sales".into(), ..Default::default() };
                scoring.trigger_retrain(as_caller(caller, message)).await.map(drop)
            }
            Rpc::GetRetrainJob => scoring
                .get_retrain_job(as_caller(caller, pb::GetRetrainJobRequest { id: fixture.job_id.clone() }))
                .await
                .map(drop),
            Rpc::ActivateModel => {
                let message = pb::ActivateModelRequest { version: fixture.model_version(target) };
                scoring.activate_model(as_caller(caller, message)).await.map(drop)
            }
        }
    }
}

fn funnel_now() -> prost_types::Timestamp {
    let now = Utc::now() - chrono::Duration::seconds(5);
    prost_types::Timestamp { seconds: now.timestamp(), nanos: 0 }
}

fn score(id: &str, owner: &str) -> LeadScoreRecord {
    LeadScoreRecord {
        opportunity_id: OpportunityId::parse("id", id).expect("a service id"),
        pipeline: "sales".to_owned(),
        stage: "prospect".to_owned(),
        owner: owner.to_owned(),
        title: "matrix".to_owned(),
        model_version: 0,
        p_advance: 0.5,
        p_win: 0.2,
        leak_flag: false,
        reason_codes: vec![],
        factors_down: vec![],
        factors_up: vec![],
        days_in_stage: 1.0,
        scored_at: Utc::now(),
    }
}

fn candidate_model() -> NewModel {
    NewModel {
        pipeline: PipelineName::parse("pipeline", "sales").expect("a valid name"),
        trigger: Trigger::Manual,
        window_start: Utc::now() - chrono::Duration::days(30),
        window_end: Utc::now(),
        advanced_examples: 50,
        leaked_examples: 50,
        roc_auc: Some(0.7),
        baseline_roc_auc: Some(0.6),
        training_seconds: 0.1,
        body: String::new(),
        activate: false,
        status_reason: "matrix candidate".to_owned(),
    }
}

async fn harness(server: &TestServer, database: &TestDatabase) -> Harness {
    Harness {
        pipeline: server.client(),
        scoring: ScoringServiceClient::new(server.channel()),
        store: database.store().await,
        cases: 0,
    }
}

#[tokio::test]
async fn every_rpc_answers_every_role_with_the_exact_status() {
    let database = TestDatabase::sqlite();
    let server = secured_server(&database).await;
    let mut harness = harness(&server, &database).await;
    let mut mismatches = Vec::new();
    for rpc in Rpc::ALL {
        for caller in CALLERS {
            let fixture = harness.prepare(rpc).await;
            for target in [Target::Own, Target::Other] {
                let expected = rpc.expected(caller, target);
                let actual = match harness.call(rpc, caller, target, &fixture).await {
                    Ok(()) => Code::Ok,
                    Err(status) => status.code(),
                };
                if actual != expected {
                    mismatches
                        .push(format!("{rpc:?} as {caller:?} on {target:?}: expected {expected:?}, got {actual:?}"));
                }
            }
        }
    }
    assert_eq!(harness.cases, 25 * 6 * 2, "every case ran");
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        harness.cases,
        mismatches.join("\n")
    );
    server.shutdown().await;
}

/// Another's record and a missing one must be indistinguishable to a rep:
/// same code, same message (but for the id).
#[tokio::test]
async fn a_rep_cannot_tell_anothers_opportunity_from_a_missing_one() {
    let database = TestDatabase::sqlite();
    let server = secured_server(&database).await;
    let mut harness = harness(&server, &database).await;
    let missing = uuid::Uuid::now_v7().to_string();
    for rpc in Rpc::ALL.into_iter().filter(|rpc| rpc.kind() == Kind::Record) {
        let fixture = harness.prepare(rpc).await;
        let others = harness.call(rpc, Caller::Rep, Target::Other, &fixture).await.expect_err("hidden");
        let absent = Fixture { own: missing.clone(), ..fixture };
        // What the store itself says about a missing id, to anyone.
        let nobodys = harness.call(rpc, Caller::Service, Target::Own, &absent).await.expect_err("missing");
        assert_eq!(others.code(), nobodys.code(), "{rpc:?}");
        assert_eq!(
            others.message().replace(&absent.other, "<id>"),
            nobodys.message().replace(&missing, "<id>"),
            "{rpc:?}"
        );
        assert_eq!(others.details(), nobodys.details(), "{rpc:?}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_rep_lists_only_its_own_opportunities_and_scores() {
    let database = TestDatabase::sqlite();
    let server = secured_server(&database).await;
    let mut harness = harness(&server, &database).await;
    harness.prepare(Rpc::ListLeadScores).await;
    harness.prepare(Rpc::ListLeadScores).await;

    let listed = harness
        .pipeline
        .list_opportunities(as_caller(Caller::Rep, pb::ListOpportunitiesRequest::default()))
        .await
        .expect("list as rep")
        .into_inner();
    assert_eq!(listed.opportunities.len(), 2);
    assert!(listed.opportunities.iter().all(|opportunity| opportunity.owner == REP_OWNER));
    let asked_for_bob = pb::ListOpportunitiesRequest { owner: OTHER_OWNER.into(), ..Default::default() };
    let listed = harness.pipeline.list_opportunities(as_caller(Caller::Rep, asked_for_bob)).await.expect("list");
    assert!(listed.into_inner().opportunities.is_empty());

    let scores = harness
        .scoring
        .list_lead_scores(as_caller(Caller::Rep, pb::ListLeadScoresRequest::default()))
        .await
        .expect("scores as rep")
        .into_inner();
    assert_eq!(scores.scores.len(), 2);
    assert!(scores.scores.iter().all(|score| score.owner == REP_OWNER));
    let everyone = harness
        .scoring
        .list_lead_scores(as_caller(Caller::Manager, pb::ListLeadScoresRequest::default()))
        .await
        .expect("scores as manager");
    assert_eq!(everyone.into_inner().scores.len(), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn a_rep_cannot_hand_its_opportunity_to_someone_else() {
    let database = TestDatabase::sqlite();
    let server = secured_server(&database).await;
    let mut harness = harness(&server, &database).await;
    let fixture = harness.prepare(Rpc::UpdateOpportunity).await;
    let opportunity = pb::Opportunity { id: fixture.own, owner: OTHER_OWNER.into(), ..Default::default() };
    let update_mask = Some(prost_types::FieldMask { paths: vec!["owner".into()] });
    let message = pb::UpdateOpportunityRequest { opportunity: Some(opportunity), update_mask };
    let status = harness.pipeline.update_opportunity(as_caller(Caller::Rep, message)).await.expect_err("refused");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("only assign opportunities to itself"), "{}", status.message());
    server.shutdown().await;
}

#[tokio::test]
async fn the_principal_is_the_actor_whatever_the_metadata_says() {
    let database = TestDatabase::sqlite();
    let server = secured_server(&database).await;
    let mut harness = harness(&server, &database).await;
    let mut create = as_caller(Caller::Rep, new_opportunity("mine", REP_OWNER));
    create.metadata_mut().insert(funnel_pipeline::ACTOR_METADATA, "the-ceo".parse().expect("ascii"));
    let created = harness.pipeline.create_opportunity(create).await.expect("create as rep").into_inner();
    let moved = pb::MoveOpportunityRequest { id: created.id.clone(), stage: "qualified".into(), ..Default::default() };
    harness.pipeline.move_opportunity(as_caller(Caller::Manager, moved)).await.expect("move as manager");
    let activity = pb::LogActivityRequest {
        opportunity_id: created.id.clone(),
        kind: pb::ActivityKind::Call as i32,
        ..Default::default()
    };
    let logged = harness.pipeline.log_activity(as_caller(Caller::Rep, activity)).await.expect("log").into_inner();
    assert_eq!(logged.actor, "ana-rep");

    let history = pb::ListStageHistoryRequest { opportunity_id: created.id, ..Default::default() };
    let rows = harness.pipeline.list_stage_history(as_caller(Caller::Service, history)).await.expect("history");
    let actors: Vec<String> = rows.into_inner().transitions.into_iter().map(|row| row.actor).collect();
    assert_eq!(actors, ["ana-rep", "mia"]);
    server.shutdown().await;
}

#[tokio::test]
async fn health_answers_without_a_token_and_reflection_needs_one() {
    let database = TestDatabase::sqlite();
    let server = secured_server(&database).await;
    // TestServer::start_with waited on the health watch without a token.
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(server.channel());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let status = reflection.server_reflection_info(tokio_stream::iter(vec![request])).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "missing bearer token: send `authorization: Bearer <token>`");
    server.shutdown().await;
}
