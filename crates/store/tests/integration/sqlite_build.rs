//! The embedded SQLite as the store sets it up: built as `.cargo/config.toml`
//! asks, with the query planner stability guarantee (without it every
//! statement with a bound LIMIT is parsed and planned again on each run),
//! and checkpointing its WAL less often than SQLite's default (issue 7, B2).

use funnel_testkit::TestDatabase;
use sea_orm::{ConnectionTrait, Statement};

#[tokio::test]
async fn sqlite_plans_do_not_depend_on_bound_values() {
    let store = TestDatabase::sqlite().store().await;
    let connection = store.connection();
    let statement = Statement::from_string(connection.get_database_backend(), "PRAGMA compile_options");
    let options: Vec<String> = connection
        .query_all_raw(statement)
        .await
        .expect("compile options")
        .iter()
        .map(|row| row.try_get_by_index::<String>(0).expect("an option"))
        .collect();
    assert!(
        options.iter().any(|option| option == "ENABLE_QPSG"),
        "built without SQLITE_ENABLE_QPSG (LIBSQLITE3_FLAGS in .cargo/config.toml): {options:?}"
    );
}

#[tokio::test]
async fn sqlite_checkpoints_every_ten_thousand_pages() {
    let store = TestDatabase::sqlite().store().await;
    let connection = store.connection();
    let statement = Statement::from_string(connection.get_database_backend(), "PRAGMA wal_autocheckpoint");
    let row = connection.query_one_raw(statement).await.expect("pragma").expect("a row");
    assert_eq!(row.try_get_by_index::<i64>(0).expect("pages"), 10_000);
}
