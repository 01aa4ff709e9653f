//! The anchors: pgbench, the sqlite3 shell, psql and scikit-learn, each run
//! as its own process.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The repository's `bench/` folder (scripts live there).
pub fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench")
}

/// How pgbench is run.
#[derive(Debug, Clone)]
pub struct Pgbench {
    pub url: String,
    pub clients: usize,
    pub seconds: u64,
    /// Key range of `bench_ids`.
    pub ids: u64,
    /// CPUs for `taskset -c`, when pinning.
    pub cpus: Option<String>,
}

impl Pgbench {
    fn command(&self, script: &str) -> Command {
        let mut command = match &self.cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpus, "pgbench"]);
                command
            }
            None => Command::new("pgbench"),
        };
        command
            .args(["-n", "-M", "prepared", "-c", &self.clients.to_string(), "-j", "2"])
            .args(["-T", &self.seconds.to_string(), "-D", &format!("ids={}", self.ids), "-f"])
            .arg(bench_dir().join(script))
            .arg(&self.url);
        command
    }

    /// Closed loop: transactions per second.
    pub fn tps(&self, script: &str) -> anyhow::Result<f64> {
        let output = self.command(script).output().context("running pgbench")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("pgbench {script} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        parse_tps(&stdout).with_context(|| format!("no tps in pgbench output: {stdout}"))
    }

    /// Open loop at `rate` transactions per second: p99 latency in
    /// microseconds, schedule lag included (as the load generator counts).
    pub fn p99_at_rate(&self, script: &str, rate: f64) -> anyhow::Result<f64> {
        let log_dir = std::env::temp_dir().join(format!("funnel-bench-pgbench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&log_dir);
        std::fs::create_dir_all(&log_dir)?;
        let output = self
            .command(script)
            .args(["-R", &format!("{rate:.0}"), "--log", "--log-prefix"])
            .arg(log_dir.join("pgbench_log"))
            .output()
            .context("running pgbench")?;
        if !output.status.success() {
            bail!("pgbench -R failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        }
        let mut latencies = Vec::new();
        for entry in std::fs::read_dir(&log_dir)? {
            let text = std::fs::read_to_string(entry?.path())?;
            for line in text.lines() {
                // client_id transaction_no time script_no time_epoch time_us schedule_lag
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(time), Some(lag)) = (fields.get(2), fields.get(6)) else { continue };
                let (Ok(time), Ok(lag)) = (time.parse::<f64>(), lag.parse::<f64>()) else { continue };
                latencies.push(time + lag);
            }
        }
        let _ = std::fs::remove_dir_all(&log_dir);
        if latencies.is_empty() {
            bail!("pgbench wrote no transaction log");
        }
        latencies.sort_by(f64::total_cmp);
        let rank = ((latencies.len() as f64) * 0.99).ceil() as usize;
        Ok(latencies[rank.clamp(1, latencies.len()) - 1])
    }
}

fn parse_tps(output: &str) -> Option<f64> {
    let line = output.lines().find(|line| line.starts_with("tps = "))?;
    line.trim_start_matches("tps = ").split_whitespace().next()?.parse().ok()
}

/// B2 anchor: `transactions` moves in a tight loop in the sqlite3 shell on
/// `path` (WAL, synchronous=NORMAL). Returns transactions per second.
pub fn sqlite_moves(path: &Path, ids: u64, transactions: u64, seed: u64) -> anyhow::Result<f64> {
    let now = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)";
    let mut script = String::from(
        "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\nPRAGMA foreign_keys=ON;\nPRAGMA busy_timeout=5000;\n",
    );
    // A fixed pseudo-random key sequence (xorshift), like pgbench's random().
    let mut state = seed.max(1);
    for _ in 0..transactions {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = state % ids + 1;
        let _ = writeln!(
            script,
            "BEGIN;\nUPDATE opportunities SET previous_stage = stage, \
             stage = CASE WHEN stage = 'prospect' THEN 'qualified' ELSE 'prospect' END, \
             stage_entered_at = {now}, last_change_at = {now}, sequence = sequence + 1, version = version + 1, \
             updated_at = {now} WHERE id = (SELECT id FROM bench_ids WHERE n = {key}) AND status = 'open';\n\
             INSERT INTO transitions (opportunity_id, sequence, from_stage, to_stage, from_status, to_status, kind, \
             occurred_at, recorded_at, actor, reason, note) SELECT id, sequence, previous_stage, stage, 'open', 'open', \
             'advanced', updated_at, updated_at, 'sqlite3', '', '' FROM opportunities \
             WHERE id = (SELECT id FROM bench_ids WHERE n = {key});\nCOMMIT;"
        );
    }
    let script_path = std::env::temp_dir().join(format!("funnel-bench-sqlite-{}.sql", std::process::id()));
    std::fs::write(&script_path, script)?;
    let started = Instant::now();
    let output = Command::new("sqlite3")
        .arg(path)
        .arg(format!(".read {}", script_path.display()))
        .output()
        .context("running sqlite3")?;
    let elapsed = started.elapsed();
    let _ = std::fs::remove_file(&script_path);
    if !output.status.success() || !output.stderr.is_empty() {
        bail!("sqlite3 failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(transactions as f64 / elapsed.as_secs_f64())
}

/// Runs an SQL statement in the sqlite3 shell.
pub fn sqlite(path: &Path, sql: &str) -> anyhow::Result<String> {
    let output = Command::new("sqlite3").arg(path).arg(sql).output().context("running sqlite3")?;
    if !output.status.success() {
        bail!("sqlite3 failed on {sql:?}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// What the scikit-learn script reported.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SklearnFit {
    pub seconds: f64,
    pub auc: f64,
    pub iterations: u64,
    pub sklearn: String,
    pub numpy: String,
}

pub fn sklearn_fit(x: &Path, y: &Path, train_rows: usize, alpha: f64) -> anyhow::Result<SklearnFit> {
    let output = Command::new("python3")
        .arg(bench_dir().join("b5_sklearn.py"))
        .arg(x)
        .arg(y)
        .arg(train_rows.to_string())
        .arg(alpha.to_string())
        .output()
        .context("running python3 bench/b5_sklearn.py")?;
    if !output.status.success() {
        bail!("b5_sklearn.py failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("b5_sklearn.py printed {line:?}"))
}

/// Median wall time of `runs` psql runs of a script file.
pub fn psql_script_seconds(url: &str, script: &str) -> anyhow::Result<f64> {
    let elapsed: Duration = crate::system::psql_file(url, &bench_dir().join(script))?;
    Ok(elapsed.as_secs_f64())
}
