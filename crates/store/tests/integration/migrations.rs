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

/// The replicas of a deployment start together on an empty PostgreSQL
/// database and all migrate; each must succeed and the schema come out once.
#[tokio::test]
async fn replicas_migrating_an_empty_postgres_database_at_once_all_succeed() {
    use sea_orm::{ConnectionTrait, Database};
    let Some(admin_url) = std::env::var(funnel_testkit::POSTGRES_URL_ENV).ok().filter(|url| !url.is_empty()) else {
        return;
    };
    let name = format!("funnel_race_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(admin_url.as_str()).await.expect("connect as admin");
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create an empty database");
    let (base, _) = admin_url.rsplit_once('/').expect("a database URL names its database");
    let url = format!("{base}/{name}");

    let mut replicas = Vec::new();
    for _ in 0..3 {
        let url = url.clone();
        replicas.push(tokio::spawn(async move {
            let store = funnel_store::Store::connect(&url, &funnel_store::StoreOptions::default()).await?;
            store.migrate().await?;
            store.list_pipelines(100, "").await
        }));
    }
    for replica in replicas {
        let pipelines = replica.await.expect("no panic").expect("every replica migrates");
        assert_eq!(pipelines.items.len(), 1, "the default pipeline is seeded once");
    }
    admin.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop the database");
}
