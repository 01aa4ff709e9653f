//! `funnel health`: asks the service's gRPC health endpoint
//! (`grpc.health.v1.Health/Check`) whether it serves, and fails unless the
//! answer is SERVING. Container health checks run it: the runtime image has
//! no shell and no `grpc_health_probe`.

use std::time::Duration;

use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::client::ConnectArgs;
use crate::error::{CliError, Result};
use crate::output::Report;

/// Flags of `funnel health`.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// Service to ask about, e.g. `funnel.v1.PipelineService`; empty is the whole server.
    #[arg(long, default_value = "")]
    pub service: String,
    /// Seconds to wait for the connection and the answer together.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// A SERVING answer (anything else is an error).
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub server: String,
    pub service: String,
    pub status: &'static str,
}

impl Report for HealthReport {
    fn human(&self) -> String {
        let service = if self.service.is_empty() { "server" } else { self.service.as_str() };
        format!("{} {service}: {}", self.server, self.status)
    }
}

/// Checks the server's health once.
pub async fn health(connect: &ConnectArgs, args: &HealthArgs) -> Result<HealthReport> {
    let server = connect.server.clone();
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let unhealthy = |reason: String| CliError::Connect { server: server.clone(), reason };
    // The same endpoint as every command: TLS and client certificates apply.
    let endpoint = crate::client::endpoint(connect)?.connect_timeout(timeout).timeout(timeout);
    let channel = endpoint.connect().await.map_err(|error| unhealthy(error.to_string()))?;
    let request = HealthCheckRequest { service: args.service.clone() };
    let response = HealthClient::new(channel).check(request).await.map_err(CliError::rpc("Check"))?.into_inner();
    let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
    if status != ServingStatus::Serving {
        return Err(unhealthy(format!("health is {}", status.as_str_name())));
    }
    Ok(HealthReport { server, service: args.service.clone(), status: status.as_str_name() })
}
