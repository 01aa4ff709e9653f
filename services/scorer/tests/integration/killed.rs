//! The scorer killed mid-run (its task aborted at various points): the
//! registry keeps exactly one active model and every model is whole, the
//! job and lease of the dead run are taken over by the next worker, and
//! scores are written in whole batches.

use std::time::{Duration, Instant};

use chrono::Utc;
use funnel_domain::Status;
use funnel_scorer::{TrainSettings, run_job, score_pipeline, train_now};
use funnel_scoring::TrainedModel;
use funnel_store::{ModelStatus, ScoreFilter, Store, Trigger};
use funnel_testkit::{TestServer, backends};

use crate::history::{import, known_history};
use crate::scoring::sales;

/// Abort points after the start of a run: before and during reading, during
/// training, around registration.
const ABORT_AFTER_MS: [u64; 4] = [0, 20, 100, 400];
/// The dead worker's lease; the next worker takes over once it has run out.
const SHORT_LEASE: Duration = Duration::from_millis(600);

fn worker(name: &str, lease: Duration) -> TrainSettings {
    TrainSettings { worker: name.to_owned(), lease, ..TrainSettings::default() }
}

/// Exactly one active model, and every model's body loads.
async fn assert_registry_whole(store: &Store, context: &str) -> usize {
    let models = store.list_models(None, 100, "").await.expect("list models").items;
    let active = models.iter().filter(|model| model.status == ModelStatus::Active).count();
    assert_eq!(active, 1, "{context}: exactly one active model among {}", models.len());
    for model in &models {
        let full = store.get_model(model.version).await.expect("get model");
        TrainedModel::from_json(&full.body)
            .unwrap_or_else(|error| panic!("{context}: model {} is torn: {error}", model.version));
    }
    models.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_killed_at_any_point_leaves_whole_models_and_its_job_is_taken_over() {
    for database in backends().await {
        let store = database.store().await;
        let server = TestServer::start(store.clone()).await;
        import(&mut server.client(), known_history(300, Utc::now()).0).await;
        let pipeline = sales();
        train_now(&store, &pipeline, Trigger::Manual, &worker("first", SHORT_LEASE)).await.expect("a first model");

        let mut taken_over = 0;
        for (run, abort_after) in ABORT_AFTER_MS.into_iter().enumerate() {
            let (task_store, task_pipeline) = (store.clone(), pipeline.clone());
            let settings = worker(&format!("killed-{run}"), SHORT_LEASE);
            let task = tokio::spawn(async move {
                train_now(&task_store, &task_pipeline, Trigger::Manual, &settings).await.map(|_| ())
            });
            tokio::time::sleep(Duration::from_millis(abort_after)).await;
            task.abort();
            let _ = task.await;
            assert_registry_whole(&store, &format!("{database}, aborted after {abort_after} ms")).await;

            // The dead worker's job comes back once its lease ran out, and the next worker finishes it.
            let started = Instant::now();
            let taker = worker("taker", Duration::from_secs(60));
            loop {
                let claimed = store.claim_retrain_job("taker", taker.lease, taker.max_attempts).await.expect("claim");
                match claimed {
                    Some(job) => {
                        taken_over += 1;
                        let report = run_job(&store, job, &taker).await.expect("the next worker finishes the job");
                        assert_eq!(report.job.state, funnel_store::JobState::Succeeded, "{database}");
                    }
                    None if started.elapsed() > SHORT_LEASE * 2 => break,
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            // And the pipeline's lease is free again: nothing of the dead run keeps renewing it.
            assert!(
                store.acquire_lease(&pipeline, "taker", taker.lease).await.expect("lease"),
                "{database}: still leased"
            );
            store.release_lease(&pipeline, "taker").await.expect("release");
        }
        let models = assert_registry_whole(&store, &format!("{database}, at the end")).await;
        println!(
            "{database}: {} aborted training runs, {taken_over} of their jobs finished by the next worker, \
             {models} whole models, one active",
            ABORT_AFTER_MS.len()
        );
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_killed_midway_writes_whole_batches_and_a_rerun_completes() {
    const BATCH: u64 = 10;
    for database in backends().await {
        let store = database.store().await;
        let server = TestServer::start(store.clone()).await;
        import(&mut server.client(), known_history(300, Utc::now()).0).await;
        let pipeline = sales();
        train_now(&store, &pipeline, Trigger::Manual, &worker("trainer", SHORT_LEASE)).await.expect("a model");
        let open = store.count_opportunities(&pipeline, Some(Status::Open)).await.expect("count") as usize;

        for abort_after in [0, 10, 30, 80] {
            let (task_store, task_pipeline) = (store.clone(), pipeline.clone());
            let task = tokio::spawn(async move {
                score_pipeline(&task_store, &task_pipeline, BATCH, Utc::now(), &|_| {}).await.map(|_| ())
            });
            tokio::time::sleep(Duration::from_millis(abort_after)).await;
            task.abort();
            let _ = task.await;
            let scored = store.list_scores(&ScoreFilter::default(), 1000, "").await.expect("scores").items.len();
            // Opportunities are scored in id order, one transaction per batch.
            assert!(
                scored % BATCH as usize == 0 || scored == open,
                "{database}: aborted after {abort_after} ms with {scored} scores, not whole batches of {BATCH}"
            );
        }
        let report = score_pipeline(&store, &pipeline, BATCH, Utc::now(), &|_| {}).await.expect("a full run");
        let scores = store.list_scores(&ScoreFilter::default(), 1000, "").await.expect("scores").items;
        assert_eq!(scores.len(), open, "{database}: every open lead is scored after the rerun");
        assert!(
            scores.iter().all(|score| score.model_version == report.model_version),
            "{database}: one model version"
        );
        server.shutdown().await;
    }
}
