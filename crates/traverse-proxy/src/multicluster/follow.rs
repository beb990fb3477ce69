//! The parent's background work per child: follow its advertisement stream, resolve
//! its address, and check its health. Runs on the control runtime, off the request path.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use traverse_config::ChildHealthCheck;

use super::advertisement::HEARTBEAT;
use super::{Advertisement, Child, Children, ADVERTISEMENT_PATH, HEALTH_PATH};

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Longest an advertisement line may be; a child sends far less.
const MAX_LINE: usize = 1024 * 1024;
/// Reconnect backoff bounds.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// Starts following every child on the current runtime.
pub fn start(children: &Arc<Children>, health: &ChildHealthCheck) {
    for child in children.all() {
        let client = client(child, health);
        tokio::spawn(follow(
            Arc::clone(children),
            Arc::clone(child),
            client.clone(),
        ));
        tokio::spawn(check(
            Arc::clone(children),
            Arc::clone(child),
            client.clone(),
            health.clone(),
        ));
    }
}

/// Keeps the child's advertisement current: one long-lived request at a time, resumed
/// from the last version after any failure. The last advertisement stays in force
/// while disconnected; health checks decide whether the child gets traffic.
async fn follow(children: Arc<Children>, child: Arc<Child>, client: HttpClient) {
    let mut retry = FIRST_RETRY;
    loop {
        let mut reached = false;
        match stream(&children, &child, &client, &mut reached).await {
            Ok(()) => {
                tracing::debug!(child = %child.name, "advertisement stream ended; reconnecting")
            }
            Err(error) => {
                if child.set_connected(false) {
                    tracing::warn!(child = %child.name, address = %child.address, %error, "advertisement stream lost; keeping the last advertisement");
                } else {
                    tracing::debug!(child = %child.name, %error, "advertisement stream unavailable");
                }
            }
        }
        if reached {
            retry = FIRST_RETRY;
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// One client per child: each may have its own TLS settings.
fn client(child: &Child, health: &ChildHealthCheck) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(health.timeout));
    let builder = match &child.tls {
        Some(tls) => HttpsConnectorBuilder::new()
            .with_tls_config(tls.client_config.clone())
            .https_only()
            .with_server_name_resolver(FixedServerNameResolver::new(tls.verified_name.clone())),
        // Cleartext: the TLS half is never used.
        None => HttpsConnectorBuilder::new()
            .with_tls_config(cleartext_only())
            .https_or_http(),
    };
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(builder.enable_http1().wrap_connector(http))
}

/// A TLS configuration that trusts nothing, for connectors that only speak cleartext.
fn cleartext_only() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map(|b| {
            b.with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
        // The ring provider supports the default versions.
        .unwrap_or_else(|_| {
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        })
}

/// `http://` or `https://` and the child's address.
fn base_uri(child: &Child) -> String {
    let scheme = if child.tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{}", child.address)
}

/// One stream request; `reached` tells the caller the child answered.
async fn stream(
    children: &Children,
    child: &Child,
    client: &HttpClient,
    reached: &mut bool,
) -> Result<(), String> {
    resolve(child).await?;
    let mut uri = format!("{}{ADVERTISEMENT_PATH}", base_uri(child));
    if let Some(version) = child.version() {
        uri.push_str("?since=");
        uri.push_str(&version);
    }
    let uri: Uri = uri.parse().map_err(|e| format!("bad address: {e}"))?;
    let request = Request::get(uri)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(3 * HEARTBEAT, client.request(request))
        .await
        .map_err(|_| "no response".to_owned())?
        .map_err(|e| error_chain(&e))?;
    if response.status() != StatusCode::OK {
        return Err(format!("answered {}", response.status()));
    }
    if !child.set_connected(true) {
        tracing::info!(child = %child.name, address = %child.address, "following the child's advertisements");
    }
    *reached = true;
    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    loop {
        let frame = tokio::time::timeout(3 * HEARTBEAT, body.frame())
            .await
            .map_err(|_| "no heartbeat from the child".to_owned())?;
        let Some(frame) = frame else {
            return Ok(());
        };
        let frame = frame.map_err(|e| error_chain(&e))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line = buffer.split_to(end + 1);
            let line = &line[..end];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue; // heartbeat
            }
            match serde_json::from_slice::<Advertisement>(line) {
                Ok(advertisement) => children.advertised(child, advertisement),
                Err(error) => return Err(format!("unreadable advertisement: {error}")),
            }
        }
        if buffer.remaining() > MAX_LINE {
            return Err("advertisement line too long".into());
        }
    }
}

/// Active health checks, every `interval`, each bounded by `timeout`.
async fn check(
    children: Arc<Children>,
    child: Arc<Child>,
    client: HttpClient,
    health: ChildHealthCheck,
) {
    let thresholds = (health.unhealthy_threshold, health.healthy_threshold);
    let mut ticker = tokio::time::interval(health.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let passed = match probe(&child, &client, health.timeout).await {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(child = %child.name, %error, "health check failed");
                false
            }
        };
        children.checked(&child, passed, thresholds);
    }
}

async fn probe(child: &Child, client: &HttpClient, timeout: Duration) -> Result<(), String> {
    resolve(child).await?;
    let uri: Uri = format!("{}{HEALTH_PATH}", base_uri(child))
        .parse()
        .map_err(|e| format!("bad address: {e}"))?;
    let request = Request::get(uri)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(timeout, async {
        let response = client.request(request).await.map_err(|e| error_chain(&e))?;
        let status = response.status();
        // Read the (short) body so the connection goes back to the pool.
        let _ = response.into_body().collect().await;
        Ok::<_, String>(status)
    })
    .await
    .map_err(|_| format!("no answer within {timeout:?}"))??;
    if response == StatusCode::OK {
        Ok(())
    } else {
        Err(format!("answered {response}"))
    }
}

/// Resolves the child's address (DNS names may move; the request path never resolves).
async fn resolve(child: &Child) -> Result<(), String> {
    let mut addresses = tokio::net::lookup_host(child.address.as_str())
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", child.address))?;
    let address = addresses
        .next()
        .ok_or_else(|| format!("{} resolves to no address", child.address))?;
    child.set_resolved(address);
    Ok(())
}

/// An error with its causes, on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
