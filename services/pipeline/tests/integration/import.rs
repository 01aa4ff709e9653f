//! ImportOpportunities: streamed batches, per-record rejections, and
//! idempotence by (pipeline, external_id).

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use funnel_proto::v1::{self as pb, ActivityKind, OpportunityStatus, TransitionKind};

use crate::support::{Client, Running, ago, history, servers, timestamp};

/// One "now" for the whole file, so that the same day means the same instant.
static NOW: LazyLock<DateTime<Utc>> = LazyLock::new(|| ago(Duration::zero()));

fn days_ago(days: i64) -> prost_types::Timestamp {
    timestamp(*NOW - Duration::days(days))
}

fn entry(stage: &str, status: OpportunityStatus, days: i64) -> pb::ImportedHistoryEntry {
    pb::ImportedHistoryEntry {
        stage: stage.to_owned(),
        status: status as i32,
        occurred_at: Some(days_ago(days)),
        actor: "crm".to_owned(),
        ..Default::default()
    }
}

fn record(external_id: &str, history: Vec<pb::ImportedHistoryEntry>) -> pb::ImportedOpportunity {
    pb::ImportedOpportunity {
        pipeline: "sales".to_owned(),
        external_id: external_id.to_owned(),
        title: format!("imported {external_id}"),
        account: "Globex".to_owned(),
        owner: "rep-9".to_owned(),
        source: "import".to_owned(),
        history,
        ..Default::default()
    }
}

/// Two batches: five good records, four bad ones.
fn batches() -> Vec<pb::ImportOpportunitiesRequest> {
    use OpportunityStatus::{Leaked, Open, Won};
    let won =
        record("won-1", vec![entry("prospect", Open, 40), entry("qualified", Open, 30), entry("transacted", Won, 20)]);
    let leaked = pb::ImportedHistoryEntry { reason: "no budget".to_owned(), ..entry("qualified", Leaked, 10) };
    let leaked = record("leaked-1", vec![entry("prospect", Open, 40), entry("qualified", Open, 35), leaked]);
    let open = pb::ImportedOpportunity {
        activities: vec![pb::ImportedActivity {
            kind: ActivityKind::Call as i32,
            occurred_at: Some(days_ago(3)),
            actor: "rep-9".to_owned(),
            note: "intro call".to_owned(),
        }],
        ..record("open-1", vec![entry("prospect", Open, 5)])
    };
    let out_of_order = record("bad-order", vec![entry("prospect", Open, 10), entry("qualified", Open, 20)]);
    let unknown_stage = record("bad-stage", vec![entry("prospect", Open, 10), entry("demo", Open, 5)]);
    let first = pb::ImportOpportunitiesRequest { opportunities: vec![won, out_of_order, leaked, unknown_stage, open] };

    let bad_activity = pb::ImportedOpportunity {
        activities: vec![pb::ImportedActivity { kind: 42, ..Default::default() }],
        ..record("bad-activity", vec![entry("prospect", Open, 5)])
    };
    let no_external_id = record("", vec![entry("prospect", Open, 5)]);
    let second = pb::ImportOpportunitiesRequest {
        opportunities: vec![
            record("open-2", vec![entry("prospect", Open, 8)]),
            bad_activity,
            no_external_id,
            record("open-3", vec![entry("qualified", Open, 2)]),
        ],
    };
    vec![first, second]
}

async fn import(client: &mut Client, batches: Vec<pb::ImportOpportunitiesRequest>) -> pb::ImportOpportunitiesResponse {
    client.import_opportunities(tokio_stream::iter(batches)).await.expect("import stream").into_inner()
}

#[tokio::test]
async fn an_import_writes_good_records_and_reports_bad_ones_by_index_and_field() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let summary = import(&mut client, batches()).await;
        assert_eq!((summary.imported, summary.already_present, summary.batches), (5, 0, 2));
        let mut rejections: Vec<(i64, &str, &str)> = summary
            .rejections
            .iter()
            .map(|rejection| (rejection.index, rejection.external_id.as_str(), rejection.field.as_str()))
            .collect();
        rejections.sort();
        assert_eq!(
            rejections,
            [
                (1, "bad-order", "history[1].occurred_at"),
                (3, "bad-stage", "history[1].stage"),
                (6, "bad-activity", "activities[0].kind"),
                (7, "", "external_id"),
            ]
        );

        let listed = client
            .list_opportunities(pb::ListOpportunitiesRequest { owner: "rep-9".to_owned(), ..Default::default() })
            .await
            .expect("list")
            .into_inner()
            .opportunities;
        assert_eq!(listed.len(), 5);
        let won = listed.iter().find(|opportunity| opportunity.external_id == "won-1").expect("won-1 imported");
        assert_eq!((won.stage.as_str(), won.status), ("transacted", OpportunityStatus::Won as i32));
        assert_eq!(won.created_at, Some(days_ago(40)));
        assert_eq!(won.closed_at, Some(days_ago(20)));
        let kinds: Vec<i32> = history(&mut client, &won.id).await.iter().map(|row| row.kind).collect();
        let expected = [TransitionKind::Created, TransitionKind::Advanced, TransitionKind::Won];
        assert_eq!(kinds, expected.map(|kind| kind as i32));
        let leaked = listed.iter().find(|opportunity| opportunity.external_id == "leaked-1").expect("leaked-1");
        assert_eq!((leaked.status, leaked.leak_reason.as_str()), (OpportunityStatus::Leaked as i32, "no budget"));
        let open = listed.iter().find(|opportunity| opportunity.external_id == "open-1").expect("open-1");
        let activities = client
            .list_activities(pb::ListActivitiesRequest { opportunity_id: open.id.clone(), ..Default::default() })
            .await
            .expect("activities")
            .into_inner()
            .activities;
        assert_eq!(activities.len(), 1);
        assert_eq!(activities[0].note, "intro call");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn importing_the_same_batches_twice_changes_nothing() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let first = import(&mut client, batches()).await;
        let before = client
            .list_opportunities(pb::ListOpportunitiesRequest::default())
            .await
            .expect("list")
            .into_inner()
            .opportunities;
        let second = import(&mut client, batches()).await;
        assert_eq!((second.imported, second.already_present), (0, first.imported));
        let after = client
            .list_opportunities(pb::ListOpportunitiesRequest::default())
            .await
            .expect("list")
            .into_inner()
            .opportunities;
        assert_eq!(after, before);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_import_refuses_oversized_batches_and_duplicate_external_ids() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let twice = pb::ImportOpportunitiesRequest {
            opportunities: vec![
                record("dup", vec![entry("prospect", OpportunityStatus::Open, 5)]),
                record("dup", vec![entry("prospect", OpportunityStatus::Open, 4)]),
            ],
        };
        let summary = import(&mut client, vec![twice]).await;
        assert_eq!(summary.imported, 1);
        assert_eq!(summary.rejections.len(), 1);
        assert_eq!((summary.rejections[0].index, summary.rejections[0].field.as_str()), (1, "external_id"));
        assert!(summary.rejections[0].reason.contains("appears twice in one batch"));

        let oversized = pb::ImportOpportunitiesRequest {
            opportunities: (0..1001)
                .map(|index| record(&format!("big-{index}"), vec![entry("prospect", OpportunityStatus::Open, 5)]))
                .collect(),
        };
        let result = client.import_opportunities(tokio_stream::iter(vec![oversized])).await;
        crate::support::expect_invalid(result, "opportunities", "at most 1000 per message, got 1001");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn an_import_rejects_records_with_unstorable_keys_without_failing_the_batch() {
    for Running { server, database } in servers().await {
        println!("backend: {database}");
        let mut client = server.client();
        let open = || vec![entry("prospect", OpportunityStatus::Open, 5)];
        let batch = pb::ImportOpportunitiesRequest {
            opportunities: vec![
                record("nul\0id", open()),
                pb::ImportedOpportunity { pipeline: "sa\0les".to_owned(), ..record("nul-pipeline", open()) },
                record("fine", open()),
            ],
        };
        let summary = import(&mut client, vec![batch]).await;
        assert_eq!(summary.imported, 1);
        let mut rejected: Vec<(i64, &str)> =
            summary.rejections.iter().map(|rejection| (rejection.index, rejection.field.as_str())).collect();
        rejected.sort();
        assert_eq!(rejected, [(0, "external_id"), (1, "pipeline")]);
        server.shutdown().await;
    }
}

/// A bulk import leaves the planner statistics of what it filled, even where
/// autovacuum is off (as on the machines these tests run on).
#[tokio::test]
async fn on_postgres_a_large_import_refreshes_the_planner_statistics() {
    let Some(database) = funnel_testkit::TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let store = database.store().await;
    let server = funnel_testkit::TestServer::start(store.clone()).await;
    let mut client = server.client();
    let records: Vec<pb::ImportedOpportunity> = (0..1_000)
        .map(|index| record(&format!("bulk-{index}"), vec![entry("prospect", OpportunityStatus::Open, 3)]))
        .collect();
    let summary = import(&mut client, vec![pb::ImportOpportunitiesRequest { opportunities: records }]).await;
    assert_eq!(summary.imported, 1_000);

    let analyzed = sea_orm::Statement::from_string(
        sea_orm::DbBackend::Postgres,
        "SELECT count(*) AS analyzed FROM pg_stat_user_tables \
         WHERE relname IN ('opportunities', 'transitions', 'activities') AND last_analyze IS NOT NULL",
    );
    let row = sea_orm::ConnectionTrait::query_one_raw(store.connection(), analyzed)
        .await
        .expect("read statistics")
        .expect("one row");
    assert_eq!(row.try_get::<i64>("", "analyzed").expect("a count"), 3, "all three tables analyzed");
    server.shutdown().await;
}
