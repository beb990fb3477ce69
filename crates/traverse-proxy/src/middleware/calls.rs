//! The HTTP calls middlewares make on a request's behalf (error pages, forwardAuth):
//! one pooled client for the process, a deadline and a bound on what is read. Calls to
//! https servers go through Pingora's connector with the TLS settings Service traffic
//! uses ([`crate::transport::tls_peer`]), so both trust and present the same things.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pingora::connectors::http::Connector;
use traverse_model::ClientTls;

use crate::transport::tls_peer;
use crate::{clock, peer_call};

type CallClient = Client<HttpConnector, Empty<Bytes>>;

/// Made on first use.
fn client() -> &'static CallClient {
    static CLIENT: OnceLock<CallClient> = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
}

/// Sends `request` (plain HTTP) and reads its answer, within `deadline` and `max_body`.
pub(super) async fn call(
    request: http::Request<Empty<Bytes>>,
    deadline: Duration,
    max_body: usize,
) -> Result<(http::response::Parts, Bytes), String> {
    let exchange = async {
        let response = client()
            .request(request)
            .await
            .map_err(|e| error_chain(&e))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((parts, body))
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| format!("no answer within {deadline:?}"))?
}

/// How long an idle TLS connection to a server is kept for the next call (Go's default,
/// which Traefik's calls use).
const TLS_IDLE: Duration = Duration::from_secs(90);

/// How long a resolved server name is used before it is resolved again, so that a call
/// resolves only when that is stale (the hyper client resolves per new connection).
const RESOLVED_FOR_MS: u64 = 10_000;

/// Names kept resolved at most; more are not expected from one configuration.
const MAX_RESOLVED: usize = 1024;

/// Made on first use.
fn tls_connector() -> &'static Connector {
    static CONNECTOR: OnceLock<Connector> = OnceLock::new();
    CONNECTOR.get_or_init(|| Connector::new(None))
}

/// Sends `request` (its URL `https`) with `tls`, and reads its answer, within
/// `deadline` and `max_body`. The server is verified as the URL's host unless `tls`
/// names another; HTTP/2 is used when the server offers it, as Go's client does.
pub(super) async fn call_tls(
    request: http::Request<Empty<Bytes>>,
    tls: &ClientTls,
    deadline: Duration,
    max_body: usize,
) -> Result<(http::response::Parts, Bytes), String> {
    let exchange = async {
        let (parts, _) = request.into_parts();
        let authority = parts.uri.authority().ok_or("a URL without a host")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let address = resolve(host, authority.port_u16().unwrap_or(443)).await?;
        let server_name = tls.server_name.clone().unwrap_or_else(|| host.to_owned());
        let peer = tls_peer(address, server_name, Some(tls), true);
        peer_call::send(tls_connector(), &peer, parts, max_body, Some(TLS_IDLE)).await
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| format!("no answer within {deadline:?}"))?
}

/// The address of `host` and `port`: an IP as it is; a name from its last resolution
/// when that is recent.
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    type Resolved = Mutex<HashMap<(String, u16), (u64, SocketAddr)>>;
    static RESOLVED: OnceLock<Resolved> = OnceLock::new();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let resolved = RESOLVED.get_or_init(Resolved::default);
    let key = (host.to_owned(), port);
    let now = clock::now_ms();
    // A cache: one left half-updated by a panic is still valid.
    let known = resolved
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .filter(|(at, _)| now.saturating_sub(*at) < RESOLVED_FOR_MS)
        .map(|(_, address)| *address);
    if let Some(address) = known {
        return Ok(address);
    }
    let address = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let mut resolved = resolved.lock().unwrap_or_else(PoisonError::into_inner);
    if resolved.len() >= MAX_RESOLVED {
        resolved.clear();
    }
    resolved.insert(key, (now, address));
    Ok(address)
}

/// An error and its causes, which hyper's errors keep apart.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[tokio::test]
    async fn addresses_are_taken_as_they_are_and_names_resolved() {
        assert_eq!(
            resolve("10.0.0.1", 8443).await,
            Ok("10.0.0.1:8443".parse().expect("address"))
        );
        assert_eq!(
            resolve("::1", 443).await,
            Ok("[::1]:443".parse().expect("address"))
        );
        let local = resolve("localhost", 80).await.expect("localhost resolves");
        assert!(local.ip().is_loopback() && local.port() == 80, "{local}");
        // Again, from what was resolved.
        assert_eq!(resolve("localhost", 80).await, Ok(local));
    }
}
