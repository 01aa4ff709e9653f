//! The funnel pipeline service. [`serve`] runs it on an already bound
//! listener until a shutdown future resolves, which is what lets tests use
//! port 0 and binaries handle signals their own way.

mod api;
mod config;
mod convert;
mod error;
mod import;
mod scoring_api;

use std::future::Future;
use std::time::Duration;

use funnel_proto::v1::pipeline_service_server::PipelineServiceServer;
use funnel_proto::v1::scoring_service_server::ScoringServiceServer;
use funnel_store::Store;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

pub use api::{ACTOR_METADATA, PipelineApi};
pub use config::Config;
pub use scoring_api::ScoringApi;

/// Largest request or response message; an import batch of 1,000
/// opportunities with long histories fits.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// How often health is re-checked against the database.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Serves the gRPC API, health and reflection on `listener` until `shutdown`
/// resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // NOT_SERVING until the database has answered once.
    health_reporter.set_not_serving::<PipelineServiceServer<PipelineApi>>().await;
    // tonic-health starts the whole server ("") as SERVING.
    health_reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    let monitor = tokio::spawn(watch_database(store.clone(), health_reporter));

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

    let scoring_service = ScoringServiceServer::new(ScoringApi::new(store.clone()));
    let pipeline_service = PipelineServiceServer::new(PipelineApi::new(store))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let local_addr = listener.local_addr().ok();
    info!(address = ?local_addr, "serving funnel.v1");
    let result = Server::builder()
        .add_service(health_service)
        .add_optional_service(reflection_v1)
        .add_optional_service(reflection_v1alpha)
        .add_service(pipeline_service)
        .add_service(scoring_service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    monitor.abort();
    result
}

/// Keeps the health status in step with the database: NOT_SERVING while it
/// does not answer, SERVING again once it does.
async fn watch_database(store: Store, reporter: HealthReporter) {
    let mut serving = false;
    loop {
        let reachable = store.ping().await.is_ok();
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
