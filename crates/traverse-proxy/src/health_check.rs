//! Active health checks of Service endpoints (a Service reference's `healthCheck`).
//!
//! One background task per (endpoint address, check) in the table in force, on the
//! control runtime: it probes the endpoint every `interval` (`unhealthyInterval` while it
//! fails) and writes the verdict to that address and check's state, an atomic the
//! request path reads. A failing check takes the address out of rotation for the
//! Services with that check (not for others sending to it); the next passing one puts
//! it back. Tasks follow the published tables: a check that stays
//! keeps its task and state across reloads, one that goes away stops and lets go.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pingora::connectors::http::Connector;
use pingora::prelude::HttpPeer;
use tokio::task::JoinHandle;
use traverse_model::{CheckHealth, HealthCheck, PassiveHealth, Scheme};

use crate::host::strip_port;
use crate::multicluster::follow::error_chain;
use crate::transport::tls_peer;
use crate::{peer_call, GatewayState};

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// How checks reach endpoints: cleartext HTTP/1.1 through hyper; HTTP/2 with prior
/// knowledge (`h2c` Services) and https through Pingora's connector, as requests to
/// them go.
#[derive(Clone)]
struct Clients {
    http1: HttpClient,
    pingora: Arc<Connector>,
}

/// Redirects followed before a check fails, as Go's HTTP client (Traefik's).
const MAX_REDIRECTS: usize = 10;

/// Starts checking, on the current runtime, the endpoints of every table `state`
/// publishes from now on.
pub fn start(state: &Arc<GatewayState>) {
    tokio::spawn(follow_tables(Arc::clone(state)));
}

/// One running check, with the state it writes; stopped when dropped.
struct Running {
    verdict: Arc<CheckHealth>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// Checks are keyed by value; their TLS settings' interior mutability is the data plane's
// cache of them, which their `Hash` and `Eq` leave out.
#[allow(clippy::mutable_key_type)]
async fn follow_tables(state: Arc<GatewayState>) {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let client = Clients {
        http1: Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(http),
        pingora: Arc::new(Connector::new(None)),
    };
    let mut running: HashMap<(SocketAddr, Arc<HealthCheck>), Running> = HashMap::new();
    loop {
        // Registered before reading the table, so a table published meanwhile wakes us.
        let published = state.tables_published.notified();
        let table = state.routing();
        let mut wanted = HashMap::new();
        for backend in table.backends() {
            let Some(check) = &backend.health_check else {
                continue;
            };
            for (endpoint, _) in backend.servers.items() {
                if let (Some(health), Some(verdict)) =
                    (endpoint.shared_health(), endpoint.shared_check())
                {
                    wanted
                        .entry((endpoint.address, Arc::clone(check)))
                        .or_insert((health, verdict, Arc::clone(&backend.name)));
                }
            }
        }
        // A check whose state was replaced (it left a table this loop did not see, and
        // came back) starts again on the new one.
        running.retain(|key, task| {
            wanted
                .get(key)
                .is_some_and(|(_, verdict, _)| Arc::ptr_eq(verdict, &task.verdict))
        });
        for (key, (health, verdict, service)) in wanted {
            running.entry(key.clone()).or_insert_with(|| {
                let (address, check) = key;
                Running {
                    verdict: Arc::clone(&verdict),
                    task: tokio::spawn(check_endpoint(
                        client.clone(),
                        address,
                        check,
                        health,
                        verdict,
                        service,
                    )),
                }
            });
        }
        published.await;
    }
}

async fn check_endpoint(
    client: Clients,
    address: SocketAddr,
    check: Arc<HealthCheck>,
    health: Arc<PassiveHealth>,
    verdict: Arc<CheckHealth>,
    service: Arc<str>,
) {
    loop {
        match probe(&client, address, &check).await {
            Ok(()) => {
                if verdict.set_failing(false) {
                    // Back from a failed check: a passive ejection from the same outage ends too.
                    health.end_ejection();
                    tracing::info!(%service, endpoint = %address, "endpoint passed its health check; back in rotation");
                }
            }
            Err(error) => {
                if verdict.set_failing(true) {
                    tracing::warn!(%service, endpoint = %address, %error, "endpoint failed its health check; out of rotation");
                } else {
                    tracing::debug!(%service, endpoint = %address, %error, "endpoint still fails its health check")
                }
            }
        }
        let wait = if verdict.failing() {
            check.unhealthy_interval
        } else {
            check.interval
        };
        tokio::time::sleep(wait).await;
    }
}

/// The largest body read from a check's answer over HTTP/2 or TLS.
const MAX_CHECK_BODY: usize = 1 << 20;

/// One check: the request, redirects followed when asked, all within `timeout`.
async fn probe(client: &Clients, address: SocketAddr, check: &HealthCheck) -> Result<(), String> {
    let port = check.port.unwrap_or(address.port());
    let target = SocketAddr::new(address.ip(), port);
    let scheme = if check.scheme == Some(Scheme::Https) {
        "https"
    } else {
        "http"
    };
    let first: Uri = format!("{scheme}://{target}{}", check.path)
        .parse()
        .map_err(|e| format!("bad check URL: {e}"))?;
    let status = tokio::time::timeout(check.timeout, async {
        let (mut uri, mut method) = (first.clone(), check.method.clone());
        for _ in 0..=MAX_REDIRECTS {
            let mut request = Request::builder().method(method.clone()).uri(uri.clone());
            // The configured Host goes with the check's own host only, as Go keeps it.
            let hostname = check
                .hostname
                .as_deref()
                .filter(|_| uri.authority() == first.authority());
            if let Some(host) = hostname {
                request = request.header(header::HOST, host);
            }
            for (name, value) in &check.headers {
                request = request.header(name, value);
            }
            let request = request.body(Empty::new()).map_err(|e| e.to_string())?;
            let (status, location) = if uri.scheme_str() == Some("https") {
                let peer = https_peer(&uri, hostname, check).await?;
                send_pingora(&client.pingora, &peer, request).await?
            } else if check.scheme == Some(Scheme::H2c) {
                let mut peer = HttpPeer::new(address_of(&uri).await?, false, String::new());
                peer.options.set_http_version(2, 2);
                send_pingora(&client.pingora, &peer, request).await?
            } else {
                let response = client
                    .http1
                    .request(request)
                    .await
                    .map_err(|e| error_chain(&e))?;
                let status = response.status();
                let location = response.headers().get(header::LOCATION).cloned();
                // Read the (short) body so the connection goes back to the pool.
                let _ = response.into_body().collect().await;
                (status, location)
            };
            let Some(location) =
                location.filter(|_| check.follow_redirects && status.is_redirection())
            else {
                return Ok(status);
            };
            uri = redirected(&uri, location.to_str().unwrap_or(""))?;
            if matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
            ) && method != http::Method::HEAD
            {
                method = http::Method::GET;
            }
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    })
    .await
    .map_err(|_| format!("no answer within {:?}", check.timeout))??;
    if check.passes(status.as_u16()) {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

/// The TLS peer of an https check to `uri`: the Service's ServersTransport settings, as
/// its requests have them; verified as the transport's `serverName`, else the check's
/// `hostname`, else the URL's host (an IP verifies the certificate's IP addresses).
async fn https_peer(
    uri: &Uri,
    hostname: Option<&str>,
    check: &HealthCheck,
) -> Result<HttpPeer, String> {
    let tls = check.tls.as_deref();
    let server_name = tls
        .and_then(|t| t.server_name.as_deref())
        .or(hostname.map(strip_port))
        .or(uri.host())
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok(tls_peer(
        address_of(uri).await?,
        server_name,
        tls,
        !check.disable_http2,
    ))
}

/// The socket address of a check URL's authority (a redirect may name a host).
async fn address_of(uri: &Uri) -> Result<SocketAddr, String> {
    let authority = uri.authority().ok_or("a check URL without a host")?;
    let default_port = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let port = authority.port_u16().unwrap_or(default_port);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))
}

/// Sends one check through Pingora's connector (HTTP/2 with prior knowledge, or TLS):
/// its status and `Location`.
async fn send_pingora(
    connector: &Connector,
    peer: &HttpPeer,
    request: Request<Empty<Bytes>>,
) -> Result<(StatusCode, Option<http::HeaderValue>), String> {
    let (parts, _) = request.into_parts();
    let (answer, _) = peer_call::send(connector, peer, parts, MAX_CHECK_BODY, None).await?;
    Ok((answer.status, answer.headers.get(header::LOCATION).cloned()))
}

/// Where a `Location` sends a request made to `from`: an absolute `http` or `https` URL,
/// or a path on the same host.
fn redirected(from: &Uri, location: &str) -> Result<Uri, String> {
    let bad = || format!("cannot follow the redirect to {location:?}");
    if location.starts_with('/') && !location.starts_with("//") {
        let authority = from.authority().ok_or_else(bad)?;
        let scheme = from.scheme_str().unwrap_or("http");
        return format!("{scheme}://{authority}{location}")
            .parse()
            .map_err(|_| bad());
    }
    let uri: Uri = location.parse().map_err(|_| bad())?;
    if matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some() {
        Ok(uri)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::redirected;

    #[test]
    fn redirects_go_to_http_or_https_urls_or_paths_on_the_same_host() {
        let from: http::Uri = "http://10.0.0.1:8080/health".parse().expect("uri");
        assert_eq!(
            redirected(&from, "/ready?x=1").expect("path").to_string(),
            "http://10.0.0.1:8080/ready?x=1"
        );
        assert_eq!(
            redirected(&from, "http://other:81/h")
                .expect("absolute")
                .to_string(),
            "http://other:81/h"
        );
        assert_eq!(
            redirected(&from, "https://other/h")
                .expect("to https")
                .to_string(),
            "https://other/h"
        );
        let secure: http::Uri = "https://10.0.0.1:8443/health".parse().expect("uri");
        assert_eq!(
            redirected(&secure, "/ready").expect("path").to_string(),
            "https://10.0.0.1:8443/ready"
        );
        for refused in ["ftp://other/h", "//other/h", "relative", ""] {
            assert!(redirected(&from, refused).is_err(), "{refused}");
        }
    }
}
