//! The funnel pipeline service. [`serve`] runs it on an already bound
//! listener until a shutdown future resolves, which is what lets tests use
//! port 0 and binaries handle signals their own way.

mod analytics;
mod api;
pub mod auth;
mod config;
mod convert;
mod error;
mod import;
pub mod limits;
pub mod metrics;
mod options;
mod request_id;
mod scoring_api;
mod security;
mod watch;

use std::future::Future;
use std::time::Duration;

use funnel_proto::v1::pipeline_service_server::PipelineServiceServer;
use funnel_proto::v1::scoring_service_server::ScoringServiceServer;
use funnel_store::Store;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

pub use api::{ACTOR_METADATA, PipelineApi};
pub use config::Config;
pub use limits::ServerLimits;
pub use options::ServeOptions;
pub use request_id::{REQUEST_ID_METADATA, RequestId};
pub use scoring_api::ScoringApi;
pub use security::{Security, SecurityError, TlsFiles};

/// Largest request or response message by default; an import batch of
/// 1,000 opportunities with long histories fits.
pub const MAX_MESSAGE_BYTES: usize = limits::DEFAULT_MAX_MESSAGE_BYTES;

/// Health service name that is SERVING as long as the server runs.
pub const LIVENESS_SERVICE: &str = "liveness";

/// How often health is re-checked against the database.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Serves the gRPC API, health and reflection on `listener` until `shutdown`
/// resolves, then drains in-flight requests. Default options.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    serve_with(listener, store, ServeOptions::default(), shutdown).await
}

/// [`serve`] with explicit options. Callers check
/// [`Security::check_exposure`] against the address first (`main` does).
pub async fn serve_with(
    listener: TcpListener,
    store: Store,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let ServeOptions { limits: server_limits, security } = options;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // NOT_SERVING until the database has answered once.
    health_reporter.set_not_serving::<PipelineServiceServer<PipelineApi>>().await;
    // tonic-health starts the whole server ("") as SERVING.
    health_reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    // For liveness probes: SERVING while the process answers gRPC, whatever
    // the database does (restarting the pod would not bring it back).
    health_reporter.set_service_status(LIVENESS_SERVICE, tonic_health::ServingStatus::Serving).await;
    let monitor = tokio::spawn(watch_database(store.clone(), health_reporter));
    // WatchEvents streams never end on their own: tell them when to, or the
    // graceful shutdown would wait for them forever.
    let (stop_watchers, watchers_stopping) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = stop_watchers.send(true);
    };
    metrics::observe_pool(&store);

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(funnel_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|error| warn!(%error, "reflection v1 unavailable"))
        .ok();
    // Python's grpcio-reflection client only speaks v1alpha.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(funnel_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|error| warn!(%error, "reflection v1alpha unavailable"))
        .ok();

    let max_message_bytes = server_limits.max_message_bytes;
    let scoring_service = ScoringServiceServer::new(ScoringApi::new(store.clone()))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let pipeline_service = PipelineServiceServer::new(PipelineApi::new(store).stop_watchers_on(watchers_stopping))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    let local_addr = listener.local_addr().ok();
    info!(address = ?local_addr, "serving funnel.v1");
    let mut builder = Server::builder();
    if let Some(tls) = security.tls {
        builder = builder.tls_config(tls)?;
    }
    let result = builder
        // Outermost first: the request id's span also covers the metrics.
        .layer(request_id::RequestIdLayer)
        .layer(metrics::MetricsLayer)
        // Before the limits: a caller without a valid token takes no slot.
        .layer(auth::AuthLayer::new(security.tokens))
        // Inside the metrics: shed and timed-out requests are counted too.
        .layer(limits::LimitsLayer::new(&server_limits))
        .add_service(health_service)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .add_service(pipeline_service)
        .add_service(scoring_service)
        // Builder::tcp_nodelay does not apply to an incoming stream we bring:
        // without TCP_NODELAY, Nagle and delayed ACKs stall small responses by
        // ~40 ms (issue 7, B1-B4).
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await;
    monitor.abort();
    result
}

/// Keeps the health status in step with the database: NOT_SERVING while it
/// does not answer, SERVING again once it does.
async fn watch_database(store: Store, reporter: HealthReporter) {
    let mut serving = false;
    loop {
        // A connection stuck on a silent network would hold the ping forever.
        let reachable = matches!(tokio::time::timeout(HEALTH_INTERVAL, store.ping()).await, Ok(Ok(())));
        if reachable != serving {
            serving = reachable;
            if serving {
                reporter.set_serving::<PipelineServiceServer<PipelineApi>>().await;
                reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
                info!("database reachable: serving");
            } else {
                reporter.set_not_serving::<PipelineServiceServer<PipelineApi>>().await;
                reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
                warn!("database unreachable: not serving");
            }
        }
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}
