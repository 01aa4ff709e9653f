//! The change feed's numbering under concurrent writers, and on PostgreSQL
//! the events a writer committed but did not live to number.

use std::collections::BTreeMap;

use funnel_domain::{Command, OpportunityId};
use funnel_store::{EventFilter, EventKind, EventRecord, Store, StoreOptions};
use funnel_testkit::{TestDatabase, backends};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::support::{command, new_opportunity, stage};

const WRITERS: usize = 8;
const MOVES_PER_WRITER: usize = 10;

async fn all_events_after(store: &Store, after: i64) -> Vec<EventRecord> {
    store.events_after(after, &EventFilter::default(), 10_000).await.expect("read the feed")
}

/// [`WRITERS`] at once each create an opportunity and move it
/// [`MOVES_PER_WRITER`] times; the opportunities' ids.
async fn write_concurrently(store: &Store, title: &str) -> Vec<OpportunityId> {
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        let title = format!("{title} {writer}");
        writers.push(tokio::spawn(async move {
            let created = store.create_opportunity(new_opportunity(&title, None)).await?;
            for step in 0..MOVES_PER_WRITER {
                let to = if step % 2 == 0 { "qualified" } else { "prospect" };
                store.change_stage(created.id, command(Command::Move { to: stage(to) }, None, None)).await?;
            }
            Ok::<OpportunityId, funnel_store::StoreError>(created.id)
        }));
    }
    let mut ids = Vec::new();
    for writer in writers {
        ids.push(writer.await.expect("no panic").expect("every write succeeds"));
    }
    ids
}

async fn pending_count(store: &Store) -> i64 {
    let count = Statement::from_string(DbBackend::Postgres, "SELECT count(*) AS pending FROM pending_events");
    let row = store.connection().query_one_raw(count).await.expect("count pending events").expect("one row");
    row.try_get("", "pending").expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_gap_free_numbers_in_each_opportunitys_order() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let before = store.last_event_sequence().await.expect("last sequence");
        let ids = write_concurrently(&store, "feed").await;

        // Every write has returned, so every event is committed, and reading numbers it.
        let events = all_events_after(&store, before).await;
        let expected = (WRITERS * (1 + MOVES_PER_WRITER)) as i64;
        let sequences: Vec<i64> = events.iter().map(|event| event.sequence).collect();
        assert_eq!(sequences, (before + 1..=before + expected).collect::<Vec<_>>(), "gap-free, each once");
        assert_eq!(store.last_event_sequence().await.expect("last sequence"), before + expected);

        let mut kinds: BTreeMap<OpportunityId, Vec<EventKind>> = BTreeMap::new();
        for event in &events {
            kinds.entry(event.opportunity_id.expect("an opportunity's event")).or_default().push(event.kind);
        }
        let mut one_opportunity = vec![EventKind::OpportunityCreated];
        for step in 0..MOVES_PER_WRITER {
            one_opportunity.push(if step % 2 == 0 {
                EventKind::OpportunityAdvanced
            } else {
                EventKind::OpportunityMovedBack
            });
        }
        for id in &ids {
            assert_eq!(kinds[id], one_opportunity, "{id}: its events in the order of its changes");
        }
        if database.url().starts_with("postgres") {
            assert_eq!(pending_count(&store).await, 0, "nothing left unnumbered");
        }
    }
}

/// Writers do not wait for their events' round, but ask for one: with
/// nobody reading the feed, every event still gets its number soon after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_writes_are_numbered_without_a_reader() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let store = database.store().await;
    let before = store.last_event_sequence().await.expect("last sequence");
    write_concurrently(&store, "unread").await;
    let expected = before + (WRITERS * (1 + MOVES_PER_WRITER)) as i64;
    let counter = Statement::from_string(DbBackend::Postgres, "SELECT value FROM event_counter WHERE id = 1");
    let mut numbered = 0;
    for _ in 0..200 {
        let row = store.connection().query_one_raw(counter.clone()).await.expect("read").expect("a row");
        numbered = row.try_get::<i64>("", "value").expect("the counter");
        if numbered == expected && pending_count(&store).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("after 10 s the counter is at {numbered} of {expected}, {} pending", pending_count(&store).await);
}

/// What a writer that committed and then stopped leaves behind.
async fn leave_pending(store: &Store, title: &str) {
    let insert = format!(
        "INSERT INTO pending_events (event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
         VALUES ('pipeline_updated', 'sales', NULL, '{{\"note\": \"{title}\"}}', 1, 1)"
    );
    store.connection().execute_unprepared(&insert).await.expect("insert a pending event");
}

#[tokio::test]
async fn on_postgres_events_a_stopped_writer_left_are_numbered_at_start_up_by_a_watcher_the_next_write_or_a_reader() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let store = database.store().await;
    store.create_opportunity(new_opportunity("first", None)).await.expect("create");
    let first = store.last_event_sequence().await.expect("last sequence");

    leave_pending(&store, "orphan 1").await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(pending_count(&store).await, 1, "nothing numbers an orphan on its own");
    let restarted = Store::connect(database.url(), &StoreOptions::default()).await.expect("connect");
    restarted.migrate().await.expect("start-up");
    assert_eq!(pending_count(&store).await, 0, "numbered at start-up");
    let events = all_events_after(&store, first).await;
    assert_eq!(events.iter().map(|event| event.sequence).collect::<Vec<_>>(), vec![first + 1]);
    assert!(events[0].payload.contains("orphan 1"), "{:?}", events[0].payload);

    leave_pending(&store, "orphan 2").await;
    store.number_pending_events().await.expect("a watcher's poll");
    assert_eq!(store.last_event_sequence().await.expect("last sequence"), first + 2);

    leave_pending(&store, "orphan 3").await;
    let created = store.create_opportunity(new_opportunity("second", None)).await.expect("create");
    let events = all_events_after(&store, first + 2).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].payload.contains("orphan 3"), "the one committed first comes first: {events:?}");
    assert_eq!((events[1].kind, events[1].opportunity_id), (EventKind::OpportunityCreated, Some(created.id)));
    assert_eq!(events[1].sequence, first + 4);
    assert_eq!(pending_count(&store).await, 0);

    leave_pending(&store, "orphan 4").await;
    let events = all_events_after(&store, first + 4).await;
    assert_eq!(events.len(), 1, "a reader numbers what was committed before it: {events:?}");
    assert!(events[0].payload.contains("orphan 4"), "{events:?}");
}

#[tokio::test]
async fn on_postgres_a_failed_round_changes_nothing_and_leaves_its_connection_usable() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    database.store().await;
    // One connection, so the round and everything after share it.
    let options = StoreOptions { max_connections: 1, ..StoreOptions::default() };
    let store = Store::connect(database.url(), &options).await.expect("connect");
    let created = store.create_opportunity(new_opportunity("first", None)).await.expect("create");
    let last = store.last_event_sequence().await.expect("last sequence");

    // A row in the way of the next number makes the round's INSERT fail.
    let in_the_way = format!(
        "INSERT INTO events (sequence, event_type, pipeline, payload, occurred_at, recorded_at) \
         VALUES ({}, 'pipeline_updated', 'sales', '{{}}', 1, 1)",
        last + 1
    );
    store.connection().execute_unprepared(&in_the_way).await.expect("insert a row in the way");
    leave_pending(&store, "waiting").await;
    store.number_pending_events().await.expect_err("the round fails");
    store.last_event_sequence().await.expect_err("a reader cannot number the feed either");
    let counter = Statement::from_string(DbBackend::Postgres, "SELECT value FROM event_counter WHERE id = 1");
    let row = store.connection().query_one_raw(counter).await.expect("the connection still works").expect("a row");
    assert_eq!(row.try_get::<i64>("", "value").expect("the counter"), last, "the counter did not move");
    assert_eq!(pending_count(&store).await, 1, "the failed round moved nothing");
    store.get_opportunity(created.id).await.expect("the connection is not left in an aborted transaction");

    let remove = format!("DELETE FROM events WHERE sequence = {}", last + 1);
    store.connection().execute_unprepared(&remove).await.expect("remove the row in the way");
    store.number_pending_events().await.expect("the next round succeeds");
    let events = all_events_after(&store, last).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].payload.contains("waiting"), "{events:?}");
}

#[tokio::test]
async fn on_postgres_rounds_vacuum_the_pending_table_as_they_go() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let store = database.store().await;
    let last = store.last_event_sequence().await.expect("last sequence");
    let many = "INSERT INTO pending_events (event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
                SELECT 'pipeline_updated', 'sales', NULL, '{}', n, n FROM generate_series(1, 2500) AS n";
    store.connection().execute_unprepared(many).await.expect("leave 2,500 pending events");
    store.number_pending_events().await.expect("one round");
    assert_eq!(store.last_event_sequence().await.expect("last sequence"), last + 2500);
    let occurred: Vec<i64> =
        all_events_after(&store, last).await.iter().map(|event| event.occurred_at.timestamp_micros()).collect();
    assert_eq!(occurred, (1..=2500).collect::<Vec<_>>(), "numbered in the order they were inserted");

    // The vacuum runs in the background once 2,000 events have gone through.
    let vacuums = Statement::from_string(
        DbBackend::Postgres,
        "SELECT vacuum_count AS vacuums FROM pg_stat_user_tables WHERE relname = 'pending_events'",
    );
    let mut vacuumed = 0;
    for _ in 0..100 {
        let row = store.connection().query_one_raw(vacuums.clone()).await.expect("read statistics").expect("one row");
        vacuumed = row.try_get::<i64>("", "vacuums").expect("a count");
        if vacuumed > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(vacuumed > 0, "pending_events was not vacuumed within 10 s");
}

/// A VACUUM that cannot finish (here a lock holds it back; under load, its
/// wait to truncate did) must not be joined by another every 2,000 events,
/// each holding a pooled connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_rounds_never_queue_a_second_vacuum_behind_a_running_one() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let store = database.store().await;
    let blocker = store.connection().begin().await.expect("begin");
    // Conflicts with VACUUM, not with the inserts and deletes of rounds.
    blocker
        .execute_unprepared("LOCK TABLE pending_events IN SHARE UPDATE EXCLUSIVE MODE")
        .await
        .expect("hold VACUUM back");
    let vacuums = Statement::from_string(
        DbBackend::Postgres,
        "SELECT COUNT(*) AS vacuums FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'VACUUM%pending_events'",
    );
    let count_vacuums = || async {
        let row = store.connection().query_one_raw(vacuums.clone()).await.expect("activity").expect("one row");
        row.try_get::<i64>("", "vacuums").expect("a count")
    };
    let many = "INSERT INTO pending_events (event_type, pipeline, opportunity_id, payload, occurred_at, recorded_at) \
                SELECT 'pipeline_updated', 'sales', NULL, '{}', n, n FROM generate_series(1, 2500) AS n";
    for round in 0..4 {
        store.connection().execute_unprepared(many).await.expect("leave 2,500 pending events");
        store.number_pending_events().await.expect("a round");
        if round == 0 {
            for _ in 0..50 {
                if count_vacuums().await == 1 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(count_vacuums().await, 1, "one VACUUM waits; the later rounds started none");
    blocker.rollback().await.expect("let it run");
    for _ in 0..100 {
        if count_vacuums().await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the VACUUM did not finish once the lock was gone");
}
