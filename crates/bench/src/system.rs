//! The processes around a benchmark: psql, the service as a child process
//! (pinned with taskset), resident memory, versions and load.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use funnel_proto::v1 as pb;
use funnel_proto::v1::pipeline_service_client::PipelineServiceClient;
use tonic::transport::Channel;

/// Runs `psql` on `url` and returns its unaligned, tuples-only output.
pub fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .context("running psql")?;
    if !output.status.success() {
        bail!("psql failed on {sql:?}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs a psql script file, discarding its output; returns the wall time.
pub fn psql_file(url: &str, path: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = Command::new("psql")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .output()
        .context("running psql")?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!("psql -f {} failed: {}", path.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(elapsed)
}

/// Creates database `name` on the server of `admin_url` unless it exists.
pub fn ensure_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let exists = psql(admin_url, &format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"))?;
    if exists.is_empty() {
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
    }
    Ok(())
}

/// Drops `name` (closing its other sessions) and creates it empty.
pub fn recreate_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    psql(admin_url, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    psql(admin_url, &format!("CREATE DATABASE {name}"))?;
    Ok(())
}

/// The first line a command prints, or what went wrong.
pub fn version_of(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout);
            text.lines().next().unwrap_or_default().trim().to_owned()
        }
        Err(error) => format!("unavailable ({error})"),
    }
}

pub fn git_commit() -> String {
    let commit = version_of("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|output| !output.stdout.is_empty())
        .unwrap_or(false);
    if dirty { format!("{commit} (+ uncommitted changes)") } else { commit }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `(VmRSS, VmHWM)` of a process in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The CPUs this process may run on, as `taskset -c` lists them ("0,1").
pub fn own_cpus() -> anyhow::Result<String> {
    let output = Command::new("taskset").args(["-c", "-p", &std::process::id().to_string()]).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "pid 123's current affinity list: 0,1"
    match text.rsplit_once(": ") {
        Some((_, cpus)) if output.status.success() && !cpus.trim().is_empty() => Ok(cpus.trim().to_owned()),
        _ => bail!("taskset did not say which CPUs this process has: {}", text.trim()),
    }
}

/// Pins this whole process (every thread) to `cpus`, e.g. "0".
pub fn pin_self(cpus: &str) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("taskset failed to pin the load generator");
    }
    Ok(())
}

/// A binary next to this one (`target/release/...`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let current = std::env::current_exe()?;
    let path = current.with_file_name(name);
    if !path.exists() {
        bail!("{} is missing: run `cargo build --release -p funnel-pipeline -p funnel-bench` first", path.display());
    }
    Ok(path)
}

/// `funnel-pipeline` running as a child process.
pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts the service on `database_url`, pinned to `cpus` when given,
    /// and waits until it answers.
    pub async fn start(database_url: &str, cpus: Option<&str>, max_connections: Option<u32>) -> anyhow::Result<Self> {
        let binary = sibling_binary("funnel-pipeline")?;
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = match cpus {
            Some(cpus) => {
                let mut command = Command::new("taskset");
                command.args(["-c", cpus]).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        command
            .env("FUNNEL_LISTEN", addr.to_string())
            .env("FUNNEL_DATABASE_URL", database_url)
            .env("FUNNEL_METRICS_LISTEN", "off")
            .env("FUNNEL_MAX_CONCURRENT_REQUESTS", "1024")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        match max_connections {
            Some(max) => command.env("FUNNEL_MAX_CONNECTIONS", max.to_string()),
            None => command.env_remove("FUNNEL_MAX_CONNECTIONS"),
        };
        let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let server = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut client) = server.client().await
                && client.list_pipelines(pb::ListPipelinesRequest::default()).await.is_ok()
            {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!("funnel-pipeline did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(format!("http://{}", self.addr))?.connect().await?)
    }

    pub async fn client(&self) -> anyhow::Result<PipelineServiceClient<Channel>> {
        Ok(PipelineServiceClient::new(self.channel().await?).max_decoding_message_size(64 * 1024 * 1024))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `(VmRSS, VmHWM)` in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        memory_kib(self.pid())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
