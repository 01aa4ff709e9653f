//! `GET /metrics` in the Prometheus text format, on a port of its own so it
//! never competes with (or is exposed alongside) the gRPC API.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::error::{Result, TelemetryError};

/// Where the metrics endpoint listens: an address, or `off` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsListen(Option<SocketAddr>);

impl MetricsListen {
    pub const OFF: MetricsListen = MetricsListen(None);

    pub fn at(address: SocketAddr) -> Self {
        Self(Some(address))
    }

    pub fn address(&self) -> Option<SocketAddr> {
        self.0
    }
}

impl FromStr for MetricsListen {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(Self::OFF);
        }
        text.parse::<SocketAddr>()
            .map(Self::at)
            .map_err(|error| format!("{text:?} is neither host:port nor \"off\" ({error})"))
    }
}

impl fmt::Display for MetricsListen {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(address) => write!(formatter, "{address}"),
            None => formatter.write_str("off"),
        }
    }
}

/// Serves `registry` at `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route("/metrics", get(scrape)).with_state(registry);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Binds `listen` and serves `registry` there for the rest of the process;
/// returns the bound address, or `None` when metrics are off.
pub async fn start_metrics_endpoint(listen: MetricsListen, registry: Registry) -> Result<Option<SocketAddr>> {
    let Some(address) = listen.address() else { return Ok(None) };
    let listener = TcpListener::bind(address).await.map_err(|source| TelemetryError::Bind { address, source })?;
    let bound = listener.local_addr().unwrap_or(address);
    info!(address = %bound, "serving metrics at /metrics");
    tokio::spawn(async move {
        if let Err(error) = serve_metrics(listener, registry, std::future::pending()).await {
            warn!(%error, "metrics endpoint stopped");
        }
    });
    Ok(Some(bound))
}

/// The registry in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> Result<String, prometheus::Error> {
    let mut buffer = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut buffer)?;
    String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
}

async fn scrape(State(registry): State<Registry>) -> Response {
    match render(&registry) {
        Ok(text) => ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(error) => {
            warn!(%error, "could not encode metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "could not encode metrics\n").into_response()
        }
    }
}
