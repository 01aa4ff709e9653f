//! One fresh database per test: a temporary SQLite file, or a PostgreSQL
//! database cloned from a migrated template when `FUNNEL_TEST_DATABASE_URL`
//! names a server.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use funnel_store::{Store, StoreOptions};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Names the PostgreSQL server to test against, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`; its database is only used
/// to create and drop the per-test databases.
pub const POSTGRES_URL_ENV: &str = "FUNNEL_TEST_DATABASE_URL";

/// Every PostgreSQL test database is a copy of this one: copying is several
/// times faster than migrating an empty database.
const TEMPLATE_DATABASE: &str = "funnel_test_template";

/// Advisory lock guarding the template. Rebuilding takes it exclusively and
/// cloning takes it shared, so that no clone copies a half-built template,
/// even with several test binaries running at once.
const TEMPLATE_LOCK: i64 = 0x0066_756e_6e65_6c00;

/// Test databases older than this are left over from an interrupted run and
/// are dropped when the next run starts.
const STALE_AFTER_SECS: u64 = 3600;

/// The template is rebuilt once per test process, so a new migration is
/// never missing from it.
static TEMPLATE_READY: OnceCell<()> = OnceCell::const_new();

/// A database that exists for one test and is deleted after it.
pub struct TestDatabase {
    inner: Inner,
}

enum Inner {
    Sqlite { url: String, _dir: TempDir },
    Postgres { url: String, admin_url: String, name: String },
}

impl TestDatabase {
    /// A SQLite database in a temporary file (a file, not `:memory:`, so
    /// that the pool may hold several connections), in WAL mode like
    /// production.
    pub fn sqlite() -> Self {
        let dir = tempfile::Builder::new().prefix("funnel-test-").tempdir().expect("create a temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("funnel.db").display());
        Self { inner: Inner::Sqlite { url, _dir: dir } }
    }

    /// A fresh PostgreSQL database, or `None` when `FUNNEL_TEST_DATABASE_URL`
    /// is not set. Panics when it is set but the server cannot be used: a
    /// misconfigured run must fail, not quietly test SQLite only.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var(POSTGRES_URL_ENV).ok().filter(|url| !url.trim().is_empty())?;
        TEMPLATE_READY.get_or_init(|| build_template(&admin_url)).await;
        let name = format!("funnel_test_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection(&admin_url).await;
        execute(&mut admin, format!("SELECT pg_advisory_lock_shared({TEMPLATE_LOCK})")).await;
        execute(&mut admin, format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DATABASE}")).await;
        execute(&mut admin, format!("SELECT pg_advisory_unlock_shared({TEMPLATE_LOCK})")).await;
        // The creation time, for the clean-up of databases a killed run left.
        execute(&mut admin, format!("COMMENT ON DATABASE {name} IS '{}'", unix_seconds())).await;
        admin.close().await.expect("close the admin connection");
        let url = with_database(&admin_url, &name);
        Some(Self { inner: Inner::Postgres { url, admin_url, name } })
    }

    pub fn url(&self) -> &str {
        match &self.inner {
            Inner::Sqlite { url, .. } | Inner::Postgres { url, .. } => url,
        }
    }

    /// A store connected to this database and migrated.
    pub async fn store(&self) -> Store {
        let store = Store::connect(self.url(), &StoreOptions::default())
            .await
            .unwrap_or_else(|error| panic!("connect to {self}: {error}"));
        store.migrate().await.unwrap_or_else(|error| panic!("migrate {self}: {error}"));
        store
    }
}

/// SQLite always, then PostgreSQL when configured: a storage test loops over
/// these and is written once.
pub async fn backends() -> Vec<TestDatabase> {
    let mut databases = vec![TestDatabase::sqlite()];
    databases.extend(TestDatabase::postgres().await);
    databases
}

impl fmt::Display for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Sqlite { .. } => f.write_str("sqlite"),
            Inner::Postgres { name, .. } => write!(f, "postgres ({name})"),
        }
    }
}

impl Drop for TestDatabase {
    /// Best effort, in the background: dropping takes longer than most
    /// tests, and what a finished or killed run leaves behind is dropped by
    /// a later run (see [`drop_stale_databases`]).
    fn drop(&mut self) {
        let Inner::Postgres { admin_url, name, .. } = &self.inner else { return };
        let (admin_url, database) = (admin_url.clone(), name.clone());
        // Drop cannot await; a thread with its own runtime can, whatever
        // runtime (if any) the test runs on.
        std::thread::spawn(move || {
            if let Err(error) = drop_database(&admin_url, &database) {
                eprintln!("could not drop test database {database}: {error}");
            }
        });
    }
}

fn drop_database(admin_url: &str, database: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut admin = PgConnection::connect(admin_url).await.map_err(|e| e.to_string())?;
        // FORCE ends the connections a test's pool still holds.
        let statement = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
        sqlx::raw_sql(AssertSqlSafe(statement)).execute(&mut admin).await.map_err(|e| e.to_string())?;
        admin.close().await.map_err(|e| e.to_string())
    })
}

/// Drops the test databases an interrupted or finished run left behind,
/// once they are old enough not to belong to a run still going.
async fn drop_stale_databases(admin: &mut PgConnection) {
    let query = "SELECT d.datname::text, s.description FROM pg_database d \
                 JOIN pg_shdescription s ON s.objoid = d.oid AND s.classoid = 'pg_database'::regclass \
                 WHERE d.datname LIKE 'funnel\\_test\\_%' AND d.datname <> 'funnel_test_template'";
    let rows: Vec<(String, String)> =
        sqlx::query_as(query).fetch_all(&mut *admin).await.unwrap_or_else(|error| panic!("{query}: {error}"));
    let cutoff = unix_seconds().saturating_sub(STALE_AFTER_SECS);
    for (database, created_at) in rows {
        if created_at.parse::<u64>().is_ok_and(|created_at| created_at < cutoff) {
            execute(admin, format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await;
        }
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// (Re)creates the template database and migrates it, under the exclusive
/// advisory lock.
async fn build_template(admin_url: &str) {
    let mut admin = admin_connection(admin_url).await;
    execute(&mut admin, format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})")).await;
    drop_stale_databases(&mut admin).await;
    execute(&mut admin, format!("DROP DATABASE IF EXISTS {TEMPLATE_DATABASE} WITH (FORCE)")).await;
    execute(&mut admin, format!("CREATE DATABASE {TEMPLATE_DATABASE}")).await;
    let template_url = with_database(admin_url, TEMPLATE_DATABASE);
    let options = StoreOptions { max_connections: 1, ..StoreOptions::default() };
    let store = Store::connect(&template_url, &options).await.expect("connect to the template database");
    store.migrate().await.expect("migrate the template database");
    // A database with open connections cannot be copied.
    store.connection().close_by_ref().await.expect("close the template's connections");
    execute(&mut admin, format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})")).await;
    admin.close().await.expect("close the admin connection");
}

async fn admin_connection(admin_url: &str) -> PgConnection {
    PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|error| panic!("{POSTGRES_URL_ENV} is set but PostgreSQL cannot be reached: {error}"))
}

/// Runs one statement with the simple query protocol: `CREATE DATABASE`
/// may not run in the implicit transaction of a prepared statement.
async fn execute(admin: &mut PgConnection, statement: String) {
    if let Err(error) = sqlx::raw_sql(AssertSqlSafe(statement.clone())).execute(&mut *admin).await {
        panic!("{statement}: {error}");
    }
}

/// `url` with its database (the path) replaced, keeping any query string.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |scheme_end| scheme_end + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced_and_its_options_kept() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "t"), "postgres://u@h:5432/t");
        assert_eq!(with_database("postgres://u@h:5432", "t"), "postgres://u@h:5432/t");
        assert_eq!(with_database("postgres://u@h/db?sslmode=disable", "t"), "postgres://u@h/t?sslmode=disable");
    }
}
