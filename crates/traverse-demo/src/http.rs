//! The little HTTP/1 the demo and `doctor` need: an accept loop for in-process servers and a
//! one-request client. A fresh connection per request keeps every request independent
//! (no pooled connection to a gateway that was just killed).
//!
//! Public because the binary's `doctor` asks the admin API with the same client.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Binds `addr` for `what`; a taken port is named together with its role.
pub async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "port {} ({what}, {addr}) is already in use: stop what listens there, or \
                 run `traverse demo --examples <dir>` with configurations using other ports",
                addr.port()
            )
        } else {
            anyhow::Error::new(error).context(format!("listening on {addr} ({what})"))
        }
    })
}

/// Serves every connection accepted on `listener` with `handler`, until the runtime stops.
pub fn serve<H, F>(listener: TcpListener, handler: H) -> JoinHandle<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors or similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let response = handler(request);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A response with a body, built without fallible builders.
pub fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// A response read to its end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// `GET path` on `addr`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<Reply> {
    send(addr, Method::GET, path, &[], Bytes::new(), timeout).await
}

/// Sends one request on a new connection and reads the whole response within `timeout`.
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&'static str, &str)],
    body: Bytes,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    let mut builder = Request::builder()
        .method(method.clone())
        .uri(path)
        .header(HOST, addr.to_string());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Full::new(body))
        .with_context(|| format!("building {method} {path}"))?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let response = sender.send_request(request).await?;
        let (head, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        anyhow::Ok(Reply {
            status: head.status,
            headers: head.headers,
            body,
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(reply) => reply.with_context(|| format!("{method} http://{addr}{path}")),
        Err(_) => anyhow::bail!("{method} http://{addr}{path}: no response within {timeout:?}"),
    }
}
