//! What keeps the service up under load and bad input: a global limit on
//! requests in flight that sheds the excess at once (RESOURCE_EXHAUSTED)
//! instead of queueing it, a default deadline on every unary request, and
//! INVALID_ARGUMENT instead of tonic's INTERNAL for a request body that is
//! not the message the method takes.
//!
//! A client's own deadline (`grpc-timeout`) is honoured by tonic itself,
//! outside this layer: when it passes, the handler future is dropped, and
//! with it any database work not yet committed.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prost::Message;
use tokio::sync::Semaphore;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

/// Default of [`ServerLimits::max_concurrent_requests`].
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 128;
/// Default of [`ServerLimits::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`ServerLimits::max_message_bytes`]: an import batch of 1,000
/// opportunities with long histories fits.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Health checks are never shed or timed out: an orchestrator must be able
/// to tell a busy server from a dead one.
const HEALTH_PATH_PREFIX: &str = "/grpc.health.v1.Health/";

/// How prost's decode error starts; tonic reports it as INTERNAL.
const DECODE_ERROR_PREFIX: &str = "failed to decode Protobuf message";

/// Bounds on what the server takes on at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Requests handled at once, over all connections; one more is answered
    /// RESOURCE_EXHAUSTED at once (default 128). Health checks are exempt.
    pub max_concurrent_requests: usize,
    /// Longest a unary request may run before it is answered
    /// DEADLINE_EXCEEDED and its work dropped (default 30 s). A shorter
    /// client deadline wins. Client-streaming imports are bounded by the
    /// client's deadline only: each of their batches commits on its own.
    pub request_timeout: Duration,
    /// Largest request or response message, in bytes (default 16 MiB).
    pub max_message_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Applies [`ServerLimits`] to every request of the server.
#[derive(Clone)]
pub struct LimitsLayer {
    permits: Arc<Semaphore>,
    max_concurrent_requests: usize,
    request_timeout: Duration,
    client_streaming: Arc<HashSet<String>>,
}

impl LimitsLayer {
    pub fn new(limits: &ServerLimits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            max_concurrent_requests: limits.max_concurrent_requests,
            request_timeout: limits.request_timeout,
            client_streaming: Arc::new(client_streaming_paths(funnel_proto::FILE_DESCRIPTOR_SET)),
        }
    }
}

impl<S> Layer<S> for LimitsLayer {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Limited { inner, limits: self.clone() }
    }
}

#[derive(Clone)]
pub struct Limited<S> {
    inner: S,
    limits: LimitsLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for Limited<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    RequestBody: Send + 'static,
    ResponseBody: http_body::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    ResponseBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        // The clone is ready only after poll_ready; the one that was polled is used.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let path = request.uri().path().to_owned();
        if path.starts_with(HEALTH_PATH_PREFIX) {
            return Box::pin(async move { Ok(inner.call(request).await?.map(Body::new)) });
        }
        let Ok(permit) = self.limits.permits.clone().try_acquire_owned() else {
            let limit = self.limits.max_concurrent_requests;
            tracing::warn!(%path, limit, "request shed: too many requests in flight");
            let status = Status::resource_exhausted(format!(
                "the server is handling its limit of {limit} requests; retry with backoff"
            ));
            return Box::pin(async move { Ok(status.into_http()) });
        };
        let timeout = (!self.limits.client_streaming.contains(&path)).then_some(self.limits.request_timeout);
        Box::pin(async move {
            let response = match timeout {
                Some(timeout) => match tokio::time::timeout(timeout, inner.call(request)).await {
                    Ok(response) => response?,
                    Err(_) => {
                        tracing::warn!(%path, ?timeout, "request timed out; its work was dropped");
                        let message = format!("the request took longer than the server's limit of {timeout:?}");
                        return Ok(Status::deadline_exceeded(message).into_http());
                    }
                },
                None => inner.call(request).await?,
            };
            drop(permit);
            Ok(undecodable_is_invalid_argument(response.map(Body::new)))
        })
    }
}

/// tonic answers a request body that does not decode as the method's message
/// with INTERNAL; it is the caller's mistake, so say INVALID_ARGUMENT. Only
/// trailers-only responses (status in the headers) can carry it: the request
/// is decoded before anything is sent.
fn undecodable_is_invalid_argument(response: http::Response<Body>) -> http::Response<Body> {
    let Some(status) = Status::from_header_map(response.headers()) else { return response };
    if status.code() != Code::Internal || !status.message().starts_with(DECODE_ERROR_PREFIX) {
        return response;
    }
    let reason = status.message().trim_start_matches(DECODE_ERROR_PREFIX).trim_start_matches([':', ' ']);
    Status::invalid_argument(format!("the request is not a valid message of this method: {reason}")).into_http()
}

/// `/package.Service/Method` of every method whose request is a stream.
fn client_streaming_paths(encoded_descriptor_set: &[u8]) -> HashSet<String> {
    let mut paths = HashSet::new();
    let Ok(descriptor_set) = prost_types::FileDescriptorSet::decode(encoded_descriptor_set) else { return paths };
    for file in descriptor_set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let service_name = service.name.unwrap_or_default();
            for method in service.method {
                if method.client_streaming.unwrap_or(false) {
                    paths.insert(format!("/{package}.{service_name}/{}", method.name.unwrap_or_default()));
                }
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_import_is_the_client_streaming_method() {
        let paths = client_streaming_paths(funnel_proto::FILE_DESCRIPTOR_SET);
        assert!(paths.contains("/funnel.v1.PipelineService/ImportOpportunities"), "{paths:?}");
        assert!(!paths.contains("/funnel.v1.PipelineService/CreateOpportunity"), "{paths:?}");
    }

    #[test]
    fn an_undecodable_request_is_an_invalid_argument() {
        let internal = Status::internal(format!("{DECODE_ERROR_PREFIX}: invalid wire type value: 7"));
        let response = undecodable_is_invalid_argument(internal.into_http());
        let status = Status::from_header_map(response.headers()).expect("a status in the headers");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().ends_with("invalid wire type value: 7"), "{}", status.message());

        let other = Status::internal("internal error; the cause has been logged on the server");
        let response = undecodable_is_invalid_argument(other.into_http());
        let status = Status::from_header_map(response.headers()).expect("a status in the headers");
        assert_eq!(status.code(), Code::Internal);
    }
}
