//! What funnel's binaries share to be observed: a Prometheus `/metrics`
//! endpoint on its own port ([`serve_metrics`]), and logging through
//! `tracing` with optional OpenTelemetry OTLP export ([`init_tracing`]).
//! Which metrics exist is each binary's business (their `metrics.rs`).

mod endpoint;
mod error;
mod logging;

pub use endpoint::{MetricsListen, render, serve_metrics, start_metrics_endpoint};
pub use error::{Result, TelemetryError};
pub use logging::{TracingGuard, TracingOptions, init_tracing, set_remote_parent};
