use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use funnel_store::{Backend, StoreOptions};
use funnel_telemetry::MetricsListen;

use crate::limits::{self, ServerLimits};
use crate::options::ServeOptions;

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
    /// Largest number of pooled database connections [default: 16 on
    /// PostgreSQL, 4 on SQLite].
    #[arg(long, env = "FUNNEL_MAX_CONNECTIONS")]
    pub max_connections: Option<u32>,
    /// On PostgreSQL, batches of reads by id (GetOpportunity, the read
    /// before a change) run at once; reads asked for meanwhile wait and go
    /// together in one statement. 0 sends each read on its own.
    #[arg(long, env = "FUNNEL_COALESCED_READS", default_value_t = funnel_store::COALESCED_READS)]
    pub coalesced_reads: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "FUNNEL_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
    /// Requests handled at once; more are answered RESOURCE_EXHAUSTED at
    /// once instead of queueing. Health checks are exempt.
    #[arg(long, env = "FUNNEL_MAX_CONCURRENT_REQUESTS", default_value_t = limits::DEFAULT_MAX_CONCURRENT_REQUESTS)]
    pub max_concurrent_requests: usize,
    /// Seconds a unary request may run before it is answered
    /// DEADLINE_EXCEEDED and its uncommitted work dropped; a shorter client
    /// deadline (`grpc-timeout`) wins.
    #[arg(long, env = "FUNNEL_REQUEST_TIMEOUT_SECS", default_value_t = limits::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub request_timeout_secs: u64,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "FUNNEL_MAX_MESSAGE_BYTES", default_value_t = limits::DEFAULT_MAX_MESSAGE_BYTES)]
    pub max_message_bytes: usize,
    /// Milliseconds a request waits for a database connection (or to open
    /// one) before it fails with UNAVAILABLE: how fast requests fail while
    /// the database is down.
    #[arg(long, env = "FUNNEL_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "FUNNEL_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
    /// Address of the Prometheus endpoint (`/metrics`), or `off`.
    #[arg(long, env = "FUNNEL_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: MetricsListen,
    /// OpenTelemetry collector to export spans to over OTLP/gRPC (e.g.
    /// `http://otel-collector:4317`); none when unset.
    #[arg(long, env = "FUNNEL_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// File of known tokens, one JSON object a line:
    /// `{"name": "ana", "role": "rep", "owner": "ana", "sha256": "<hex>"}`
    /// (roles: service, manager, ops, rep). Only hashes: `funnel token new`.
    #[arg(long, env = "FUNNEL_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// More known tokens: `NAME:ROLE:OWNER:SHA256` entries separated by
    /// commas (OWNER empty unless ROLE is rep).
    #[arg(long, env = "FUNNEL_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,
    /// Serve without tokens on a non-loopback address anyway. Anyone who can
    /// reach it can read and change everything.
    #[arg(long, env = "FUNNEL_INSECURE", default_value_t = false)]
    pub insecure: bool,
    /// PEM certificate (chain) of the server: serve TLS.
    #[arg(long, env = "FUNNEL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the server certificate.
    #[arg(long, env = "FUNNEL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): demand a client certificate signed by one
    /// (mutual TLS).
    #[arg(long, env = "FUNNEL_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl Config {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == Some(0) {
            return Err("max_connections must be at least 1".to_owned());
        }
        if self.max_concurrent_requests == 0 || self.request_timeout_secs == 0 || self.db_acquire_timeout_ms == 0 {
            return Err(
                "max_concurrent_requests, request_timeout_secs and db_acquire_timeout_ms must be positive".into()
            );
        }
        if self.max_message_bytes < 4096 {
            return Err(format!("max_message_bytes must be at least 4096, got {}", self.max_message_bytes));
        }
        if Backend::of_url(&self.database_url).is_none() {
            return Err(format!("database_url {:?} is neither sqlite: nor postgres://", self.database_url));
        }
        Ok(())
    }

    pub fn store_options(&self) -> StoreOptions {
        let defaults = StoreOptions::for_url(&self.database_url);
        StoreOptions {
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            coalesced_reads: self.coalesced_reads,
        }
    }

    /// The server's limits and other options.
    pub fn serve_options(&self) -> ServeOptions {
        let limits = ServerLimits {
            max_concurrent_requests: self.max_concurrent_requests,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_message_bytes: self.max_message_bytes,
        };
        ServeOptions { limits, ..ServeOptions::default() }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("funnel-pipeline").chain(args.iter().copied())).expect("parses")
    }

    #[test]
    fn the_pool_is_smaller_on_sqlite_unless_given() {
        let sqlite = parse(&["--database-url", "sqlite://funnel.db?mode=rwc"]);
        assert_eq!(sqlite.store_options().max_connections, funnel_store::SQLITE_MAX_CONNECTIONS);
        let postgres = parse(&["--database-url", "postgres://db/funnel"]);
        assert_eq!(postgres.store_options().max_connections, funnel_store::POSTGRES_MAX_CONNECTIONS);
        let given = parse(&["--database-url", "sqlite://funnel.db?mode=rwc", "--max-connections", "9"]);
        assert_eq!(given.store_options().max_connections, 9);
        let zero = parse(&["--max-connections", "0"]);
        assert_eq!(zero.validate().expect_err("rejected"), "max_connections must be at least 1");
    }
}
