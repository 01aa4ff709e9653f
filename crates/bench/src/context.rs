//! Settings and the shared set-up: databases loaded once, the id table the
//! anchors draw keys from, the service as a pinned child process.

use std::path::PathBuf;

use funnel_store::Store;

use crate::data::{self, ImportFigures};
use crate::results::Results;
use crate::system::{self, ServerProcess, psql};

/// Flags common to every benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// PostgreSQL server (a database of `--database` is created on it).
    #[arg(long, env = "FUNNEL_BENCH_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432")]
    pub postgres: String,
    /// PostgreSQL database the benchmarks load and use (created if missing).
    #[arg(long, default_value = "funnel_bench_issue7")]
    pub database: String,
    /// SQLite file for B2.
    #[arg(long, default_value = "/tmp/funnel-bench-issue7.db")]
    pub sqlite_path: PathBuf,
    /// Simulated opportunities loaded into PostgreSQL (B1-B8); the issue's
    /// 1,000,000 takes a long while to load on a small machine.
    #[arg(long, default_value_t = 100_000)]
    pub opportunities: u64,
    /// Simulated opportunities loaded into SQLite (B2).
    #[arg(long, default_value_t = 20_000)]
    pub sqlite_opportunities: u64,
    /// Training examples for B5 (the earliest ones, when more exist).
    #[arg(long, default_value_t = 1_000_000)]
    pub examples: usize,
    /// Anchor/funnel pairs per benchmark.
    #[arg(long, default_value_t = 3)]
    pub pairs: usize,
    /// Seconds per load run (B1-B4, B8).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Calls in flight (and pgbench clients).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Transactions of the sqlite3 anchor (B2).
    #[arg(long, default_value_t = 20_000)]
    pub sqlite_transactions: u64,
    /// Database connections of the service [default: the service's, 16 on
    /// PostgreSQL and 4 on SQLite].
    #[arg(long)]
    pub max_connections: Option<u32>,
    /// Do not pin: by default the load generator and pgbench run on CPU 0
    /// and the service on CPU 1 (PostgreSQL itself is never pinned), except
    /// in B1, B4 and B8 (see [`UNPINNED`]).
    #[arg(long)]
    pub no_pin: bool,
    /// With `all`: run only these, e.g. `--only b5,b6`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Where the markdown table goes (it is printed too).
    #[arg(long, default_value = "bench/results.md")]
    pub out: PathBuf,
}

impl Settings {
    pub fn pg_url(&self) -> String {
        format!("{}/{}", self.postgres.trim_end_matches('/'), self.database)
    }

    pub fn admin_url(&self) -> String {
        format!("{}/postgres", self.postgres.trim_end_matches('/'))
    }

    /// Whether benchmark `id` runs pinned.
    pub fn pins(&self, id: &str) -> bool {
        !self.no_pin && !UNPINNED.contains(&id)
    }
}

/// Benchmarks that run with nothing pinned even when pinning is on. Moves
/// keep PostgreSQL busier than the service; pinned, its backends crowd onto
/// the service's CPU (woken there) while CPU 0 idles: B1 at a488eab was
/// 0.58-0.64 pinned and 0.71-0.72 unpinned, in two runs each. B3's reads
/// do better pinned (list 0.28-0.29 against 0.26).
pub const UNPINNED: [&str; 3] = ["b1", "b4", "b8"];

/// An open opportunity the move benchmarks toggle between two stages.
#[derive(Debug, Clone)]
pub struct OpenOpportunity {
    pub id: String,
    pub stage: String,
}

/// A loaded database with the service running on it.
pub struct Loaded {
    pub url: String,
    pub store: Store,
    pub server: ServerProcess,
    /// Rows of `bench_ids`.
    pub ids: u64,
}

impl Loaded {
    /// Open opportunities with their current stage, in `bench_ids` order.
    pub fn open_opportunities(&self) -> anyhow::Result<Vec<OpenOpportunity>> {
        let text = match self.sqlite_path() {
            Some(path) => crate::anchors::sqlite(
                &path,
                "SELECT CASE typeof(b.id) WHEN 'blob' THEN lower(hex(b.id)) ELSE b.id END, o.stage \
                 FROM bench_ids b JOIN opportunities o ON o.id = b.id ORDER BY b.n",
            )?,
            None => psql(
                &self.url,
                "SELECT b.id, o.stage FROM bench_ids b JOIN opportunities o ON o.id = b.id ORDER BY b.n",
            )?,
        };
        let mut open = Vec::new();
        for line in text.lines() {
            let Some((id, stage)) = line.split_once('|') else { continue };
            open.push(OpenOpportunity { id: uuid_text(id), stage: stage.to_owned() });
        }
        Ok(open)
    }

    fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.url.strip_prefix("sqlite://")?;
        Some(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
    }
}

/// Whether moves were made since the data was loaded (or it was loaded
/// before the load was recorded).
fn moved_since_loaded(url: &str) -> anyhow::Result<bool> {
    if psql(url, "SELECT to_regclass('bench_loaded') IS NULL")? == "t" {
        return Ok(true);
    }
    let same = psql(url, "SELECT (SELECT transitions FROM bench_loaded) = (SELECT COUNT(*) FROM transitions)")?;
    Ok(same != "t")
}

/// The benchmarks change the data they run on: never someone else's.
fn refuse_foreign_data(foreign: bool, url: &str) -> anyhow::Result<()> {
    if foreign {
        anyhow::bail!(
            "{url} holds opportunities funnel-bench did not load (no bench_ids table); pick another database"
        );
    }
    Ok(())
}

/// SQLite stores uuids as 16-byte blobs (hex here); PostgreSQL prints them.
fn uuid_text(id: &str) -> String {
    if id.len() == 32 {
        format!("{}-{}-{}-{}-{}", &id[0..8], &id[8..12], &id[12..16], &id[16..20], &id[20..32])
    } else {
        id.to_owned()
    }
}

/// The run: settings, results so far, and what was set up.
pub struct Bench {
    pub settings: Settings,
    pub results: Results,
    pub postgres: Option<Loaded>,
    pub sqlite: Option<Loaded>,
    /// pgbench tps of B1 (B4 runs at half its median).
    pub b1_anchor_tps: Vec<f64>,
    /// Whether the load generator, pgbench and the services are pinned now.
    pinned: bool,
    /// The CPUs this process was started on, e.g. "0,1": what unpinning
    /// restores. Read at the first pinning, before it narrows them.
    all_cpus: Option<String>,
}

impl Bench {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            results: Results::default(),
            postgres: None,
            sqlite: None,
            b1_anchor_tps: Vec::new(),
            pinned: false,
            all_cpus: None,
        }
    }

    /// Pins or unpins this process and pgbench for benchmark `id`, and
    /// restarts running services the other way: a service's runtime sizes
    /// itself to the CPUs it starts on.
    pub async fn pin_for(&mut self, id: &str) -> anyhow::Result<()> {
        // With --no-pin nothing was narrowed, so there is nothing to restore.
        if self.settings.no_pin {
            return Ok(());
        }
        let pin = self.settings.pins(id);
        let all_cpus = match &self.all_cpus {
            Some(cpus) => cpus.clone(),
            None => self.all_cpus.insert(system::own_cpus()?).clone(),
        };
        system::pin_self(if pin { "0" } else { &all_cpus })?;
        if pin == self.pinned {
            return Ok(());
        }
        self.pinned = pin;
        let (server_cpus, max_connections) = (self.server_cpus(), self.settings.max_connections);
        for loaded in [&mut self.postgres, &mut self.sqlite].into_iter().flatten() {
            loaded.server = ServerProcess::start(&loaded.url, server_cpus, max_connections).await?;
        }
        Ok(())
    }

    /// CPUs for pgbench, when pinned.
    pub fn client_cpus(&self) -> Option<String> {
        self.pinned.then(|| "0".to_owned())
    }

    fn server_cpus(&self) -> Option<&'static str> {
        self.pinned.then_some("1")
    }

    pub fn note(&mut self, key: &str, value: String) {
        println!("  {key}: {value}");
        self.results.other.push((key.to_owned(), value));
    }

    fn note_import(&mut self, backend: &str, figures: Option<ImportFigures>) {
        if let Some(figures) = figures {
            self.note(
                &format!("import throughput ({backend}, Store::import_batch, 1,000 per transaction)"),
                format!(
                    "{:.0} opportunities/s ({} in {:.1} s, with history and activities)",
                    figures.opportunities as f64 / figures.seconds,
                    figures.opportunities,
                    figures.seconds
                ),
            );
        }
    }

    /// PostgreSQL loaded and served (once per run).
    pub async fn postgres(&mut self) -> anyhow::Result<&Loaded> {
        if self.postgres.is_none() {
            let settings = self.settings.clone();
            system::ensure_database(&settings.admin_url(), &settings.database)?;
            let url = settings.pg_url();
            refuse_foreign_data(
                &psql(&url, "SELECT to_regclass('opportunities') IS NOT NULL AND to_regclass('bench_ids') IS NULL")?
                    == "t",
                &url,
            )?;
            let (mut store, mut imported) = data::prepare(&url, settings.opportunities).await?;
            if imported.is_none() && moved_since_loaded(&url)? {
                // B1, B4 and B8 add history to the open opportunities, and
                // rescoring, training and the report read all of it: their
                // figures would depend on how many runs came before.
                println!("the data was changed by an earlier run's moves: loading it afresh");
                drop(store);
                system::recreate_database(&settings.admin_url(), &settings.database)?;
                (store, imported) = data::prepare(&url, settings.opportunities).await?;
            }
            if imported.is_some() {
                psql(&url, "CREATE TABLE bench_loaded AS SELECT COUNT(*) AS transitions FROM transitions")?;
            }
            self.note_import("PostgreSQL", imported);
            psql(
                &url,
                "CREATE TABLE IF NOT EXISTS bench_ids AS SELECT (ROW_NUMBER() OVER (ORDER BY id))::int AS n, id \
                 FROM opportunities WHERE status = 'open' AND pipeline = 'sales'; \
                 CREATE UNIQUE INDEX IF NOT EXISTS bench_ids_n ON bench_ids (n); ANALYZE",
            )?;
            let ids: u64 = psql(&url, "SELECT COUNT(*) FROM bench_ids")?.parse()?;
            let server = ServerProcess::start(&url, self.server_cpus(), settings.max_connections).await?;
            let (rss, _) = server.memory_kib();
            self.note("service RSS, idle (PostgreSQL)", format!("{:.1} MiB", rss as f64 / 1024.0));
            self.postgres = Some(Loaded { url, store, server, ids });
        }
        self.postgres.as_ref().ok_or_else(|| anyhow::anyhow!("postgres set-up failed"))
    }

    /// SQLite loaded and served (once per run).
    pub async fn sqlite(&mut self) -> anyhow::Result<&Loaded> {
        if self.sqlite.is_none() {
            let settings = self.settings.clone();
            let url = format!("sqlite://{}?mode=rwc", settings.sqlite_path.display());
            if settings.sqlite_path.exists() {
                let tables = crate::anchors::sqlite(
                    &settings.sqlite_path,
                    "SELECT name FROM sqlite_master WHERE type = 'table'",
                )?;
                let names: Vec<&str> = tables.lines().collect();
                refuse_foreign_data(names.contains(&"opportunities") && !names.contains(&"bench_ids"), &url)?;
            }
            let (store, imported) = data::prepare(&url, settings.sqlite_opportunities).await?;
            self.note_import("SQLite", imported);
            crate::anchors::sqlite(
                &settings.sqlite_path,
                "CREATE TABLE IF NOT EXISTS bench_ids AS SELECT ROW_NUMBER() OVER (ORDER BY id) AS n, id \
                 FROM opportunities WHERE status = 'open' AND pipeline = 'sales'; \
                 CREATE UNIQUE INDEX IF NOT EXISTS bench_ids_n ON bench_ids (n);",
            )?;
            let ids: u64 = crate::anchors::sqlite(&settings.sqlite_path, "SELECT COUNT(*) FROM bench_ids")?.parse()?;
            let server = ServerProcess::start(&url, self.server_cpus(), settings.max_connections).await?;
            self.sqlite = Some(Loaded { url, store, server, ids });
        }
        self.sqlite.as_ref().ok_or_else(|| anyhow::anyhow!("sqlite set-up failed"))
    }
}
