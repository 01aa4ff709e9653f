//! Connecting to the service: one channel shared by the PipelineService and
//! ScoringService clients, with the bearer token (or, in open dev mode, the
//! actor) sent as metadata on every call, over TLS for `https://` servers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use funnel_proto::v1::pipeline_service_client::PipelineServiceClient;
use funnel_proto::v1::scoring_service_client::ScoringServiceClient;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
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
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// Address of the funnel gRPC service.
    #[arg(long, global = true, env = "FUNNEL_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// Who makes the changes, recorded in the history (metadata `x-funnel-actor`).
    #[arg(long, global = true, env = "FUNNEL_ACTOR")]
    pub actor: Option<String>,
    /// Bearer token (the server records its principal as the actor). Prefer
    /// the environment variable: flags show up in `ps`.
    #[arg(long, global = true, env = "FUNNEL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA certificate to trust for an `https://` server (default: the
    /// public web roots).
    #[arg(long, global = true, env = "FUNNEL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate, for a server that demands one (mutual TLS).
    #[arg(long, global = true, env = "FUNNEL_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM key of the client certificate.
    #[arg(long, global = true, env = "FUNNEL_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// The endpoint `args` names, with TLS set up for `https://`.
pub fn endpoint(args: &ConnectArgs) -> Result<Endpoint> {
    let connect_error = |reason: String| CliError::Connect { server: args.server.clone(), reason };
    let endpoint = Endpoint::from_shared(args.server.clone())
        .map_err(|error| connect_error(format!("not a URL ({error}); use e.g. {DEFAULT_SERVER}")))?
        .connect_timeout(CONNECT_TIMEOUT);
    let tls_wanted = args.ca_cert.is_some() || args.client_cert.is_some();
    if !args.server.starts_with("https://") {
        if tls_wanted {
            return Err(CliError::invalid("--server", "use an https:// URL with --ca-cert or --client-cert"));
        }
        return Ok(endpoint);
    }
    let mut tls = ClientTlsConfig::new();
    tls = match &args.ca_cert {
        Some(path) => tls.ca_certificate(Certificate::from_pem(read_pem("--ca-cert", path)?)),
        None => tls.with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        tls = tls.identity(Identity::from_pem(read_pem("--client-cert", cert)?, read_pem("--client-key", key)?));
    }
    endpoint.tls_config(tls).map_err(|error| connect_error(describe_transport_error(&error)))
}

fn read_pem(flag: &str, path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|error| CliError::invalid(flag, format!("{}: {error}", path.display())))
}

/// `authorization: Bearer <token>`, marked sensitive so it is never logged.
fn bearer(token: &str) -> Result<AsciiMetadataValue> {
    let token = token.trim();
    if token.is_empty() {
        return Err(CliError::invalid("--token", "is empty"));
    }
    let mut value = AsciiMetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| CliError::invalid("--token", "must be printable ASCII"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Adds the bearer token and `x-funnel-actor` to every request.
#[derive(Debug, Clone)]
pub struct ActorInterceptor {
    actor: Option<AsciiMetadataValue>,
    authorization: Option<AsciiMetadataValue>,
}

impl Interceptor for ActorInterceptor {
    fn call(&mut self, mut request: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(actor) = &self.actor {
            request.metadata_mut().insert(ACTOR_METADATA, actor.clone());
        }
        if let Some(authorization) = &self.authorization {
            request.metadata_mut().insert("authorization", authorization.clone());
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
        let authorization = args.token.as_deref().map(bearer).transpose()?;
        let connect_error = |reason: String| CliError::Connect { server: server.clone(), reason };
        let channel =
            endpoint(args)?.connect().await.map_err(|error| connect_error(describe_transport_error(&error)))?;
        let interceptor = ActorInterceptor { actor, authorization };
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
