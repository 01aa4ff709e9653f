//! Prometheus metrics of the service, in a registry of its own that `main`
//! serves on the metrics port:
//!
//! - `grpc_server_started_total{grpc_service, grpc_method}`
//! - `grpc_server_handled_total{grpc_service, grpc_method, grpc_code}`
//! - `grpc_server_handling_seconds{grpc_service, grpc_method}` (histogram)
//! - `funnel_db_pool_connections{state="idle"|"in_use"}`, `funnel_db_pool_max_connections`
//!
//! The names follow go-grpc-prometheus so stock dashboards work. An RPC is
//! counted once it ends: at its response headers when they carry the status
//! (trailers-only errors), else at the trailers that end its body, which for
//! a streaming response is when the stream ends; a body dropped before that
//! was cancelled. Three label lookups per RPC is the whole hot-path cost;
//! pool figures are read when scraped.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, RwLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use funnel_store::Store;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use prost::Message;
use tonic::Code;
use tower::{Layer, Service};

/// Upper bounds of the latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Label of any path that is not a method this server serves: a client may
/// send any path, and each new label value would be a new time series.
const UNKNOWN: &str = "unknown";

static METRICS: LazyLock<ServiceMetrics> = LazyLock::new(ServiceMetrics::new);

/// The registry holding the service's metrics (one per process).
pub fn registry() -> Registry {
    METRICS.registry.clone()
}

/// Reports the pool of `store` from now on (the last server started wins).
pub(crate) fn observe_pool(store: &Store) {
    if let Ok(mut observed) = METRICS.pool.store.write() {
        *observed = Some(store.clone());
    }
}

struct ServiceMetrics {
    registry: Registry,
    started: IntCounterVec,
    handled: IntCounterVec,
    latency: HistogramVec,
    pool: Arc<PoolCollector>,
    /// Every `/package.Service/Method` path served, from the descriptors.
    known_methods: HashSet<String>,
}

impl ServiceMetrics {
    fn new() -> Self {
        let labels = ["grpc_service", "grpc_method"];
        let started =
            IntCounterVec::new(Opts::new("grpc_server_started_total", "RPCs started"), &labels).expect("valid metric");
        let handled = IntCounterVec::new(
            Opts::new("grpc_server_handled_total", "RPCs completed, by gRPC status code"),
            &["grpc_service", "grpc_method", "grpc_code"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("grpc_server_handling_seconds", "Time from request to the end of the response")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &labels,
        )
        .expect("valid metric");
        let pool = Arc::new(PoolCollector::new());
        let registry = Registry::new();
        for collector in [
            Box::new(started.clone()) as Box<dyn Collector>,
            Box::new(handled.clone()),
            Box::new(latency.clone()),
            Box::new(SharedPool(pool.clone())),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        Self { registry, started, handled, latency, pool, known_methods: known_methods() }
    }

    /// `(service, method)` labels of a request path, borrowed from the
    /// known paths so that recording allocates nothing.
    fn labels(&'static self, path: &str) -> (&'static str, &'static str) {
        let Some(known) = self.known_methods.get(path) else { return (UNKNOWN, UNKNOWN) };
        known.trim_start_matches('/').split_once('/').unwrap_or((UNKNOWN, UNKNOWN))
    }
}

fn known_methods() -> HashSet<String> {
    let mut methods: HashSet<String> = [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for encoded in [funnel_proto::FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else { continue };
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
                }
            }
        }
    }
    methods
}

/// The database pool's connections, read at scrape time.
struct PoolCollector {
    connections: IntGaugeVec,
    max_connections: IntGauge,
    store: RwLock<Option<Store>>,
}

impl PoolCollector {
    fn new() -> Self {
        let connections = IntGaugeVec::new(
            Opts::new("funnel_db_pool_connections", "Open database connections, idle or in use"),
            &["state"],
        )
        .expect("valid metric");
        let max_connections = IntGauge::new("funnel_db_pool_max_connections", "Largest number of pooled connections")
            .expect("valid metric");
        Self { connections, max_connections, store: RwLock::new(None) }
    }
}

/// `Registry::register` takes ownership; the collector itself stays shared.
struct SharedPool(Arc<PoolCollector>);

impl Collector for SharedPool {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.0.connections.desc();
        descs.extend(self.0.max_connections.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let collector = &self.0;
        let usage = collector.store.read().ok().and_then(|store| store.as_ref().map(Store::pool_usage));
        let Some(usage) = usage else { return Vec::new() };
        let idle = i64::from(usage.idle);
        collector.connections.with_label_values(&["idle"]).set(idle);
        collector.connections.with_label_values(&["in_use"]).set(i64::from(usage.open) - idle);
        collector.max_connections.set(i64::from(usage.max));
        let mut families = collector.connections.collect();
        families.extend(collector.max_connections.collect());
        families
    }
}

/// Counts and times every RPC of the services it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for MetricsService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
{
    type Response = http::Response<ObservedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let (service, method) = METRICS.labels(request.uri().path());
        METRICS.started.with_label_values(&[service, method]).inc();
        let observation = Observation { service, method, started: Instant::now(), code: None };
        ObservedFuture { inner: self.inner.call(request), observation: Some(observation) }
    }
}

/// One RPC in flight; recorded exactly once, when dropped.
struct Observation {
    service: &'static str,
    method: &'static str,
    started: Instant,
    /// `None` until the status is known; a drop before that is a cancellation.
    code: Option<Code>,
}

impl Drop for Observation {
    fn drop(&mut self) {
        let code = code_name(self.code.unwrap_or(Code::Cancelled));
        let seconds = self.started.elapsed().as_secs_f64();
        METRICS.handled.with_label_values(&[self.service, self.method, code]).inc();
        METRICS.latency.with_label_values(&[self.service, self.method]).observe(seconds);
        // An access log at debug level, inside the request's span (request id).
        tracing::debug!(code, seconds, "rpc finished");
    }
}

pin_project! {
    pub struct ObservedFuture<F> {
        #[pin]
        inner: F,
        observation: Option<Observation>,
    }
}

impl<F, ResponseBody, Error> Future for ObservedFuture<F>
where
    F: Future<Output = Result<http::Response<ResponseBody>, Error>>,
{
    type Output = Result<http::Response<ObservedBody<ResponseBody>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let mut observation = this.observation.take();
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                if let Some(observation) = observation.as_mut() {
                    observation.code = Some(Code::Unknown);
                }
                return Poll::Ready(Err(error));
            }
        };
        // Trailers-only: the status is in the headers and the body is empty.
        if let Some(status) = response.headers().get("grpc-status")
            && let Some(mut finished) = observation.take()
        {
            finished.code = Some(Code::from_bytes(status.as_bytes()));
        }
        Poll::Ready(Ok(response.map(|inner| ObservedBody { inner, observation })))
    }
}

pin_project! {
    /// A response body that records its RPC when its trailers pass by.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        observation: Option<Observation>,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = ready!(this.inner.poll_frame(cx));
        let code = match &polled {
            Some(Ok(frame)) => match frame.trailers_ref() {
                Some(trailers) => trailers.get("grpc-status").map(|status| Code::from_bytes(status.as_bytes())),
                None => None,
            },
            Some(Err(_)) => Some(Code::Internal),
            // A gRPC body always ends in trailers; one that does not, failed.
            None => Some(Code::Unknown),
        };
        if let Some(code) = code
            && let Some(mut finished) = this.observation.take()
        {
            finished.code = Some(code);
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The canonical name of a status code, as gRPC's documentation spells it;
/// the label of every status metric and what the CLI prints.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
