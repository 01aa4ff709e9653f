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

    three_processes_migrate_at_once(&url).await;
    admin.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop the database");
}

/// The service and a scorer started together on a new SQLite file both
/// migrate it: one applies the migrations, the other waits and finds none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_migrating_a_new_sqlite_file_at_once_all_succeed() {
    let database = funnel_testkit::TestDatabase::sqlite();
    three_processes_migrate_at_once(database.url()).await;
}

/// Three stores (processes) connect to a new database at once and migrate
/// it: each succeeds and sees the default pipeline seeded once.
async fn three_processes_migrate_at_once(url: &str) {
    let mut processes = Vec::new();
    for _ in 0..3 {
        let url = url.to_owned();
        processes.push(tokio::spawn(async move {
            let store = funnel_store::Store::connect(&url, &funnel_store::StoreOptions::default()).await?;
            store.migrate().await?;
            store.list_pipelines(100, "").await
        }));
    }
    for process in processes {
        let pipelines = process.await.expect("no panic").expect("every process migrates");
        assert_eq!(pipelines.items.len(), 1, "the default pipeline is seeded once");
    }
}

/// m0005 backfills `previous_at` and `furthest_stage` from the history
/// already stored: dropping both columns and migrating again must give the
/// same report as the rows written with them.
#[tokio::test]
async fn the_stage_visit_columns_are_backfilled_from_existing_history() {
    use chrono::{Duration, Utc};
    use funnel_domain::Command;
    use funnel_store::{ReportQuery, WindowMode};
    use sea_orm::ConnectionTrait;

    use crate::support::{command, new_opportunity, stage};

    for database in backends().await {
        println!("backend: {database}");
        let store = database.store().await;
        let t0 = Utc::now() - Duration::days(60);
        let day = |days: i64| Some(t0 + Duration::days(days));
        let paths: [&[(&str, i64)]; 4] = [
            &[("qualified", 2), ("committed", 5), ("transacted", 9)],
            &[("qualified", 3), ("leak", 4)],
            &[("qualified", 1), ("committed", 2), ("qualified", 6)],
            &[],
        ];
        for (index, path) in paths.iter().enumerate() {
            let created =
                store.create_opportunity(new_opportunity(&format!("O{index}"), day(0))).await.expect("create");
            for (to, at) in path.iter() {
                let change = match *to {
                    "leak" => Command::Leak { reason: "no budget".to_owned() },
                    key => Command::Move { to: stage(key) },
                };
                store.change_stage(created.id, command(change, None, day(*at))).await.expect("change");
            }
        }
        let query = ReportQuery {
            pipeline: crate::support::sales(),
            start: None,
            end: Utc::now(),
            mode: WindowMode::Cohort,
            owner: None,
            source: None,
            learned_rot_points: Default::default(),
            now: Utc::now(),
        };
        let written = store.funnel_report(&query).await.expect("report");
        assert_eq!(written.stages[1].advanced, 2, "qualified -> committed twice: {written:?}");

        let db = store.connection();
        for statement in [
            "ALTER TABLE transitions DROP COLUMN previous_at",
            "ALTER TABLE opportunities DROP COLUMN furthest_stage",
            "DELETE FROM seaql_migrations WHERE version = 'm0005_add_stage_visits'",
        ] {
            db.execute_unprepared(statement).await.expect(statement);
        }
        store.migrate().await.expect("migrate again");
        let backfilled = store.funnel_report(&query).await.expect("report");
        assert_eq!(backfilled, written);
    }
}
