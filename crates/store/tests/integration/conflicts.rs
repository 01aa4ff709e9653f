//! Optimistic concurrency: a stale version is a conflict, and of concurrent
//! writers with the same version exactly one wins.

use funnel_domain::{Command, StageDef};
use funnel_store::{Backend, Opportunity, OpportunityPatch, Store, StoreError, StoreOptions};
use funnel_testkit::{TestDatabase, backends};

use crate::support::{command, full_history, new_opportunity, sales, stage};

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_changes_nothing() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let created = store.create_opportunity(new_opportunity("versions", None)).await.expect("create");
        let moved = store
            .change_stage(created.id, command(Command::Move { to: stage("qualified") }, Some(created.version), None))
            .await
            .expect("move with the current version");
        assert_eq!(moved.version, created.version + 1);

        let stale = command(Command::Move { to: stage("committed") }, Some(created.version), None);
        let error = store.change_stage(created.id, stale).await.expect_err("stale version");
        assert!(
            matches!(error, StoreError::Conflict(ref message) if message.contains("changed since it was read")),
            "{error:?}"
        );
        let patch = OpportunityPatch { title: Some("renamed".to_owned()), ..OpportunityPatch::default() };
        let error =
            store.update_opportunity(created.id, patch, Some(created.version)).await.expect_err("stale version");
        assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");

        let current = store.get_opportunity(created.id).await.expect("get");
        assert_eq!(current, moved, "conflicting writes change nothing");
        assert_eq!(full_history(&store, created.id).await.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_changes_with_the_same_version_exactly_one_wins() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let created = store.create_opportunity(new_opportunity("race", None)).await.expect("create");
        let events_before = store.last_event_sequence().await.expect("sequence");
        let mut racers = Vec::new();
        for index in 0..8 {
            let store = store.clone();
            let target = if index % 2 == 0 { "qualified" } else { "committed" };
            let racing = command(Command::Move { to: stage(target) }, Some(created.version), None);
            racers.push(tokio::spawn(async move { store.change_stage(created.id, racing).await }));
        }
        let mut wins = 0;
        for racer in racers {
            match racer.await.expect("no panic") {
                Ok(_) => wins += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(other) => panic!("a losing writer is a conflict, not {other:?}"),
            }
        }
        assert_eq!(wins, 1);
        assert_eq!(full_history(&store, created.id).await.len(), 2, "one new history row");
        // Losers leave no event behind either, and take no sequence number.
        assert_eq!(store.last_event_sequence().await.expect("sequence"), events_before + 1, "one new event");
    }
}

/// Each store caches pipeline definitions by version; a second store (a
/// second replica) changing the stages must be seen by the first's next move.
#[tokio::test]
async fn a_stage_change_sees_stages_another_replica_changed_since_its_last_move() {
    for database in backends().await {
        println!("backend: {database}");
        let (first, second, created) = two_processes(&database, "replicas").await;
        first
            .change_stage(created.id, command(Command::Move { to: stage("qualified") }, None, None))
            .await
            .expect("a move caches the pipeline");

        let pipeline = second.get_pipeline(&sales()).await.expect("get");
        let mut stages = pipeline.def.stages().to_vec();
        stages.insert(
            2,
            StageDef { key: stage("negotiation"), display_name: "Negotiation".to_owned(), rot_after_days: None },
        );
        second.update_pipeline(&sales(), None, Some(stages), None).await.expect("add a stage");
        let moved = first
            .change_stage(created.id, command(Command::Move { to: stage("negotiation") }, None, None))
            .await
            .expect("the new stage is known to the first replica");
        assert_eq!(moved.state.stage, stage("negotiation"));

        let mut without = second.get_pipeline(&sales()).await.expect("get").def.stages().to_vec();
        without.retain(|stage| stage.key.as_str() != "committed");
        second.update_pipeline(&sales(), None, Some(without), None).await.expect("remove an empty stage");
        let error = first
            .change_stage(created.id, command(Command::Move { to: stage("committed") }, None, None))
            .await
            .expect_err("the removed stage is gone for the first replica too");
        assert!(matches!(error, StoreError::Domain(_)), "{error:?}");
    }
}

/// Two processes on one database (the service and a scorer on the default
/// SQLite file): a transaction that reads before it writes must wait for the
/// other process's writer, not fail with "database is locked" when the other
/// commits between its read and its write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_in_two_processes_on_one_database_wait_for_each_other() {
    for database in backends().await {
        println!("backend: {database}");
        let (first, second, created) = two_processes(&database, "shared").await;
        let mut writers = Vec::new();
        for index in 0..40 {
            let store = if index % 2 == 0 { first.clone() } else { second.clone() };
            writers.push(tokio::spawn(async move {
                let patch = OpportunityPatch { title: Some(format!("edit {index}")), ..OpportunityPatch::default() };
                store.update_opportunity(created.id, patch, None).await
            }));
        }
        let mut applied = 0;
        for writer in writers {
            match writer.await.expect("no panic") {
                Ok(_) => applied += 1,
                // PostgreSQL's writers do not queue: a lost race is retried by the caller.
                Err(StoreError::Conflict(_)) if first.backend() == Backend::Postgres => {}
                Err(other) => panic!("{database}: {other:?}"),
            }
        }
        if first.backend() == Backend::Sqlite {
            assert_eq!(applied, 40, "SQLite's writers queue, so every edit applies");
        }
        let current = second.get_opportunity(created.id).await.expect("get");
        assert_eq!(current.version, created.version + applied, "{database}: every edit applied once");
    }
}

/// Two stores on one database, as two processes (or replicas) would have,
/// and an opportunity created through the first.
async fn two_processes(database: &TestDatabase, title: &str) -> (Store, Store, Opportunity) {
    let first = database.store().await;
    let second = Store::connect(database.url(), &StoreOptions::default()).await.expect("a second process");
    let created = first.create_opportunity(new_opportunity(title, None)).await.expect("create");
    (first, second, created)
}

/// A move takes the row without waiting when it can; when another
/// transaction holds the row, it waits for it (inside a transaction of its
/// own) and then lands, or is a conflict if the holder changed the row
/// since the version the move was made for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_move_waits_for_a_row_another_transaction_holds() {
    use sea_orm::sqlx::{self, AssertSqlSafe, Connection, postgres::PgConnection};

    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    let store = database.store().await;
    for holder_changes_the_row in [false, true] {
        let created = store.create_opportunity(new_opportunity("held", None)).await.expect("create");
        let mut other = PgConnection::connect(database.url()).await.expect("a second session");
        let hold = if holder_changes_the_row {
            format!("BEGIN; UPDATE opportunities SET version = version + 1 WHERE id = '{}'", created.id)
        } else {
            format!("BEGIN; SELECT 1 FROM opportunities WHERE id = '{}' FOR UPDATE", created.id)
        };
        sqlx::raw_sql(AssertSqlSafe(hold)).execute(&mut other).await.expect("hold the row");

        let mover = store.clone();
        let (id, version) = (created.id, created.version);
        let moving = tokio::spawn(async move {
            mover.change_stage(id, command(Command::Move { to: stage("qualified") }, Some(version), None)).await
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!moving.is_finished(), "the move waits for the row instead of failing");
        assert_eq!(full_history(&store, created.id).await.len(), 1, "nothing is written while it waits");

        sqlx::raw_sql("COMMIT").execute(&mut other).await.expect("release the row");
        other.close().await.expect("close");
        let outcome = moving.await.expect("no panic");
        let history = full_history(&store, created.id).await;
        if holder_changes_the_row {
            assert!(matches!(outcome, Err(StoreError::Conflict(_))), "{outcome:?}");
            assert_eq!(history.len(), 1, "a lost race writes nothing");
        } else {
            let moved = outcome.expect("the move lands once the row is free");
            assert_eq!((moved.state.stage.as_str(), moved.version), ("qualified", created.version + 1));
            assert_eq!(history.len(), 2, "the move's history row");
        }
    }
}
