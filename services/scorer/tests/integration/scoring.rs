//! Train on a known structure, score, and read the result through gRPC.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use funnel_domain::{ActivityKind, PipelineName, Status};
use funnel_proto::v1::{self as pb, scoring_service_client::ScoringServiceClient};
use funnel_scorer::{TrainOutcome, TrainProgress, TrainSettings, convert, score_pipeline, train_now};
use funnel_scoring::{TrainedModel, activities_needed_since};
use funnel_store::{ActivitySpan, NewActivity, Store, Trigger};
use funnel_testkit::{TestDatabase, TestServer};

use crate::history::{import, known_history};

pub fn sales() -> PipelineName {
    PipelineName::parse("pipeline", "sales").expect("valid name")
}

#[tokio::test]
async fn the_model_learns_the_known_structure_and_flags_the_right_leads() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    let now = Utc::now();
    let (opportunities, truths) = known_history(900, now);
    import(&mut server.client(), opportunities).await;

    let report = train_now(&store, &sales(), Trigger::Manual, &TrainSettings::default()).await.expect("training runs");
    let TrainOutcome::Registered { model, trained, verdict } = report.outcome else {
        panic!("enough data for a model: {:?}", report.outcome);
    };
    assert!(verdict.activate, "a model of real structure passes the gate: {}", verdict.reason);
    let evaluation = trained.evaluation.as_ref().expect("held-out evaluation");
    let (model_auc, baseline_auc) =
        (evaluation.model.roc_auc.expect("model auc"), evaluation.baseline.roc_auc.expect("baseline auc"));
    assert!(model_auc > baseline_auc + 0.05, "model AUC {model_auc} clearly beats the stage baseline {baseline_auc}");

    touch_idle_leads_long_ago(&store, now).await;
    let scored = score_pipeline(&store, &sales(), 200, now, &|_| {}).await.expect("scoring runs");
    assert_eq!(scored.model_version, model.version);
    assert!(scored.scored > 50, "open leads were scored: {scored:?}");
    scores_match_the_whole_histories(&store, now, scored.scored).await;

    let mut scoring = ScoringServiceClient::new(server.channel());
    let flagged = scoring
        .list_lead_scores(pb::ListLeadScoresRequest { flagged_only: true, page_size: 1000, ..Default::default() })
        .await
        .expect("list flagged")
        .into_inner()
        .scores;
    assert!(!flagged.is_empty(), "some leads are flagged");
    let mut client = server.client();
    let truth_by_external: HashMap<&str, _> = truths.iter().map(|truth| (truth.external_id.as_str(), truth)).collect();
    let mut risky = 0;
    for score in &flagged {
        let opportunity = client
            .get_opportunity(pb::GetOpportunityRequest { id: score.opportunity_id.clone() })
            .await
            .expect("flagged opportunity exists")
            .into_inner();
        let truth = truth_by_external[opportunity.external_id.as_str()];
        if truth.cold_call || truth.idle {
            risky += 1;
        }
    }
    let share = risky as f64 / flagged.len() as f64;
    assert!(share >= 0.85, "flagged leads are the cold-call or idle ones: {risky} of {}", flagged.len());

    // Riskiest first, and the explanation names what the structure says.
    let probabilities: Vec<f64> = flagged.iter().map(|score| score.p_advance).collect();
    assert!(probabilities.windows(2).all(|pair| pair[0] <= pair[1]), "ordered by probability ascending");
    let explained = flagged.iter().filter(|score| {
        score.factors_down.iter().any(|factor| {
            factor.feature == "source=cold_call"
                || factor.feature.contains("activit")
                || factor.feature.contains("since")
        })
    });
    assert!(explained.count() * 10 >= flagged.len() * 9, "flagged leads are explained by source or inactivity");

    let detail =
        scoring.get_model(pb::GetModelRequest { version: model.version }).await.expect("get model").into_inner();
    assert_eq!(detail.status, pb::ModelStatus::Active as i32);
    let metrics = detail.metrics.expect("model metrics");
    let baseline = detail.baseline_metrics.expect("baseline metrics");
    assert!((metrics.roc_auc - model_auc).abs() < 1e-12 && metrics.roc_auc > baseline.roc_auc);
    assert_eq!(metrics.calibration.len(), 10);
    let cold_call = detail.coefficients.iter().find(|c| c.feature == "source=cold_call").expect("coefficient by name");
    assert!(cold_call.weight < 0.0, "cold calls lower the odds of advancing: {}", cold_call.weight);
    server.shutdown().await;
}

/// Logs two activities in the first hours of some open leads that had none
/// and are over 35 days old: only the latest one, before rescoring's window,
/// tells their idle time.
async fn touch_idle_leads_long_ago(store: &Store, now: DateTime<Utc>) {
    let open = store.history_batch(&sales(), Some(Status::Open), None, 1000, ActivitySpan::All).await.expect("read");
    let old_enough = now - Duration::days(35);
    let idle: Vec<_> = open
        .iter()
        .filter(|history| history.activities.is_empty() && history.opportunity.state.created_at < old_enough)
        .take(20)
        .collect();
    assert!(idle.len() >= 3, "the known history has old idle open leads: {}", idle.len());
    for history in idle {
        for hours in [1, 2] {
            let activity = NewActivity {
                opportunity_id: history.opportunity.id,
                kind: ActivityKind::Call,
                occurred_at: Some(history.opportunity.state.created_at + Duration::hours(hours)),
                actor: "rep".to_owned(),
                note: String::new(),
                request_id: None,
            };
            store.log_activity(activity).await.expect("log activity");
        }
    }
}

/// Rescoring reads only the activities a score looks at; every stored score
/// is still exactly what the whole history gives.
async fn scores_match_the_whole_histories(store: &Store, now: DateTime<Utc>, scored: u64) {
    let record = store.active_model(&sales()).await.expect("read model").expect("an active model");
    let model = TrainedModel::from_json(&record.body).expect("model body");
    let stages = convert::stages(&store.get_pipeline(&sales()).await.expect("pipeline").def);
    let since = activities_needed_since(now);
    let (mut checked, mut with_older_activities) = (0_u64, 0);
    let mut after = None;
    loop {
        let batch = store
            .history_batch(&sales(), Some(Status::Open), after, 100, ActivitySpan::All)
            .await
            .expect("history batch");
        let Some(last) = batch.last() else { break };
        after = Some(last.opportunity.id);
        for stored in batch {
            let id = stored.opportunity.id;
            with_older_activities += usize::from(stored.activities.iter().filter(|(at, _)| *at < since).count() > 1);
            let want = funnel_scoring::score(&model, &convert::history(stored), &stages, now).expect("scores");
            let got = store.lead_score(id, None).await.expect("stored score");
            assert_eq!(got.p_advance, want.p_advance, "{id}");
            assert_eq!((got.days_in_stage, got.leak_flag), (want.days_in_stage, want.leak_flag), "{id}");
            let stored: Vec<(&str, &str, f64)> = (got.factors_down.iter().chain(&got.factors_up))
                .map(|factor| (factor.feature.as_str(), factor.value.as_str(), factor.contribution))
                .collect();
            let computed: Vec<(&str, &str, f64)> = (want.factors_down.iter().chain(&want.factors_up))
                .map(|factor| (factor.feature.as_str(), factor.value.as_str(), factor.contribution))
                .collect();
            assert_eq!(stored, computed, "{id}");
            checked += 1;
        }
    }
    assert_eq!(checked, scored, "every scored lead checked");
    assert!(with_older_activities > 0, "rescoring had activities to leave out: {with_older_activities}");
}

#[tokio::test]
async fn with_too_little_history_leads_get_the_stage_baseline_marked_insufficient_data() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    let now = Utc::now();
    let (opportunities, _) = known_history(30, now);
    import(&mut server.client(), opportunities).await;

    let report = train_now(&store, &sales(), Trigger::Manual, &TrainSettings::default()).await.expect("training runs");
    assert!(matches!(report.outcome, TrainOutcome::InsufficientData { .. }), "{:?}", report.outcome);
    assert_eq!(report.job.state, funnel_store::JobState::Succeeded);
    assert!(report.job.message.contains("insufficient data"), "{}", report.job.message);

    let scored = score_pipeline(&store, &sales(), 100, now, &|_| {}).await.expect("scoring runs");
    assert_eq!(scored.model_version, 0, "no model: the stage baseline scores");
    let mut scoring = ScoringServiceClient::new(server.channel());
    let scores = scoring
        .list_lead_scores(pb::ListLeadScoresRequest { pipeline: "sales".into(), ..Default::default() })
        .await
        .expect("list scores")
        .into_inner()
        .scores;
    assert!(!scores.is_empty());
    for score in &scores {
        assert_eq!(score.model_version, 0);
        assert!(score.reason_codes.iter().any(|code| code == "INSUFFICIENT_DATA"), "{:?}", score.reason_codes);
        assert!(score.p_advance > 0.0 && score.p_advance < 1.0);
    }
    server.shutdown().await;
}

/// `funnel-scorer train` draws its bar from these reports: every batch read,
/// then the fit, with the counts the run reports.
#[tokio::test]
async fn training_reports_its_progress_batch_by_batch_then_the_fit() {
    let database = TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    import(&mut server.client(), known_history(300, Utc::now()).0).await;

    let seen = std::sync::Mutex::new(Vec::new());
    let settings = TrainSettings { batch_size: 100, ..TrainSettings::default() };
    let report = funnel_scorer::train_now_with_progress(&store, &sales(), Trigger::Manual, &settings, &|progress| {
        seen.lock().expect("not poisoned").push(progress)
    })
    .await
    .expect("training runs");
    let TrainOutcome::Registered { trained, .. } = report.outcome else {
        panic!("enough data for a model: {:?}", report.outcome);
    };
    let examples = (trained.counts.advanced + trained.counts.leaked) as u64;
    let seen = seen.into_inner().expect("not poisoned");
    assert_eq!(
        seen,
        [
            TrainProgress::Reading { read: 100 },
            TrainProgress::Reading { read: 200 },
            TrainProgress::Reading { read: 300 },
            TrainProgress::Fitting { examples },
        ]
    );
    assert_eq!(report.opportunities, 300);
    server.shutdown().await;
}
