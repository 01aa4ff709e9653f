//! Bulk import: idempotent by (pipeline, external_id), and imported history
//! replays like recorded history.

use chrono::{Duration, SubsecRound, Utc};
use funnel_domain::{Status, replay};
use funnel_store::{ImportHistory, ImportRecord, OpportunityFilter};
use funnel_testkit::backends;

use crate::support::{full_history, sales};

fn history_entry(stage: &str, status: Status, days_ago: i64) -> ImportHistory {
    ImportHistory {
        stage: stage.to_owned(),
        status: Some(status),
        occurred_at: Some((Utc::now() - Duration::days(days_ago)).trunc_subsecs(0)),
        actor: "crm".to_owned(),
        reason: if status == Status::Leaked { "no budget".to_owned() } else { String::new() },
        note: String::new(),
    }
}

fn records() -> Vec<ImportRecord> {
    let record = |index: i64, external_id: &str, history: Vec<ImportHistory>| ImportRecord {
        index,
        pipeline: "sales".to_owned(),
        external_id: external_id.to_owned(),
        title: format!("imported {external_id}"),
        owner: "rep-1".to_owned(),
        history,
        ..ImportRecord::default()
    };
    vec![
        record(0, "a", vec![history_entry("prospect", Status::Open, 30), history_entry("transacted", Status::Won, 10)]),
        record(1, "b", vec![history_entry("prospect", Status::Open, 30), history_entry("prospect", Status::Leaked, 5)]),
        record(2, "c", vec![history_entry("qualified", Status::Open, 3)]),
        record(3, "bad", vec![history_entry("prospect", Status::Open, 3), history_entry("qualified", Status::Open, 9)]),
    ]
}

#[tokio::test]
async fn importing_the_same_batch_twice_is_a_no_op() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let batch = records();
        let first = store.import_batch(batch.clone()).await.expect("first import");
        assert_eq!((first.imported, first.already_present), (3, 0));
        assert_eq!(first.rejections.len(), 1);
        assert_eq!((first.rejections[0].index, first.rejections[0].field.as_str()), (3, "history[1].occurred_at"));

        let filter = OpportunityFilter { pipeline: Some(sales()), ..OpportunityFilter::default() };
        let before = store.list_opportunities(&filter, 100, "").await.expect("list");
        let second = store.import_batch(batch).await.expect("second import");
        assert_eq!((second.imported, second.already_present), (0, 3));
        assert_eq!(second.rejections, first.rejections, "the bad record is still reported");
        let after = store.list_opportunities(&filter, 100, "").await.expect("list");
        assert_eq!(after, before);

        for opportunity in &after.items {
            let history = full_history(&store, opportunity.id).await;
            assert_eq!(replay(&history).expect("imported history replays"), opportunity.state);
        }
    }
}

/// Two imports of the same records at once (a retried client, two loaders):
/// the unique key decides, so between them each record is imported once,
/// and neither fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_of_the_same_records_import_each_once_and_both_succeed() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let batch: Vec<ImportRecord> = (0..200)
            .map(|index| ImportRecord {
                index,
                pipeline: "sales".to_owned(),
                external_id: format!("same-{index}"),
                title: format!("concurrent {index}"),
                owner: "rep-1".to_owned(),
                history: vec![history_entry("prospect", Status::Open, 20), history_entry("qualified", Status::Open, 5)],
                ..ImportRecord::default()
            })
            .collect();
        let loaders: Vec<_> = (0..4)
            .map(|_| {
                let (store, batch) = (store.clone(), batch.clone());
                tokio::spawn(async move { store.import_batch(batch).await })
            })
            .collect();
        let (mut imported, mut already_present) = (0, 0);
        for loader in loaders {
            let outcome = loader.await.expect("no panic").expect("no loader fails");
            assert!(outcome.rejections.is_empty(), "{:?}", outcome.rejections);
            imported += outcome.imported;
            already_present += outcome.already_present;
        }
        assert_eq!((imported, already_present), (200, 600), "each record imported exactly once");

        let filter = OpportunityFilter { pipeline: Some(sales()), ..OpportunityFilter::default() };
        let listed = store.list_opportunities(&filter, 1000, "").await.expect("list");
        assert_eq!(listed.items.len(), 200);
        for opportunity in &listed.items {
            assert_eq!(full_history(&store, opportunity.id).await.len(), 2, "one history, not two");
        }
    }
}
