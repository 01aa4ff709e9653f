//! Migrations: the default pipeline, and idempotence.

use funnel_domain::StageKey;
use funnel_testkit::backends;

use crate::support::sales;

#[tokio::test]
async fn a_migrated_database_holds_the_default_sales_pipeline() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let pipeline = store.get_pipeline(&sales()).await.expect("the default pipeline exists");
        let keys: Vec<&str> = pipeline.def.stages().iter().map(|stage| stage.key.as_str()).collect();
        assert_eq!(keys, ["prospect", "qualified", "committed", "transacted"]);
        assert_eq!(pipeline.def.display_name, "Sales");
        assert_eq!(pipeline.def.won_stage(), &StageKey::parse("stage", "transacted").expect("valid"));
        assert_eq!(pipeline.version, 1);
    }
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let before = store.list_pipelines(100, "").await.expect("list");
        store.migrate().await.expect("migrate again");
        let reconnected = funnel_store::Store::connect(database.url(), &funnel_store::StoreOptions::default())
            .await
            .expect("reconnect");
        reconnected.migrate().await.expect("migrate from another connection");
        let after = store.list_pipelines(100, "").await.expect("list");
        assert_eq!(after, before);
        assert_eq!(after.items.len(), 1, "the default pipeline is seeded once");
    }
}
