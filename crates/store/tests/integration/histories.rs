//! The scorer's batched reads hand over each opportunity with exactly its
//! own history, in order, page after page.

use chrono::{Duration, SubsecRound, Utc};
use funnel_domain::{ActivityKind, Command, OpportunityId, Status};
use funnel_store::{ActivitySpan, NewActivity, OpportunityHistory, Store};
use funnel_testkit::backends;

use crate::support::{command, full_history, new_opportunity, sales, stage};

/// Every activity of `id`, in the order it occurred.
async fn all_activities(store: &Store, id: OpportunityId) -> Vec<(chrono::DateTime<Utc>, ActivityKind)> {
    let page = store.list_activities(id, 100, "").await.expect("list activities");
    assert!(page.next_page_token.is_empty(), "fits one page");
    page.items.into_iter().map(|activity| (activity.occurred_at, activity.kind)).collect()
}

/// Logs a `kind` activity on `id` at `at`.
async fn log(store: &Store, id: OpportunityId, kind: ActivityKind, at: chrono::DateTime<Utc>) {
    let activity = NewActivity {
        opportunity_id: id,
        kind,
        occurred_at: Some(at),
        actor: "tester".to_owned(),
        note: String::new(),
        request_id: None,
    };
    store.log_activity(activity).await.expect("log activity");
}

/// Every batch of `limit` after the one before, until a short one.
async fn batches(store: &Store, status: Option<Status>, limit: u64, span: ActivitySpan) -> Vec<OpportunityHistory> {
    let mut all: Vec<OpportunityHistory> = Vec::new();
    loop {
        let after = all.last().map(|last| last.opportunity.id);
        let batch = store.history_batch(&sales(), status, after, limit, span).await.expect("history batch");
        let short = (batch.len() as u64) < limit;
        all.extend(batch);
        if short {
            return all;
        }
    }
}

#[tokio::test]
async fn history_batches_hold_each_opportunitys_own_transitions_and_activities_in_order() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let start = (Utc::now() - Duration::days(90)).trunc_subsecs(0);
        let kinds = [ActivityKind::Call, ActivityKind::Email, ActivityKind::Meeting, ActivityKind::Note];
        let mut created = Vec::new();
        for n in 0..8i64 {
            let opportunity =
                store.create_opportunity(new_opportunity(&format!("lead {n}"), Some(start))).await.expect("create");
            // Different lengths of history, steps out of step between leads.
            for step in 0..n % 4 {
                let to = stage(["qualified", "committed", "prospect"][(step % 3) as usize]);
                let at = Some(start + Duration::days(step + 1) + Duration::hours(n));
                store.change_stage(opportunity.id, command(Command::Move { to }, None, at)).await.expect("move");
            }
            // Logged newest first: the batch must still come in time order.
            for k in (0..(n * 3) % 5).rev() {
                let at = start + Duration::days(k * 2) + Duration::minutes(n);
                log(&store, opportunity.id, kinds[((n + k) % 4) as usize], at).await;
            }
            if n % 3 == 2 {
                let leak = Command::Leak { reason: "went quiet".to_owned() };
                let at = Some(start + Duration::days(30));
                store.change_stage(opportunity.id, command(leak, None, at)).await.expect("leak");
            }
            created.push(opportunity.id);
        }

        let everyone = batches(&store, None, 3, ActivitySpan::All).await;
        assert_eq!(everyone.iter().map(|h| h.opportunity.id).collect::<Vec<_>>(), created, "all, in id order");
        for history in &everyone {
            let id = history.opportunity.id;
            assert_eq!(history.opportunity, store.get_opportunity(id).await.expect("get"), "{id}");
            assert_eq!(history.transitions, full_history(&store, id).await, "{id}: transitions in sequence");
            assert_eq!(history.activities, all_activities(&store, id).await, "{id}: activities in time order");
        }
        assert!(everyone.iter().any(|h| h.activities.len() >= 3) && everyone.iter().any(|h| h.transitions.len() >= 4));

        let open = batches(&store, Some(Status::Open), 2, ActivitySpan::All).await;
        let expected: Vec<_> = everyone.iter().filter(|h| h.opportunity.state.status == Status::Open).collect();
        assert_eq!(open.len(), expected.len());
        assert!(open.len() < everyone.len(), "some were leaked");
        for (got, want) in open.iter().zip(expected) {
            assert_eq!(got.opportunity.id, want.opportunity.id);
            assert_eq!((&got.transitions, &got.activities), (&want.transitions, &want.activities));
        }
    }
}

#[tokio::test]
async fn a_batch_since_a_moment_holds_the_activities_from_then_and_the_latest_before() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let start = (Utc::now() - Duration::days(200)).trunc_subsecs(0);
        let since = start + Duration::days(100);
        let mut created = Vec::new();
        // Lead n has activities every 20 days from day n, some logged out of
        // order; lead 0 has none, lead 1 only one long before, and lead 6
        // two long before, the earlier logged last: its latest comes from
        // its row, without a look at the activities.
        for n in 0..7i64 {
            let opportunity =
                store.create_opportunity(new_opportunity(&format!("lead {n}"), Some(start))).await.expect("create");
            let days: Vec<i64> = match n {
                0 => Vec::new(),
                1 => vec![5],
                6 => vec![30, 10],
                _ => (0..10).map(|k| n + k * 20).rev().collect(),
            };
            for day in days {
                log(&store, opportunity.id, ActivityKind::Call, start + Duration::days(day)).await;
            }
            created.push(opportunity.id);
        }
        // One right on the moment: it counts as from then.
        log(&store, created[1], ActivityKind::Email, since).await;

        let recent = batches(&store, None, 4, ActivitySpan::Since(since)).await;
        assert_eq!(recent.iter().map(|h| h.opportunity.id).collect::<Vec<_>>(), created);
        for history in &recent {
            let id = history.opportunity.id;
            let all = all_activities(&store, id).await;
            let from_then = all.iter().position(|(at, _)| *at >= since).unwrap_or(all.len());
            assert_eq!(history.activities, all[from_then..], "{id}");
            assert_eq!(history.earlier_activity_at, all[..from_then].last().map(|(at, _)| *at), "{id}");
            assert_eq!(history.transitions, full_history(&store, id).await, "{id}: every transition");
        }
        assert!(recent[0].activities.is_empty() && recent[0].earlier_activity_at.is_none());
        assert_eq!(recent[1].activities.len(), 1, "the one on the moment");
        assert_eq!(recent[1].earlier_activity_at, Some(start + Duration::days(5)));
        assert!(recent[2..6].iter().all(|h| h.activities.len() == 5), "the five from day 100");
        assert!(recent[6].activities.is_empty());
        assert_eq!(recent[6].earlier_activity_at, Some(start + Duration::days(30)), "the latest, not the last logged");
        let everything = batches(&store, None, 4, ActivitySpan::All).await;
        assert!(everything.iter().all(|h| h.earlier_activity_at.is_none()), "all of them are in the activities");
    }
}

/// m0009 backfills each opportunity's latest activity time, so that
/// rescoring right after the upgrade still sees activities logged before it.
#[tokio::test]
async fn the_latest_activity_is_backfilled_from_existing_activities() {
    use sea_orm::ConnectionTrait;

    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let start = (Utc::now() - Duration::days(200)).trunc_subsecs(0);
        let since = start + Duration::days(100);
        let (quiet, active) = (
            store.create_opportunity(new_opportunity("quiet", Some(start))).await.expect("create"),
            store.create_opportunity(new_opportunity("active", Some(start))).await.expect("create"),
        );
        for (id, day) in [(quiet.id, 40), (quiet.id, 20), (active.id, 30), (active.id, 150)] {
            log(&store, id, ActivityKind::Meeting, start + Duration::days(day)).await;
        }
        let db = store.connection();
        for statement in [
            "ALTER TABLE opportunities DROP COLUMN last_activity_at",
            "DELETE FROM seaql_migrations WHERE version = 'm0009_add_last_activity'",
        ] {
            db.execute_unprepared(statement).await.expect(statement);
        }
        store.migrate().await.expect("migrate again");

        let recent = batches(&store, None, 10, ActivitySpan::Since(since)).await;
        let of = |id: OpportunityId| recent.iter().find(|h| h.opportunity.id == id).expect("in the batch");
        assert!(of(quiet.id).activities.is_empty());
        assert_eq!(of(quiet.id).earlier_activity_at, Some(start + Duration::days(40)));
        assert_eq!(of(active.id).activities, [(start + Duration::days(150), ActivityKind::Meeting)]);
        assert_eq!(of(active.id).earlier_activity_at, Some(start + Duration::days(30)));
    }
}
