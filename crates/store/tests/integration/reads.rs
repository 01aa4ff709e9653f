//! Point reads under concurrency: on PostgreSQL the reads asked for while
//! others run go together in one statement, and each caller must still get
//! its own row, or none.

use std::time::{Duration, Instant};

use funnel_domain::{Command, OpportunityId};
use funnel_store::{Store, StoreError, StoreOptions};
use funnel_testkit::{TcpProxy, TestDatabase, backends};

use crate::support::{command, create_opportunities, new_opportunity, stage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_each_get_their_own_row() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let created = create_opportunities(&store, "read", 24).await;
        let missing = OpportunityId::new_v7();
        // Every row three times over, and a missing id among them, all at once.
        let mut readers = Vec::new();
        for _ in 0..3 {
            for opportunity in &created {
                let (store, id) = (store.clone(), opportunity.id);
                readers.push((Some(id), tokio::spawn(async move { store.get_opportunity(id).await })));
            }
            let store = store.clone();
            readers.push((None, tokio::spawn(async move { store.get_opportunity(missing).await })));
        }
        assert_eq!(readers.len(), 75);
        for (expected, reader) in readers {
            let read = reader.await.expect("no panic");
            match expected {
                Some(id) => {
                    let found = read.expect("an existing opportunity is found");
                    let original = created.iter().find(|opportunity| opportunity.id == id).expect("created");
                    assert_eq!(&found, original, "the row read is the one asked for");
                }
                None => assert!(
                    matches!(read, Err(StoreError::NotFound { kind: "opportunity", ref id }) if *id == missing.to_string()),
                    "{read:?}"
                ),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_moves_each_plan_from_their_own_row() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let created = create_opportunities(&store, "move", 16).await;
        let mut movers = Vec::new();
        for (index, opportunity) in created.iter().enumerate() {
            let target = if index % 2 == 0 { "qualified" } else { "committed" };
            let (store, id, version) = (store.clone(), opportunity.id, opportunity.version);
            let move_to = command(Command::Move { to: stage(target) }, Some(version), None);
            movers.push((id, target, tokio::spawn(async move { store.change_stage(id, move_to).await })));
        }
        for (id, target, mover) in movers {
            let moved = mover.await.expect("no panic").expect("a move of its own opportunity succeeds");
            assert_eq!(moved.id, id);
            assert_eq!(moved.state.stage.as_str(), target);
            assert_eq!(store.get_opportunity(id).await.expect("get"), moved);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_reads_behind_a_hung_batch_fail_in_time_and_then_recover() {
    let Some(database) = TestDatabase::postgres().await else {
        eprintln!("skipped: FUNNEL_TEST_DATABASE_URL is not set; reads are coalesced on PostgreSQL only");
        return;
    };
    database.store().await;
    let (proxy, proxied_url) = TcpProxy::in_front_of(database.url()).await;
    let options = StoreOptions { acquire_timeout: Duration::from_millis(500), ..StoreOptions::default() };
    let store = Store::connect(&proxied_url, &options).await.expect("connect through the proxy");
    let created = store.create_opportunity(new_opportunity("hung", None)).await.expect("create");

    // The connections stay open and PostgreSQL never hears the reads: more
    // reads than batches may run, so some wait behind the hung ones.
    proxy.stall();
    let started = Instant::now();
    let mut readers = Vec::new();
    for _ in 0..6 {
        let (store, id) = (store.clone(), created.id);
        readers.push(tokio::spawn(async move { store.get_opportunity(id).await }));
    }
    for reader in readers {
        // Bounded, so that reads that never fail end the test instead of hanging it.
        let read = tokio::time::timeout(Duration::from_secs(10), reader)
            .await
            .expect("a read behind a hung batch fails within 10 s")
            .expect("no panic");
        assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
    }
    let failed_after = started.elapsed();
    assert!(failed_after < Duration::from_secs(5), "the reads failed after {failed_after:?}");

    proxy.restore();
    let restored_at = Instant::now();
    loop {
        match store.get_opportunity(created.id).await {
            Ok(found) => {
                assert_eq!(found, created);
                break;
            }
            Err(StoreError::Unavailable(_)) if restored_at.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("reads did not recover: {other:?}"),
        }
    }
    println!("hung reads failed after {failed_after:?}; reads succeeded {:?} after the restore", restored_at.elapsed());
}
