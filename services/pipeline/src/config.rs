use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use funnel_store::StoreOptions;

/// Configuration of `funnel-pipeline`: flags, each also read from a
/// `FUNNEL_*` environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "funnel-pipeline", version, about = "The funnel gRPC service")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "FUNNEL_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Database URL: `sqlite://FILE?mode=rwc` (embedded) or `postgres://...`.
    #[arg(long, env = "FUNNEL_DATABASE_URL", default_value = "sqlite://funnel.db?mode=rwc")]
    pub database_url: String,
    /// Largest number of pooled database connections.
    #[arg(long, env = "FUNNEL_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "FUNNEL_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "FUNNEL_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

impl Config {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".to_owned());
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres")) {
            return Err(format!("database_url {:?} is neither sqlite: nor postgres://", self.database_url));
        }
        Ok(())
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions { max_connections: self.max_connections, ..StoreOptions::default() }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}
