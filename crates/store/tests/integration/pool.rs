//! A pooled connection given back halfway, by a caller that gave up on a
//! query or dropped a transaction, comes back clean: on a pool of one
//! connection the next statement gets its own answer and sees nothing of the
//! dropped transaction. (On PostgreSQL the pool skips its ping for a
//! connection that comes back with nothing in flight; these are the cases
//! that must still take it.)

use std::future::{Future, poll_fn};
use std::task::Poll;
use std::time::Duration;

use funnel_domain::Command;
use funnel_store::{Backend, Store, StoreOptions};
use funnel_testkit::{TestDatabase, backends};
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

use crate::support::{command, full_history, new_opportunity, stage};

async fn one_number(store: &Store, sql: &str) -> i64 {
    let connection = store.connection();
    let statement = Statement::from_string(connection.get_database_backend(), sql);
    let row = connection.query_one_raw(statement).await.expect("query").expect("one row");
    row.try_get("", "x").expect("a number")
}

#[tokio::test]
async fn a_connection_given_back_halfway_comes_back_clean() {
    for database in backends().await {
        println!("backend: {database}");
        database.store().await;
        // The next statement waits for the slow one to end (seconds, in an
        // unoptimised build): only the answers matter here.
        let options =
            StoreOptions { max_connections: 1, acquire_timeout: Duration::from_secs(60), ..StoreOptions::default() };
        let store = Store::connect(database.url(), &options).await.expect("connect");
        let created = store.create_opportunity(new_opportunity("kept", None)).await.expect("create");

        // A query the caller stops waiting for while the database still runs it.
        let slow = match store.backend() {
            Backend::Postgres => "SELECT 1::int8 AS x FROM pg_sleep(0.3)",
            Backend::Sqlite => {
                "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000) \
                 SELECT 1 AS x FROM c WHERE n = 3000000"
            }
        };
        let gave_up = tokio::time::timeout(Duration::from_millis(20), one_number(&store, slow)).await;
        assert!(gave_up.is_err(), "the slow query outlasts the caller's patience");
        assert_eq!(
            one_number(&store, "SELECT CAST(2 AS BIGINT) AS x").await,
            2,
            "the next statement gets its own answer"
        );

        // A transaction dropped with a write in it.
        let txn = store.connection().begin().await.expect("begin");
        txn.execute_unprepared("UPDATE opportunities SET title = 'dropped'").await.expect("write in the transaction");
        drop(txn);
        assert_eq!(store.get_opportunity(created.id).await.expect("get").title, "kept", "rolled back");

        // And the connection still writes.
        let events_before = store.last_event_sequence().await.expect("sequence");
        let moved = command(Command::Move { to: stage("qualified") }, None, None);
        store.change_stage(created.id, moved).await.expect("a move after both");
        assert_eq!(store.last_event_sequence().await.expect("sequence"), events_before + 1);
    }
}

/// A caller that gives up on `begin` after the BEGIN went out (a client that
/// disconnects, a timeout) must not leave the pooled connection inside a
/// transaction: the next borrower's writes would run in it, hold its locks,
/// and never commit. sqlx 0.9.0 did on PostgreSQL (see vendor/README.md).
#[tokio::test]
async fn a_begin_given_up_on_leaves_no_transaction_open() {
    for database in backends().await {
        println!("backend: {database}");
        database.store().await;
        let options = StoreOptions { max_connections: 1, ..StoreOptions::default() };
        let store = Store::connect(database.url(), &options).await.expect("connect");
        let observer = Store::connect(database.url(), &StoreOptions::default()).await.expect("connect");
        let created = store.create_opportunity(new_opportunity("before", None)).await.expect("create");

        let mut gave_up = 0;
        for round in 0..20 {
            // Poll `begin` once and drop it: the pool hands over its idle
            // connection, the BEGIN is sent, and the caller leaves before the
            // reply. (SQLite's worker thread may answer within that poll; a
            // transaction that began is dropped and rolled back.)
            let mut begin = Box::pin(store.connection().begin());
            if poll_fn(|cx| Poll::Ready(begin.as_mut().poll(cx).is_pending())).await {
                gave_up += 1;
            }
            drop(begin);

            let title = format!("round {round}");
            let update = format!("UPDATE opportunities SET title = '{title}'");
            store.connection().execute_unprepared(&update).await.expect("a write on the same connection");
            assert_eq!(
                observer.get_opportunity(created.id).await.expect("get").title,
                title,
                "round {round}: the write committed, so another connection sees it"
            );
        }
        assert!(gave_up > 0, "some rounds left within begin");
    }
}

/// On a SQLite file, write transactions run on a connection of their own:
/// they go on while every pooled reader is taken.
#[tokio::test]
async fn sqlite_writes_do_not_wait_for_a_reader() {
    let database = funnel_testkit::TestDatabase::sqlite();
    database.store().await;
    let options = StoreOptions { max_connections: 1, ..StoreOptions::default() };
    let store = Store::connect(database.url(), &options).await.expect("connect");
    let usage = store.pool_usage();
    assert_eq!(usage.max, 2, "one reader and the writer: {usage:?}");
    let reader = store.connection().begin().await.expect("the only reader");
    let created = store.create_opportunity(new_opportunity("written", None)).await.expect("a write meanwhile");
    drop(reader);
    // A move reads before it takes the write lock, on a reader.
    let moved = command(Command::Move { to: stage("qualified") }, None, None);
    store.change_stage(created.id, moved).await.expect("a move after");
    assert_eq!(store.get_opportunity(created.id).await.expect("read").state.stage.as_str(), "qualified");
}

/// A move whose caller gives up at any point lands whole or not at all, and
/// leaves no transaction open: on SQLite the writer connection runs the
/// move's whole transaction as one call, which must not stop between its
/// BEGIN and its COMMIT.
#[tokio::test]
async fn a_move_given_up_on_lands_whole_or_not_at_all() {
    for database in backends().await {
        println!("backend: {database}");
        database.store().await;
        let options = StoreOptions { max_connections: 1, ..StoreOptions::default() };
        let store = Store::connect(database.url(), &options).await.expect("connect");
        let created = store.create_opportunity(new_opportunity("moved", None)).await.expect("create");
        let events_at_start = store.last_event_sequence().await.expect("sequence");

        let (mut gave_up, mut landed) = (0, 0);
        for round in 0..200u64 {
            let before = store.get_opportunity(created.id).await.expect("get");
            let to = if before.state.stage.as_str() == "qualified" { "prospect" } else { "qualified" };
            let moved = command(Command::Move { to: stage(to) }, Some(before.version), None);
            // 0-2 ms cuts a move anywhere; the last rounds wait it out, so
            // both outcomes occur however slow the machine.
            let patience = if round < 190 { Duration::from_micros(round * 10) } else { Duration::from_secs(10) };
            match tokio::time::timeout(patience, store.change_stage(created.id, moved)).await {
                Err(_) => gave_up += 1,
                Ok(result) => {
                    result.expect("a move given the time lands");
                }
            }
            // The next write waits for a move still running on its own.
            store.connection().execute_unprepared("SELECT 1").await.expect("a statement after");
            let rename = funnel_store::OpportunityPatch { title: Some(format!("round {round}")), ..Default::default() };
            let after = store.update_opportunity(created.id, rename, None).await.expect("a write after");
            let history = full_history(&store, created.id).await;
            // The rename is no stage change: versions count both.
            if history.len() as i64 > before.state.sequence {
                landed += 1;
            }
            assert_eq!(after.state.sequence, history.len() as i64, "round {round}: the state matches its history");
        }
        let history = full_history(&store, created.id).await;
        let events = store.last_event_sequence().await.expect("sequence") - events_at_start;
        assert_eq!(events, i64::try_from(history.len() - 1).expect("small") + 200, "one event per move and rename");
        assert!(gave_up > 0 && landed > 0, "some moves given up ({gave_up}), some landed ({landed})");
    }
}

/// On a SQLite file a move waits for another process's write lock as every
/// write does, and one whose caller gives up while it waits writes nothing.
#[tokio::test]
async fn a_sqlite_move_waits_for_another_process_and_one_given_up_on_writes_nothing() {
    use sea_orm::sqlx::{self, Connection, sqlite::SqliteConnection};

    let database = funnel_testkit::TestDatabase::sqlite();
    let store = database.store().await;
    let created = store.create_opportunity(new_opportunity("waiting", None)).await.expect("create");
    let hold_the_write_lock = || async {
        let mut other = SqliteConnection::connect(database.url()).await.expect("another connection");
        sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut other).await.expect("take the write lock");
        other
    };
    let to_qualified = || command(Command::Move { to: stage("qualified") }, Some(1), None);

    let held = hold_the_write_lock().await;
    let gave_up =
        tokio::time::timeout(Duration::from_millis(300), store.change_stage(created.id, to_qualified())).await;
    assert!(gave_up.is_err(), "the move waits while another process writes");
    drop(held);
    // Time for a move that went on waiting to land once the lock is free.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let found = store.get_opportunity(created.id).await.expect("get");
    assert_eq!((found.state.stage.as_str(), found.version), ("prospect", 1), "the move given up on wrote nothing");

    let held = hold_the_write_lock().await;
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.change_stage(created.id, to_qualified()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the move waits for the lock");
    drop(held);
    let moved = waiting.await.expect("no panic").expect("the move lands once the lock is free");
    assert_eq!((moved.state.stage.as_str(), moved.version), ("qualified", 2));
    assert_eq!(full_history(&store, created.id).await.len(), 2);
}

/// On PostgreSQL a connection that comes back settled is idle again as soon
/// as the statement returns: the pool takes it back in place, without a task
/// of its own (see vendor/README.md). On this test's single-threaded
/// runtime, a task spawned to give it back would not have run yet.
#[tokio::test]
async fn a_settled_connection_is_idle_as_soon_as_its_statement_returns() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set");
        return;
    };
    database.store().await;
    let options = StoreOptions { max_connections: 1, ..StoreOptions::default() };
    let store = Store::connect(database.url(), &options).await.expect("connect");
    let created = store.create_opportunity(new_opportunity("read back", None)).await.expect("create");
    for _ in 0..3 {
        assert_eq!(store.get_opportunity(created.id).await.expect("get").title, "read back");
        let usage = store.pool_usage();
        assert_eq!((usage.open, usage.idle), (1, 1), "the one connection is back in the pool");
    }
}
