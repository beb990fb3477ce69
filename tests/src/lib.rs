//! End-to-end harness for Traverse: starts the real `traverse` binary on free ports with
//! a temporary configuration, test upstreams that record what they receive, and a small
//! HTTP/1.1 client. Everything talks over real sockets and every wait has a deadline.
//!
//! The binary is not built by this package: run `cargo build -p traverse` first (the
//! suite looks for it beside the test executable, or at `TRAVERSE_BIN`).

pub mod captured;
pub mod client;
pub mod collector;
pub mod gateway;
pub mod grpc;
pub mod http1;
pub mod kmock;
pub mod pki;
pub mod prometheus;
pub mod tls_front;
pub mod upstream;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use client::{
    connect, http_get, http_request, send, try_get, ClientError, Connection, Response,
};
pub use collector::Collector;
pub use gateway::Gateway;
pub use kmock::Kmock;
pub use tls_front::TlsFront;
pub use upstream::{Recorded, Upstream};

/// `$TRAVERSE_TOOLS/bin/<name>` (default `TRAVERSE_TOOLS`: `~/.cache/traverse/tools`),
/// where scripts/install-prereqs.sh puts the tests' peers; it may not exist.
pub fn tool(name: &str) -> std::path::PathBuf {
    let tools = match std::env::var_os("TRAVERSE_TOOLS") {
        Some(tools) => std::path::PathBuf::from(tools),
        None => std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache")
            .join("traverse")
            .join("tools"),
    };
    tools.join("bin").join(name)
}

/// A free TCP port on 127.0.0.1 for the gateway to listen on (or for nothing to listen on).
///
/// Ports are taken below the kernel's ephemeral range, walking a per-process sequence, so
/// that neither an upstream bound to port 0 nor a client's source port can take a port
/// between the moment it is picked here and the moment the gateway binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = (10_000u32, ephemeral_low().clamp(12_000, 65_535));
    let span = high - low;
    // Different test processes start at different points of the range.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + (start + step) % span;
        let port = u16::try_from(port).expect("ports fit u16");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 127.0.0.1:{low}..{high}");
}

/// The first port of the kernel's ephemeral range (Linux), 32768 when unknown.
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A configuration with one entrypoint `web`, the admin API and the watched file
/// provider; `extra` is appended (top-level keys other than those three).
pub fn config(extra: &str) -> String {
    config_with_web("", extra)
}

/// [`config`] whose `web` entrypoint also has `settings`: YAML lines indented by four
/// spaces, each ending in a newline (`"    maxConnections: 2\n"`).
pub fn config_with_web(settings: &str, extra: &str) -> String {
    format!(
        "entryPoints:
  web:
    address: \"{{web}}\"
{settings}admin:
  address: \"{{admin}}\"
providers:
  file:
    directory: manifests
    watch: true
{extra}"
    )
}

/// A Service `name` in namespace `default` (port 80, named `http`) and the EndpointSlice
/// behind it with one ready endpoint per address. Endpoints of one slice share a port.
pub fn service(name: &str, endpoints: &[SocketAddr]) -> String {
    let port = endpoints.first().map_or(1, SocketAddr::port);
    assert!(
        endpoints.iter().all(|e| e.port() == port),
        "the endpoints of one EndpointSlice share a port: {endpoints:?}"
    );
    let addresses = endpoints
        .iter()
        .map(|e| format!("\"{}\"", e.ip()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  ports:
    - name: http
      port: 80
      targetPort: {port}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  labels:
    kubernetes.io/service-name: {name}
addressType: IPv4
ports:
  - name: http
    port: {port}
endpoints:
  - addresses: [{addresses}]
    conditions:
      ready: true
"
    )
}

/// An IngressRoute `name` (namespace `default`, every entrypoint) with one route from
/// `rule` to port 80 of Service `service`.
pub fn route(name: &str, rule: &str, service: &str) -> String {
    format!(
        "apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata:
  name: {name}
spec:
  routes:
    - match: {rule}
      services:
        - name: {service}
          port: 80
"
    )
}

/// Calls `probe` every 20 ms until it returns `Some`; panics naming `what` when `deadline`
/// passes first.
pub async fn eventually<T>(
    what: &str,
    deadline: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= until {
            panic!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Diagnostics of an `/api/routes` answer.
pub fn diagnostics(routes_json: &serde_json::Value) -> Vec<serde_json::Value> {
    routes_json
        .get("diagnostics")
        .and_then(|d| d.as_array())
        .cloned()
        .unwrap_or_default()
}

/// Routes of an `/api/routes` answer.
pub fn routes(routes_json: &serde_json::Value) -> Vec<serde_json::Value> {
    routes_json
        .get("routes")
        .and_then(|d| d.as_array())
        .cloned()
        .unwrap_or_default()
}

/// A string field of a JSON object, or "".
pub fn field<'a>(value: &'a serde_json::Value, name: &str) -> &'a str {
    value.get(name).and_then(|v| v.as_str()).unwrap_or("")
}
