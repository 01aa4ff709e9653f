/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("otlp exporter for {endpoint}: {source}")]
    Exporter { endpoint: String, source: opentelemetry_otlp::ExporterBuildError },
    #[error("a global tracing subscriber is already installed: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[error("binding the metrics endpoint on {address}: {source}")]
    Bind { address: std::net::SocketAddr, source: std::io::Error },
}

pub type Result<T, E = TelemetryError> = std::result::Result<T, E>;
