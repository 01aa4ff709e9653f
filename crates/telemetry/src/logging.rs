//! Logs through `tracing` (text or JSON lines on stderr, `RUST_LOG` to
//! filter) and, when an OTLP endpoint is configured, spans exported to an
//! OpenTelemetry collector over gRPC.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::warn;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::error::{Result, TelemetryError};

/// How a binary logs.
#[derive(Debug, Clone, Default)]
pub struct TracingOptions {
    /// `service.name` of exported spans.
    pub service_name: &'static str,
    /// JSON lines instead of text.
    pub json: bool,
    /// OTLP/gRPC collector, e.g. `http://otel-collector:4317`; `None` exports nothing.
    pub otlp_endpoint: Option<String>,
}

/// Flushes exported spans when dropped: keep it alive until `main` returns.
#[must_use = "spans still buffered are lost when the guard is dropped early"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing spans at exit failed: {error}");
        }
    }
}

/// Installs the global subscriber. Must run inside the tokio runtime when
/// OTLP export is on (the exporter's channel lives there).
pub fn init_tracing(options: &TracingOptions) -> Result<TracingGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let format = if options.json { format.json().boxed() } else { format.boxed() };
    let provider = match options.otlp_endpoint.as_deref().filter(|endpoint| !endpoint.is_empty()) {
        Some(endpoint) => Some(otlp_provider(options.service_name, endpoint)?),
        None => None,
    };
    let export = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(options.service_name)));
    tracing_subscriber::registry().with(filter).with(format).with(export).try_init()?;
    Ok(TracingGuard { provider })
}

fn otlp_provider(service_name: &'static str, endpoint: &str) -> Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError::Exporter { endpoint: endpoint.to_owned(), source })?;
    let resource = Resource::builder().with_service_name(service_name).build();
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

/// Makes `span` a child of the caller's trace when the request carries a
/// W3C `traceparent` header; a no-op without one or without OTLP export.
pub fn set_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if let Err(error) = span.set_parent(context) {
        warn!(%error, "could not attach the caller's trace");
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
