//! A request id on every RPC: taken from the `x-request-id` metadata (or
//! made up when absent or unusable), recorded on a span that covers the
//! handler and the response stream, so every log line of the request names
//! it, and echoed in the response metadata so a client can quote it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::HeaderValue;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::Span;
use tracing::instrument::{Instrument, Instrumented};

/// Metadata key of the request id, both ways.
pub const REQUEST_ID_METADATA: &str = "x-request-id";

/// Longest request id taken from a client; a longer one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id, also put in the request's extensions for handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub HeaderValue);

#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for RequestIdService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
{
    type Response = http::Response<InSpan<ResponseBody>>;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        let request_id =
            request.headers().get(REQUEST_ID_METADATA).filter(|value| usable(value)).cloned().unwrap_or_else(generate);
        let span = tracing::info_span!(
            "rpc",
            request_id = %String::from_utf8_lossy(request_id.as_bytes()),
            method = %request.uri().path(),
        );
        funnel_telemetry::set_remote_parent(&span, request.headers());
        request.extensions_mut().insert(RequestId(request_id.clone()));
        let inner = self.inner.call(request).instrument(span.clone());
        RequestIdFuture { inner, request_id: Some(request_id), span }
    }
}

/// Printable ASCII of a sensible length: it goes into logs verbatim.
fn usable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID_LEN && bytes.iter().all(|byte| byte.is_ascii_graphic())
}

fn generate() -> HeaderValue {
    let id = uuid::Uuid::now_v7().simple().to_string();
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("unknown"))
}

pin_project! {
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        request_id: Option<HeaderValue>,
        span: Span,
    }
}

impl<F, ResponseBody, Error> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<http::Response<ResponseBody>, Error>>,
{
    type Output = Result<http::Response<InSpan<ResponseBody>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some(request_id) = this.request_id.take() {
            response.headers_mut().insert(REQUEST_ID_METADATA, request_id);
        }
        let span = this.span.clone();
        Poll::Ready(Ok(response.map(|inner| InSpan { inner, span })))
    }
}

pin_project! {
    /// A response body polled inside the request's span, so that what a
    /// streaming response logs names the request too.
    pub struct InSpan<B> {
        #[pin]
        inner: B,
        span: Span,
    }
}

impl<B: Body> Body for InSpan<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let _entered = this.span.enter();
        this.inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
