//! The model lifecycle through the API: retrain jobs, the activation gate,
//! rollback, and scores as of a past time.

use chrono::{Duration, Utc};
use funnel_proto::v1::{self as pb, scoring_service_client::ScoringServiceClient};
use funnel_scorer::{TrainOutcome, TrainSettings, run_job, score_pipeline, train_now};
use funnel_store::Trigger;
use funnel_testkit::{TestDatabase, TestServer};
use tonic::Code;

use crate::history::{import, known_history};
use crate::scoring::sales;

#[tokio::test]
async fn a_queued_retrain_is_claimed_run_and_reported_through_the_api() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    import(&mut server.client(), known_history(400, Utc::now()).0).await;
    let mut scoring = ScoringServiceClient::new(server.channel());

    let queued = scoring
        .trigger_retrain(pb::TriggerRetrainRequest { pipeline: "sales".into(), request_id: "nightly-1".into() })
        .await
        .expect("queue a retrain")
        .into_inner();
    assert_eq!(queued.state, pb::RetrainJobState::Queued as i32);
    assert_eq!(queued.trigger, pb::RetrainTrigger::Manual as i32);
    let again = scoring
        .trigger_retrain(pb::TriggerRetrainRequest { pipeline: "sales".into(), request_id: "nightly-1".into() })
        .await
        .expect("retry of the same request")
        .into_inner();
    assert_eq!(again.id, queued.id, "a retried request queues nothing new");

    let settings = TrainSettings::default();
    let job = store.claim_retrain_job(&settings.worker, settings.lease, 3).await.expect("claim").expect("a job");
    assert_eq!(job.id.to_string(), queued.id);
    run_job(&store, job, &settings).await.expect("the job runs");

    let finished = scoring
        .get_retrain_job(pb::GetRetrainJobRequest { id: queued.id.clone() })
        .await
        .expect("get job")
        .into_inner();
    assert_eq!(finished.state, pb::RetrainJobState::Succeeded as i32, "{}", finished.message);
    assert!(finished.model_version > 0);
    assert_eq!(finished.attempts, 1);
    let models = scoring.list_models(pb::ListModelsRequest::default()).await.expect("list").into_inner().models;
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].trigger, pb::RetrainTrigger::Manual as i32);

    let unknown = scoring
        .trigger_retrain(pb::TriggerRetrainRequest { pipeline: "nope".into(), request_id: String::new() })
        .await
        .expect_err("no such pipeline");
    assert_eq!(unknown.code(), Code::NotFound, "{}", unknown.message());
    let malformed = scoring.get_retrain_job(pb::GetRetrainJobRequest { id: "x".into() }).await.expect_err("bad id");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    server.shutdown().await;
}

#[tokio::test]
async fn the_gate_keeps_a_model_that_does_not_beat_the_active_one_as_a_candidate_and_ops_can_roll_back() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    import(&mut server.client(), known_history(400, Utc::now()).0).await;
    let mut scoring = ScoringServiceClient::new(server.channel());

    let first = train_now(&store, &sales(), Trigger::Manual, &TrainSettings::default()).await.expect("first run");
    let TrainOutcome::Registered { model: first, .. } = first.outcome else { panic!("a model") };
    assert_eq!(first.status, funnel_store::ModelStatus::Active);

    // Demanding a 0.5 AUC improvement over the active model: the gate must refuse.
    let strict = TrainSettings { auc_tolerance: -0.5, ..TrainSettings::default() };
    let second = train_now(&store, &sales(), Trigger::Schedule, &strict).await.expect("second run");
    let TrainOutcome::Registered { model: second, verdict, .. } = second.outcome else { panic!("a model") };
    assert!(!verdict.activate);
    assert_eq!(second.status, funnel_store::ModelStatus::Candidate);
    assert!(second.status_reason.contains(&format!("active model {}", first.version)), "{}", second.status_reason);

    // Ops activate the candidate, then roll back to the first model.
    let activated =
        scoring.activate_model(pb::ActivateModelRequest { version: second.version }).await.expect("activate");
    assert_eq!(activated.into_inner().status, pb::ModelStatus::Active as i32);
    let rolled_back = scoring
        .activate_model(pb::ActivateModelRequest { version: first.version })
        .await
        .expect("roll back")
        .into_inner();
    assert_eq!(rolled_back.status, pb::ModelStatus::Active as i32);
    let retired = scoring.get_model(pb::GetModelRequest { version: second.version }).await.expect("get").into_inner();
    assert_eq!(retired.status, pb::ModelStatus::Retired as i32);
    let report = score_pipeline(&store, &sales(), 500, Utc::now(), &|_| {}).await.expect("score");
    assert_eq!(report.model_version, first.version, "scoring uses the rolled-back model");

    let twice = scoring.activate_model(pb::ActivateModelRequest { version: first.version }).await.expect_err("already");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let missing = scoring.activate_model(pb::ActivateModelRequest { version: 999 }).await.expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    let zero = scoring.get_model(pb::GetModelRequest { version: 0 }).await.expect_err("zero");
    assert_eq!(zero.code(), Code::InvalidArgument);
    server.shutdown().await;
}

#[tokio::test]
async fn a_score_can_be_read_as_of_an_earlier_time() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    let now = Utc::now();
    import(&mut server.client(), known_history(300, now - Duration::hours(3)).0).await;
    train_now(&store, &sales(), Trigger::Manual, &TrainSettings::default()).await.expect("train");
    let earlier = now - Duration::hours(2);
    score_pipeline(&store, &sales(), 500, earlier, &|_| {}).await.expect("first scoring");
    score_pipeline(&store, &sales(), 500, now, &|_| {}).await.expect("second scoring");

    let mut scoring = ScoringServiceClient::new(server.channel());
    let some = scoring
        .list_lead_scores(pb::ListLeadScoresRequest { page_size: 1, ..Default::default() })
        .await
        .expect("list")
        .into_inner()
        .scores
        .remove(0);
    let at = |time: chrono::DateTime<Utc>| Some(prost_types::Timestamp { seconds: time.timestamp(), nanos: 0 });
    let latest = scoring
        .get_lead_score(pb::GetLeadScoreRequest { opportunity_id: some.opportunity_id.clone(), as_of: None })
        .await
        .expect("latest")
        .into_inner();
    let past = scoring
        .get_lead_score(pb::GetLeadScoreRequest {
            opportunity_id: some.opportunity_id.clone(),
            as_of: at(now - Duration::hours(1)),
        })
        .await
        .expect("as of an hour ago")
        .into_inner();
    assert_eq!(latest.scored_at.expect("time").seconds, now.timestamp());
    assert_eq!(past.scored_at.expect("time").seconds, earlier.timestamp());
    assert!(past.days_in_stage < latest.days_in_stage, "two hours less in stage then");
    let before_any = scoring
        .get_lead_score(pb::GetLeadScoreRequest {
            opportunity_id: some.opportunity_id,
            as_of: at(now - Duration::hours(5)),
        })
        .await
        .expect_err("no score that early");
    assert_eq!(before_any.code(), Code::NotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn past_max_examples_training_learns_from_a_sample_and_says_so() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    import(&mut server.client(), known_history(400, Utc::now()).0).await;
    let cap = 500;
    let settings =
        TrainSettings { params: funnel_scoring::TrainParams::default().max_examples(cap), ..TrainSettings::default() };
    let report = train_now(&store, &sales(), Trigger::Manual, &settings).await.expect("train");
    let TrainOutcome::Registered { model, trained, .. } = &report.outcome else { panic!("no model: {report:?}") };
    assert!(report.examples_seen > 2 * cap as u64, "only {} examples", report.examples_seen);
    assert_eq!(trained.counts.advanced + trained.counts.leaked, cap);
    assert_eq!((model.advanced_examples + model.leaked_examples) as usize, cap, "the stored model counts the sample");
    let table = funnel_scorer::report::train_table(&report);
    assert!(table.contains(&format!("(a uniform sample of {})", report.examples_seen)), "{table}");
    let json = funnel_scorer::report::train_json(&report);
    assert_eq!(json["run"]["examples_seen"], report.examples_seen);
    let mut scoring = ScoringServiceClient::new(server.channel());
    let stored =
        scoring.get_model(pb::GetModelRequest { version: model.version }).await.expect("get model").into_inner();
    assert_eq!(stored.examples_seen as u64, report.examples_seen, "the registry says it was a sample");
    assert_eq!(stored.advanced_examples + stored.leaked_examples, cap as i64);
    server.shutdown().await;
}
