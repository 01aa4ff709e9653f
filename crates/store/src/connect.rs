use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::coalesce::Coalescer;
use crate::migration::Migrator;
use crate::{Result, StoreError};

/// Key of the PostgreSQL advisory lock held while migrating ("funnel" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x66_75_6e_6e_65_6c;

/// Pages the SQLite WAL grows by before a commit copies them back into the
/// database file (~40 MB; SQLite's default is 1,000). That checkpoint runs
/// inside the committing writer's lock, ~6% of the service under B2; ten
/// times fewer, larger ones copy a page written many times once: B2
/// 2,145-2,358 -> 2,252-2,533 tx/s, A/B minutes apart (issue 7).
const SQLITE_WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// How long a SQLite connection waits for another process's write lock.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle at least this long is pinged before use.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// Puts a SQLite file in WAL mode once, on one connection, before the pool
/// opens its own. The switch needs the file's exclusive lock, and SQLite
/// refuses it at once, without waiting in the busy handler, while another
/// connection (another process starting on a new file) holds a shared one.
/// The pool's connections then find WAL set, which takes no lock.
async fn switch_to_wal(url: &str) -> Result<()> {
    use sea_orm::sqlx::Connection;
    use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    use std::str::FromStr;

    const ATTEMPTS: u32 = 50;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| {
            StoreError::Domain(funnel_domain::DomainError::invalid("database_url", format!("{url:?}: {error}")))
        })?
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let mut attempt = 1;
    loop {
        match SqliteConnection::connect_with(&options).await {
            Ok(connection) => {
                connection.close().await.map_err(|error| StoreError::Unavailable(error.to_string()))?;
                return Ok(());
            }
            Err(error) if attempt < ATTEMPTS && error.to_string().contains("database is locked") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10)))).await;
            }
            Err(error) => return Err(StoreError::Unavailable(format!("open SQLite file {url:?}: {error}"))),
        }
    }
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names, if any.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// Pooled connections by default on PostgreSQL.
pub const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// Pooled connections by default on SQLite, besides the one a file's
/// writes run on. It has one writer, and every commit makes each other
/// connection drop its page cache and read the pages again, each on its own
/// thread: with 16 the service moved 1,400-1,700 opportunities a second on
/// one core, with 4 1,650-1,750, with 2 ~1,870 (issue 7, B2). 4 leaves room
/// for a long report and an import at once.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Largest number of pooled connections (default 16; see
    /// [`StoreOptions::for_url`]).
    pub max_connections: u32,
    /// How long a request waits for a pooled connection, or to open one
    /// (default 2 s): while the database is down, requests fail with
    /// UNAVAILABLE after this long.
    pub acquire_timeout: Duration,
    /// On PostgreSQL, how many coalesced batches of point reads by id run at
    /// once (default [`COALESCED_READS`]; 0 reads each id on its own; see
    /// `coalesce.rs`).
    pub coalesced_reads: usize,
}

/// Coalesced read batches of one kind in flight by default. More make
/// smaller batches: at 16 calls in flight, 4 gave B3's gets 0.43 of
/// pgbench, 2 0.50-0.58, 1 0.51-0.65 (issue 7). Two, so that one slow
/// batch does not hold every read.
pub const COALESCED_READS: usize = 2;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: POSTGRES_MAX_CONNECTIONS,
            acquire_timeout: Duration::from_secs(2),
            coalesced_reads: COALESCED_READS,
        }
    }
}

impl StoreOptions {
    /// The defaults for the database at `url`: fewer connections on SQLite.
    pub fn for_url(url: &str) -> Self {
        let max_connections = match Backend::of_url(url) {
            Some(Backend::Sqlite) => SQLITE_MAX_CONNECTIONS,
            _ => POSTGRES_MAX_CONNECTIONS,
        };
        Self { max_connections, ..Self::default() }
    }
}

/// Connections of the pool at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    /// The pool's size limit.
    pub max: u32,
}

/// A pool's settings: up to `max_connections`, and one always open for an
/// in-memory database (it lives as long as its connection).
fn connect_options(url: &str, max_connections: u32, in_memory: bool, options: &StoreOptions) -> ConnectOptions {
    let mut connect_options = ConnectOptions::new(url.to_owned());
    connect_options
        .max_connections(max_connections)
        .min_connections(if in_memory { 1 } else { 0 })
        .acquire_timeout(options.acquire_timeout)
        .connect_timeout(options.acquire_timeout)
        // sqlx pings on every checkout by default: a second round trip
        // per statement (issue 7, B3). Only a connection idle this long
        // may have been dropped by a proxy or firewall; a busy one that
        // broke fails its statement with UNAVAILABLE and is discarded.
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        .sqlx_logging(false)
        // sqlx's default rollback journal with full sync is ~9x slower here.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                .pragma("wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT_PAGES.to_string())
        });
    connect_options
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    backend: Backend,
    /// SQLite has one writer at a time; this process's writers queue here,
    /// other processes' in `BEGIN IMMEDIATE` (see [`Store::begin_write`]).
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// A SQLite file's write transactions run on this one connection, apart
    /// from the pool's readers. A commit makes every other connection drop
    /// its page cache; the writer's own commits do not, so its cache stays
    /// warm and the write lock is held for less time (issue 7, B2). None
    /// in memory, where each connection would be a database of its own.
    sqlite_write_db: Option<DatabaseConnection>,
    /// Bumped after every commit that appended events (see `events.rs`).
    pub(crate) event_signal: Arc<crate::events::EventSignal>,
    /// Numbers PostgreSQL's pending events (see `sequencer.rs`).
    pub(crate) sequencer: Arc<crate::sequencer::Sequencer>,
    pub(crate) pipeline_cache: Arc<crate::pipelines::PipelineCache>,
    /// `GetOpportunity`'s reads and those that plan a change, coalesced on
    /// PostgreSQL (see `coalesce.rs`).
    pub(crate) opportunity_reads: Arc<Coalescer<crate::entity::opportunity::Model>>,
    pub(crate) change_reads: Arc<Coalescer<crate::opportunity_reads::ForChange>>,
}

impl Store {
    /// Connects to `url` (`sqlite://file.db?mode=rwc`, `sqlite::memory:` or
    /// `postgres://...`). Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        let Some(backend) = Backend::of_url(url) else {
            return Err(StoreError::Domain(funnel_domain::DomainError::invalid(
                "database_url",
                format!("{url:?} is neither sqlite: nor postgres://"),
            )));
        };
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if backend == Backend::Sqlite && !in_memory {
            switch_to_wal(url).await?;
        }
        // One in-memory SQLite database exists per connection.
        let max_connections = if in_memory { 1 } else { options.max_connections };
        let db = Database::connect(connect_options(url, max_connections, in_memory, options))
            .await
            .map_err(StoreError::from)?;
        let sqlite_write_db = if backend == Backend::Sqlite && !in_memory {
            Some(Database::connect(connect_options(url, 1, false, options)).await.map_err(StoreError::from)?)
        } else {
            None
        };
        let sqlite_writer = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let event_signal = Arc::new(tokio::sync::watch::Sender::new(0));
        let sequencer = Arc::default();
        let pipeline_cache = Arc::default();
        Ok(Self {
            db,
            backend,
            sqlite_writer,
            sqlite_write_db,
            event_signal,
            sequencer,
            pipeline_cache,
            opportunity_reads: Arc::new(Coalescer::new(options.coalesced_reads, options.acquire_timeout)),
            change_reads: Arc::new(Coalescer::new(options.coalesced_reads, options.acquire_timeout)),
        })
    }

    /// Applies pending migrations; safe to call on every start, and from
    /// several processes at once: the replicas of a deployment (or the
    /// service and a scorer on one SQLite file) start together, so they queue
    /// (on an advisory lock, or on SQLite's write lock) and migrate in one
    /// transaction each; the later ones find nothing pending.
    pub async fn migrate(&self) -> Result<()> {
        let _writer = self.write_lock().await;
        // On SQLite, BEGIN IMMEDIATE queues the processes sharing a file.
        let txn = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")).await?;
        }
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
        if self.backend == Backend::Sqlite {
            return Ok(());
        }
        // Events a stopped process committed but did not number.
        self.number_pending_events().await
    }

    /// Refreshes the planner's statistics of the tables a bulk import fills
    /// (PostgreSQL; a no-op on SQLite). Until autovacuum gets to them, or
    /// forever where it is off, the planner takes a freshly loaded table for
    /// empty and picks plans for empty tables (issue 7). ANALYZE samples a
    /// bounded number of rows, so it takes seconds even at millions.
    pub async fn refresh_statistics(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            return Ok(());
        }
        self.db.execute_unprepared("ANALYZE opportunities, transitions, activities").await?;
        Ok(())
    }

    /// Answers whether the database is reachable.
    pub async fn ping(&self) -> Result<()> {
        self.db.execute_unprepared("SELECT 1").await.map(|_| ()).map_err(StoreError::from)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How many pooled connections are open and idle now; cheap (no query).
    pub fn pool_usage(&self) -> PoolUsage {
        let (open, idle, max) = match self.backend {
            // The readers' pool and the writer's together.
            Backend::Sqlite => [Some(&self.db), self.sqlite_write_db.as_ref()].into_iter().flatten().fold(
                (0, 0, 0),
                |(open, idle, max), db| {
                    let pool = db.get_sqlite_connection_pool();
                    (open + pool.size(), idle + pool.num_idle(), max + pool.options().get_max_connections())
                },
            ),
            Backend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
        };
        PoolUsage { open, idle: u32::try_from(idle).unwrap_or(u32::MAX), max }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Begins a transaction that will write. On SQLite it is `BEGIN
    /// IMMEDIATE`: another process on the same file (a scorer beside the
    /// service) may commit between a deferred transaction's first read and
    /// its first write, and SQLite then refuses the upgrade at once with
    /// SQLITE_BUSY_SNAPSHOT instead of waiting. Taking the write lock at
    /// BEGIN makes the busy handler wait for it instead.
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction> {
        let options = match self.backend {
            Backend::Sqlite => TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            },
            Backend::Postgres => TransactionOptions::default(),
        };
        Ok(self.write_connection().begin_with_options(options).await?)
    }

    /// Where writes go: a SQLite file's own writer connection, else the pool.
    /// Call it holding [`Store::write_lock`].
    pub(crate) fn write_connection(&self) -> &DatabaseConnection {
        self.sqlite_write_db.as_ref().unwrap_or(&self.db)
    }

    /// Held for the duration of every write transaction on SQLite; a no-op on
    /// PostgreSQL, whose row locks and version checks do the job. Owned, so
    /// that a task of its own can hold it (a SQLite move's write).
    pub(crate) async fn write_lock(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.sqlite_writer {
            Some(mutex) => Some(mutex.clone().lock_owned().await),
            None => None,
        }
    }
}
