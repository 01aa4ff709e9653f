//! Two workers against one database: they never train one pipeline at once,
//! and the job of a worker that died is taken over.

use std::time::Duration;

use chrono::Utc;
use funnel_scorer::{ScorerError, TrainSettings, run_job, train_now};
use funnel_store::{Store, StoreOptions, Trigger};
use funnel_testkit::{TestServer, backends};

use crate::history::{import, known_history};
use crate::scoring::sales;

fn worker(name: &str) -> TrainSettings {
    TrainSettings { worker: name.to_owned(), ..TrainSettings::default() }
}

async fn second_connection(url: &str) -> Store {
    Store::connect(url, &StoreOptions::default()).await.expect("a second worker connects")
}

#[tokio::test]
async fn two_workers_never_train_the_same_pipeline_at_once() {
    for database in backends().await {
        let store = database.store().await;
        let server = TestServer::start(store.clone()).await;
        import(&mut server.client(), known_history(300, Utc::now()).0).await;
        let other = second_connection(database.url()).await;

        let (pipeline, worker_a, worker_b) = (sales(), worker("worker-a"), worker("worker-b"));
        let (first, second) = tokio::join!(
            train_now(&store, &pipeline, Trigger::Manual, &worker_a),
            train_now(&other, &pipeline, Trigger::Manual, &worker_b),
        );
        let outcomes = [first, second];
        let trained = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let busy = outcomes.iter().filter(|outcome| matches!(outcome, Err(ScorerError::Busy(_)))).count();
        // Either one ran while the other found it busy, or they ran one after the other.
        assert!(trained >= 1 && trained + busy == 2, "{database}: {outcomes:?}");
        let models = store.list_models(None, 10, "").await.expect("list models").items;
        assert_eq!(models.len(), trained, "{database}: one model per run that trained");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_job_of_a_worker_that_stopped_is_taken_over_and_its_late_result_is_discarded() {
    for database in backends().await {
        let store = database.store().await;
        let server = TestServer::start(store.clone()).await;
        import(&mut server.client(), known_history(300, Utc::now()).0).await;
        let queued = store.queue_retrain(&sales(), Trigger::Manual, None).await.expect("queue");

        // Worker A claims with a lease that has already run out: as if it died.
        let dead = store.claim_retrain_job("worker-a", Duration::ZERO, 3).await.expect("claim").expect("job");
        assert_eq!(dead.id, queued.id);
        let other = second_connection(database.url()).await;
        let taken = other
            .claim_retrain_job("worker-b", Duration::from_secs(60), 3)
            .await
            .expect("claim")
            .expect("the abandoned job is requeued and claimed");
        assert_eq!(taken.id, queued.id);
        assert_eq!(taken.attempts, 2, "{database}");
        run_job(&other, taken, &worker("worker-b")).await.expect("worker B finishes it");

        // Worker A wakes up: its lease is gone, so it may not write a model.
        assert!(!store.heartbeat_job(queued.id, &sales(), "worker-a", Duration::from_secs(60)).await.expect("beat"));
        let job = store.get_retrain_job(queued.id).await.expect("job");
        assert_eq!(job.state, funnel_store::JobState::Succeeded, "{database}: {}", job.message);
        assert_eq!(store.list_models(None, 10, "").await.expect("models").items.len(), 1, "{database}");
        server.shutdown().await;
    }
}

/// The daemon deletes score history older than `score_history_days`.
#[tokio::test]
async fn the_daemon_prunes_score_history_past_its_retention() {
    use std::str::FromStr;

    let database = funnel_testkit::TestDatabase::sqlite();
    let store = database.store().await;
    let server = TestServer::start(store.clone()).await;
    let now = Utc::now();
    import(&mut server.client(), known_history(40, now - chrono::Duration::days(60)).0).await;
    let month_ago = now - chrono::Duration::days(30);
    funnel_scorer::score_pipeline(&store, &sales(), 500, month_ago, &|_| {}).await.expect("score a month ago");
    let scores = store.list_scores(&funnel_store::ScoreFilter::default(), 1, "").await.expect("list").items;
    let lead = scores.first().expect("a scored lead").opportunity_id;
    let old = now - chrono::Duration::days(29);
    store.lead_score(lead, Some(old)).await.expect("a score a month old, before the daemon");

    let config = funnel_scorer::WorkerConfig {
        train: worker("pruner"),
        train_schedule: cron::Schedule::from_str("0 0 3 * * *").expect("cron"),
        score_every: Duration::from_secs(300),
        retrain_after_outcomes: 0,
        poll_every: Duration::from_millis(50),
        score_history_days: 7,
    };
    let pruned = async {
        while store.lead_score(lead, Some(old)).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), funnel_scorer::run(store.clone(), config, pruned))
        .await
        .expect("pruned within a minute")
        .expect("the daemon runs");
    let current = store.lead_score(lead, None).await.expect("the current score stays");
    assert!(current.scored_at > now - chrono::Duration::minutes(5), "rescored by the daemon: {current:?}");
    server.shutdown().await;
}
