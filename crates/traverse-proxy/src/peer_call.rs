//! One request without a body, sent to a peer through a Pingora connector, and its answer
//! read whole within a bound: how the gateway's own calls (forwardAuth to an https server,
//! health checks over https or h2c) reach a server with the TLS and HTTP/2 handling of
//! the requests it proxies (see [`crate::transport::tls_peer`]).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::HOST;
use http::HeaderValue;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;

/// Sends `request` to `peer` and reads the answer, its body up to `max_body` bytes. The
/// request's URI is absolute; its Host header, when set, is the host asked for (else the
/// URI's authority). A connection whose exchange completed goes back to the connector's
/// pool, for at most `idle`.
pub(crate) async fn send(
    connector: &Connector,
    peer: &HttpPeer,
    request: http::request::Parts,
    max_body: usize,
    idle: Option<Duration>,
) -> Result<(http::response::Parts, Bytes), String> {
    let host = match request.headers.get(HOST) {
        Some(host) => host.clone(),
        None => {
            let authority = request.uri.authority().ok_or("a URL without a host")?;
            HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?
        }
    };
    let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let (mut session, _) = connector
        .get_http_session(peer)
        .await
        .map_err(|e| e.to_string())?;
    let mut header = RequestHeader::build(request.method, b"/", Some(request.headers.len() + 1))
        .map_err(|e| e.to_string())?;
    let target = if session.as_http2().is_some() {
        // HTTP/2 carries the host and the scheme in the target (`:authority`, `:scheme`).
        let scheme = request.uri.scheme_str().unwrap_or("http");
        let host = host.to_str().map_err(|e| e.to_string())?;
        format!("{scheme}://{host}{path}")
    } else {
        header
            .insert_header(HOST, host)
            .map_err(|e| e.to_string())?;
        path.to_owned()
    };
    header.set_uri(
        target
            .parse()
            .map_err(|_| format!("bad request target {target}"))?,
    );
    for (name, value) in &request.headers {
        if name != HOST {
            header
                .append_header(name.clone(), value.clone())
                .map_err(|e| e.to_string())?;
        }
    }
    let exchanged = async {
        let failed = |e: Box<pingora::Error>| e.to_string();
        session
            .write_request_header(Box::new(header))
            .await
            .map_err(failed)?;
        session.finish_request_body().await.map_err(failed)?;
        session.read_response_header().await.map_err(failed)?;
        let mut body = BytesMut::new();
        while let Some(chunk) = session.read_response_body().await.map_err(failed)? {
            if body.len() + chunk.len() > max_body {
                return Err(format!("the answer's body exceeds {max_body} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
    .await;
    let body = match exchanged {
        Ok(body) => body,
        Err(error) => {
            session.shutdown().await;
            return Err(error);
        }
    };
    let parts = session
        .response_header()
        .ok_or("no response")?
        .as_owned_parts();
    connector.release_http_session(session, peer, idle).await;
    Ok((parts, body))
}
