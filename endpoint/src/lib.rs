//! The HTTP side of `aws-role-endpoint`: one connection served by hyper, each request
//! answered by `aws_role::endpoint::answer`. A library so that the fuzz target drives the
//! very code the daemon runs, raw bytes in, response out (fuzz/fuzz_targets/endpoint.rs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_role::endpoint::{answer, Answer, Request as Asked};
use aws_role::store::Store;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

/// How long a client may take to send its request head, and how long a connection may
/// stay open at all (keep-alive included).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// The largest request head read: a credentials request is a few hundred bytes.
pub const MAX_REQUEST: usize = 16 * 1024;

/// Serves one connection from `remote`, whose socket belongs to `caller` (or why that is
/// unknown), until the client closes it, a time limit passes or the request is refused.
pub async fn serve_connection<I>(
    io: I,
    store: Arc<Store>,
    caller: Result<u32, String>,
    remote: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let a = respond(&store, &req, caller.clone());
        async move { Ok::<_, std::convert::Infallible>(a) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_REQUEST)
        .serve_connection(TokioIo::new(io), service);
    match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("connection from {remote}: {e}"),
        Err(_) => tracing::debug!("connection from {remote}: closed after {CONNECTION_LIFETIME:?}"),
    }
}

/// One request: what the library decides, as an HTTP response; logged without secrets.
pub fn respond(
    store: &Store,
    req: &Request<Incoming>,
    caller: Result<u32, String>,
) -> Response<Full<Bytes>> {
    let h = req.headers();
    let mut auth = h.get_all(AUTHORIZATION).iter();
    let authorization = match (auth.next(), auth.next()) {
        (Some(v), None) => Some(v.as_bytes()),
        _ => None,
    };
    let has_body = h.contains_key(TRANSFER_ENCODING)
        || h.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
    let target = req.uri().path_and_query().map_or("", |p| p.as_str());
    let asked = Asked {
        method: req.method().as_str(),
        target,
        authorization,
        has_body,
    };
    let Answer { status, body, log } = answer(store, &asked, caller, SystemTime::now());
    if status == 200 {
        tracing::info!("{log}");
    } else {
        tracing::warn!("{status}: {log}");
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
