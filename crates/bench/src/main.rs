//! `funnel-bench`: every benchmark of issue 7 runs its anchor and funnel back
//! to back (A B A B, `--pairs` times), and reports the median ratio with the
//! raw figures, versions and commit as a markdown table.
//!
//! ```sh
//! cargo build --release -p funnel-pipeline -p funnel-bench
//! target/release/funnel-bench all          # or b1 ... b8
//! ```

mod anchors;
mod batch;
mod context;
mod data;
mod framed;
mod loadgen;
mod online;
mod results;
mod system;

use clap::{Parser, Subcommand};

use crate::context::{Bench, Settings};

#[derive(Debug, Parser)]
#[command(name = "funnel-bench", about = "funnel against its anchors, side by side")]
struct Cli {
    #[command(subcommand)]
    command: Which,
}

#[derive(Debug, Subcommand)]
enum Which {
    /// B1 to B8.
    All(Settings),
    /// MoveOpportunity on PostgreSQL vs pgbench.
    B1(Settings),
    /// MoveOpportunity on SQLite vs the sqlite3 shell.
    B2(Settings),
    /// GetOpportunity and ListOpportunities vs pgbench.
    B3(Settings),
    /// p99 of MoveOpportunity at half of B1's anchor rate vs pgbench -R.
    B4(Settings),
    /// Training vs scikit-learn on the same matrix.
    B5(Settings),
    /// Rescoring vs COPY of the same rows, and the scorer's peak memory.
    B6(Settings),
    /// GetFunnelReport vs one hand-written query.
    B7(Settings),
    /// MoveOpportunity throughput during a training run vs without.
    B8(Settings),
    /// Internal: rescoring in its own process (B6).
    #[command(hide = true)]
    ScoreChild {
        #[arg(long)]
        database_url: String,
    },
    /// Internal: one training run, as `funnel-scorer train` does it (B6).
    #[command(hide = true)]
    TrainOnceChild {
        #[arg(long)]
        database_url: String,
    },
    /// Internal: training in a loop until killed (B8).
    #[command(hide = true)]
    TrainChild {
        #[arg(long)]
        database_url: String,
    },
}

// The scorer's allocator, so that score-child and train-once-child measure
// what `funnel-scorer` runs; the load generator's CPU share shrinks too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (settings, which): (Settings, Vec<&str>) = match cli.command {
        Which::ScoreChild { database_url } => return batch::score_child(&database_url).await,
        Which::TrainChild { database_url } => return batch::train_child(&database_url).await,
        Which::TrainOnceChild { database_url } => return batch::train_once_child(&database_url).await,
        // The batch benchmarks first: they read the seeded data, which the
        // move benchmarks then change.
        Which::All(settings) => (settings, vec!["b5", "b6", "b7", "b1", "b2", "b3", "b4", "b8"]),
        Which::B1(settings) => (settings, vec!["b1"]),
        Which::B2(settings) => (settings, vec!["b2"]),
        Which::B3(settings) => (settings, vec!["b3"]),
        Which::B4(settings) => (settings, vec!["b4"]),
        Which::B5(settings) => (settings, vec!["b5"]),
        Which::B6(settings) => (settings, vec!["b6"]),
        Which::B7(settings) => (settings, vec!["b7"]),
        Which::B8(settings) => (settings, vec!["b8"]),
    };
    let cpus_online = std::thread::available_parallelism().map(|count| count.get()).unwrap_or(0);
    let which: Vec<&str> = if settings.only.is_empty() {
        which
    } else {
        which.into_iter().filter(|id| settings.only.iter().any(|only| only.eq_ignore_ascii_case(id))).collect()
    };
    let mut bench = Bench::new(settings);
    let load_before = system::load_average();
    for id in which {
        bench.pin_for(id).await?;
        let outcome = match id {
            "b1" => online::b1(&mut bench).await,
            "b2" => online::b2(&mut bench).await,
            "b3" => online::b3(&mut bench).await,
            "b4" => online::b4(&mut bench).await,
            "b5" => batch::b5(&mut bench).await,
            "b6" => batch::b6(&mut bench).await,
            "b7" => batch::b7(&mut bench).await,
            _ => online::b8(&mut bench).await,
        };
        // One benchmark failing (a missing tool, say) does not lose the others.
        if let Err(error) = outcome {
            eprintln!("{id} failed: {error:#}");
            bench.results.skipped.push((id.to_uppercase(), format!("{error:#}")));
        }
    }
    bench.results.context = context_lines(&bench.settings, &load_before, cpus_online);
    let table = bench.results.markdown();
    println!("\n{table}");
    if let Some(parent) = bench.settings.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&bench.settings.out, &table)?;
    println!("written to {}", bench.settings.out.display());
    Ok(())
}

fn context_lines(settings: &Settings, load_before: &str, cpus_online: usize) -> Vec<(String, String)> {
    let line = |key: &str, value: String| (key.to_owned(), value);
    vec![
        line("date", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string()),
        line("commit", system::git_commit()),
        line("rustc", system::version_of("rustc", &["--version"])),
        line(
            "PostgreSQL",
            system::version_of("psql", &["-X", "-At", "-d", &settings.pg_url(), "-c", "SHOW server_version"]),
        ),
        line("pgbench", system::version_of("pgbench", &["--version"])),
        line("sqlite3", system::version_of("sqlite3", &["--version"])),
        line("python", system::version_of("python3", &["--version"])),
        line("CPUs", cpus_online.to_string()),
        line("load average (1, 5, 15 min) before / after", format!("{load_before} / {}", system::load_average())),
        line(
            "pinning",
            if settings.no_pin {
                "none".to_owned()
            } else {
                format!(
                    "load generator and pgbench on CPU 0, funnel-pipeline on CPU 1 (taskset), except {} (nothing \
                     pinned: there the service shares CPU 1 with PostgreSQL's backends while CPU 0 idles); \
                     PostgreSQL and the scorer unpinned",
                    context::UNPINNED.map(str::to_uppercase).join(", ")
                )
            },
        ),
        line(
            "data",
            format!(
                "funnel_dataset::simulate seed {}: {} opportunities on PostgreSQL, {} on SQLite",
                data::SEED,
                settings.opportunities,
                settings.sqlite_opportunities
            ),
        ),
        line(
            "pairs, seconds per run, in flight",
            format!("{}, {}, {}", settings.pairs, settings.seconds, settings.concurrency),
        ),
    ]
}
