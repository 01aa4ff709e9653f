//! Connecting to the service: one channel shared by the PipelineService and
//! ScoringService clients, with the actor sent as metadata on every call.

use std::time::Duration;

use funnel_proto::v1::pipeline_service_client::PipelineServiceClient;
use funnel_proto::v1::scoring_service_client::ScoringServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::error::{CliError, Result};

/// Where the service listens unless told otherwise.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// Metadata key naming who makes a change; the service records it in the
/// history (see `funnel_pipeline::ACTOR_METADATA`).
pub const ACTOR_METADATA: &str = "x-funnel-actor";

/// Largest message either way; matches the service's limit so an import
/// batch with long histories fits.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to reach the service: the global flags of `funnel`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Address of the funnel gRPC service.
    #[arg(long, global = true, env = "FUNNEL_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Who makes the changes, recorded in the history (metadata `x-funnel-actor`).
    #[arg(long, global = true, env = "FUNNEL_ACTOR")]
    pub actor: Option<String>,
}

/// Adds `x-funnel-actor` to every request.
#[derive(Debug, Clone)]
pub struct ActorInterceptor {
    actor: Option<AsciiMetadataValue>,
}

impl Interceptor for ActorInterceptor {
    fn call(&mut self, mut request: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(actor) = &self.actor {
            request.metadata_mut().insert(ACTOR_METADATA, actor.clone());
        }
        Ok(request)
    }
}

pub type PipelineClient = PipelineServiceClient<InterceptedService<Channel, ActorInterceptor>>;
pub type ScoringClient = ScoringServiceClient<InterceptedService<Channel, ActorInterceptor>>;

/// Both service clients over one connection. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    server: String,
    pipeline: PipelineClient,
    scoring: ScoringClient,
}

impl Client {
    /// Connects now, so an unreachable server is reported before any work.
    pub async fn connect(args: &ConnectArgs) -> Result<Client> {
        let server = args.server.clone();
        let actor = match &args.actor {
            Some(actor) if actor.trim().is_empty() => return Err(CliError::invalid("--actor", "is empty")),
            Some(actor) => Some(
                AsciiMetadataValue::try_from(actor.as_str())
                    .map_err(|_| CliError::invalid("--actor", "must be printable ASCII"))?,
            ),
            None => None,
        };
        let connect_error = |reason: String| CliError::Connect { server: server.clone(), reason };
        let endpoint = Endpoint::from_shared(server.clone())
            .map_err(|error| connect_error(format!("not a URL ({error}); use e.g. {DEFAULT_SERVER}")))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = endpoint.connect().await.map_err(|error| connect_error(describe_transport_error(&error)))?;
        let interceptor = ActorInterceptor { actor };
        let pipeline = PipelineServiceClient::with_interceptor(channel.clone(), interceptor.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let scoring = ScoringServiceClient::with_interceptor(channel, interceptor)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Client { server, pipeline, scoring })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// A handle on PipelineService (tonic clients take `&mut self`).
    pub fn pipeline(&self) -> PipelineClient {
        self.pipeline.clone()
    }

    /// A handle on ScoringService.
    pub fn scoring(&self) -> ScoringClient {
        self.scoring.clone()
    }
}

/// The innermost cause is what a person can act on ("connection refused").
fn describe_transport_error(error: &tonic::transport::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}
