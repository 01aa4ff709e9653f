//! The tower layer that authenticates every request and checks its method
//! against the roles table before any handler (or limit) sees it.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::HeaderMap;
use tonic::Status;
use tower::{Layer, Service};
use tracing::debug;

use super::{Tokens, rules};

/// Metadata carrying the token: `authorization: Bearer <token>`.
const AUTHORIZATION: &str = "authorization";
const BEARER: &str = "bearer ";

/// Authenticates with `tokens`, or lets everything through (open mode)
/// when there are none.
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {
    tokens: Option<Arc<Tokens>>,
}

impl AuthLayer {
    /// Open mode when `tokens` is empty.
    pub fn new(tokens: Arc<Tokens>) -> Self {
        Self { tokens: (!tokens.is_empty()).then_some(tokens) }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated { inner, tokens: self.tokens.clone() }
    }
}

#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    tokens: Option<Arc<Tokens>>,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for Authenticated<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    ResponseBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Self::Response, Self::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        let Some(tokens) = &self.tokens else { return Either::Right(self.inner.call(request)) };
        let path = request.uri().path();
        if path.starts_with(rules::HEALTH) {
            return Either::Right(self.inner.call(request));
        }
        let Some(presented) = bearer_token(request.headers()) else {
            return reject(Status::unauthenticated("missing bearer token: send `authorization: Bearer <token>`"));
        };
        let Some(principal) = tokens.authenticate(presented) else {
            return reject(Status::unauthenticated("unknown bearer token"));
        };
        if !rules::may_call(&principal.role, path) {
            debug!(principal = %principal.name, role = %principal.role, method = %path, "permission denied");
            let method = path.rsplit('/').next().unwrap_or(path);
            return reject(Status::permission_denied(format!("role {} may not call {method}", principal.role)));
        }
        let principal = principal.clone();
        request.extensions_mut().insert(principal);
        Either::Right(self.inner.call(request))
    }
}

fn reject<ResponseBody: Default, Error, F>(
    status: Status,
) -> Either<Ready<Result<http::Response<ResponseBody>, Error>>, F> {
    Either::Left(ready(Ok(status.into_http())))
}

/// The token of `authorization: Bearer <token>` (scheme in any case).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let scheme = value.get(..BEARER.len())?;
    if !scheme.eq_ignore_ascii_case(BEARER) {
        return None;
    }
    let token = value[BEARER.len()..].trim();
    (!token.is_empty()).then_some(token)
}
