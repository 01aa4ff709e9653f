//! The real pipeline service on `127.0.0.1:0`, for tests that talk gRPC.

use std::net::SocketAddr;
use std::time::Duration;

use funnel_pipeline::{MAX_MESSAGE_BYTES, ServeOptions};
use funnel_proto::v1::pipeline_service_client::PipelineServiceClient;
use funnel_store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Name of the service in health checks and reflection.
pub const PIPELINE_SERVICE: &str = "funnel.v1.PipelineService";

/// Upper bound on start-up and on draining at shutdown.
const DEADLINE: Duration = Duration::from_secs(10);

/// A running `funnel_pipeline::serve` and a channel to it.
pub struct TestServer {
    addr: SocketAddr,
    channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl TestServer {
    /// Serves `store` on an ephemeral port and returns once the service
    /// reports SERVING (it is NOT_SERVING until the database has answered).
    pub async fn start(store: Store) -> Self {
        Self::start_with(store, ServeOptions::default()).await
    }

    /// [`TestServer::start`] with explicit server options (limits, ...).
    pub async fn start_with(store: Store, options: ServeOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral port");
        let addr = listener.local_addr().expect("a bound listener has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(funnel_pipeline::serve_with(listener, store, options, async move {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        }));
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("a socket address makes a valid URI")
            .connect()
            .await
            .expect("connect to the test server");
        wait_until_serving(channel.clone()).await;
        Self { addr, channel, stop: Some(stop), task: Some(task) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A channel to the server, for the health and reflection clients.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The generated client, with the server's message size limits.
    pub fn client(&self) -> PipelineServiceClient<Channel> {
        PipelineServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Signals shutdown and waits for the server to drain and return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(task) = self.task.take() else { return };
        let finished = tokio::time::timeout(DEADLINE, task).await.expect("the server drains within the deadline");
        finished.expect("the server task does not panic").expect("the server stops without error");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Watches health instead of polling it: the stream yields the current
/// status, then every change. Both the service and the whole server ("")
/// must be SERVING.
async fn wait_until_serving(channel: Channel) {
    let watch = async {
        for service in [PIPELINE_SERVICE, ""] {
            let request = HealthCheckRequest { service: service.to_owned() };
            let mut updates =
                HealthClient::new(channel.clone()).watch(request).await.expect("health watch").into_inner();
            loop {
                let update = updates.message().await.expect("health watch stream");
                let Some(update) = update else { panic!("the health watch ended before {service:?} was SERVING") };
                if update.status == ServingStatus::Serving as i32 {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(DEADLINE, watch).await.expect("the test server becomes SERVING within the deadline");
}
