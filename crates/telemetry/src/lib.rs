//! What funnel's binaries share to be observed: a Prometheus `/metrics`
//! endpoint on its own port ([`serve_metrics`]), and logging through
//! `tracing` with optional OpenTelemetry OTLP export ([`init_tracing`]).
//! Which metrics exist is each binary's business (their `metrics.rs`).
//! Also the stop signal they all honour ([`shutdown_signal`]).

mod endpoint;
mod error;
mod logging;
mod signal;

pub use endpoint::{MetricsListen, render, serve_metrics, start_metrics_endpoint};
pub use error::{Result, TelemetryError};
pub use logging::{TracingGuard, TracingOptions, init_tracing, set_remote_parent};
pub use signal::shutdown_signal;
