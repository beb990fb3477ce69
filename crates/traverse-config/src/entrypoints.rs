//! Listeners for client traffic and the admin listener.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tls::ListenerTls;

/// A listener for client traffic.
///
/// `address` is required, so this struct cannot take its defaults from an `impl Default`
/// (serde would fill a missing address with it); each optional field names its default
/// below, and [`EntryPoint::new`] applies the same ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPoint {
    /// `host:port` to listen on, e.g. `0.0.0.0:8080`; Traefik's `:8080` listens on every
    /// interface.
    pub address: String,
    /// Accept cleartext HTTP/2 (prior knowledge) beside HTTP/1.1.
    #[serde(default = "EntryPoint::default_h2c")]
    pub h2c: bool,
    #[serde(default)]
    pub timeouts: EntryPointTimeouts,
    #[serde(default)]
    pub forwarded_headers: ForwardedHeaders,
    /// What to do with the W3C trace context clients send.
    #[serde(default)]
    pub trace_context: TrustPolicy,
    /// An uplink entrypoint (children only): parents forward here, and it serves the
    /// advertisement of this child's Uplinks. Routes reach it only by naming it.
    #[serde(default)]
    pub uplink: bool,
    /// Terminate TLS (and with `clientCA`, require client certificates).
    pub tls: Option<ListenerTls>,
    /// Traefik's `http` section of an entrypoint: redirections.
    #[serde(default)]
    pub http: EntryPointHttp,
    /// Longest request-target, in bytes; a longer one is answered 414.
    #[serde(default = "EntryPoint::default_max_uri_length")]
    pub max_uri_length: usize,
    /// Largest request header section (request line and fields), in bytes; a larger one is
    /// answered 431. Above Pingora's own limit (1 MiB) Pingora answers 400 first.
    #[serde(default = "EntryPoint::default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most connections open at once; more are closed as soon as they are accepted
    /// (counted on `/api/entrypoints`). Unlimited when absent.
    #[serde(default)]
    pub max_connections: Option<u64>,
    /// Largest request body, in bytes: a larger `Content-Length` is answered 413 before
    /// anything is forwarded; a chunked body is cut off with 413 once it grows past it.
    /// Unlimited when absent.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
}

impl EntryPoint {
    /// A listener on `address` with every other setting at its default.
    pub fn new(address: impl Into<String>) -> EntryPoint {
        EntryPoint {
            address: address.into(),
            h2c: EntryPoint::default_h2c(),
            timeouts: EntryPointTimeouts::default(),
            forwarded_headers: ForwardedHeaders::default(),
            trace_context: TrustPolicy::default(),
            uplink: false,
            tls: None,
            http: EntryPointHttp::default(),
            max_uri_length: EntryPoint::default_max_uri_length(),
            max_header_bytes: EntryPoint::default_max_header_bytes(),
            max_connections: None,
            max_body_bytes: None,
        }
    }

    /// The address to bind: Traefik's `:port` (no host) is every interface.
    pub fn listen_address(&self) -> String {
        listen_address(&self.address)
    }

    /// Pingora's own limit on a request header section: what Traverse's limits must stay under.
    pub const PINGORA_MAX_HEADER_BYTES: usize = 1024 * 1024;

    fn default_max_uri_length() -> usize {
        8 * 1024
    }

    fn default_max_header_bytes() -> usize {
        64 * 1024
    }

    fn default_h2c() -> bool {
        true
    }
}

/// `address` with Traefik's host-less `:port` made `0.0.0.0:port` (every IPv4 interface:
/// an IPv6 wildcard would fail where IPv6 is disabled).
pub fn listen_address(address: &str) -> String {
    match address.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => address.to_owned(),
    }
}

/// An entrypoint's HTTP settings, in Traefik's static shape (`entryPoints.NAME.http`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointHttp {
    pub redirections: Redirections,
}

/// Redirections of every request an entrypoint receives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Redirections {
    /// Send every request to another entrypoint (typically `web` to `websecure`).
    pub entry_point: Option<EntryPointRedirect>,
}

/// `redirections.entryPoint`: the request's URL on another entrypoint's port and scheme.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointRedirect {
    /// The entrypoint name to redirect to, or a port written `:443`.
    pub to: String,
    /// Scheme of the new URL (Traefik's default: `https`).
    #[serde(default = "EntryPointRedirect::default_scheme")]
    pub scheme: String,
    /// 301/308 when true (the default), else 302/307.
    #[serde(default = "EntryPointRedirect::default_permanent")]
    pub permanent: bool,
    /// Accepted for Traefik compatibility; the redirect answers every request of the
    /// entrypoint, as Traefik's (priority MaxInt-1) does unless a router outranks it.
    pub priority: Option<i64>,
}

impl EntryPointRedirect {
    fn default_scheme() -> String {
        "https".to_owned()
    }

    fn default_permanent() -> bool {
        true
    }
}

/// How an entrypoint treats the trace context its clients send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustPolicy {
    /// Join the caller's trace: the inbound context becomes the parent.
    #[default]
    Continue,
    /// Start a new trace and link to the caller's, for untrusted edges that
    /// should not control our trace ids or sampling but stay correlatable.
    NewAndLink,
    /// Start a new trace and drop the caller's context entirely.
    Ignore,
}

/// Downstream (client-side) timeouts of an entrypoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryPointTimeouts {
    /// Longest wait for the next read from the client (headers or body).
    #[serde(with = "humantime_serde")]
    pub read: Duration,
    /// Longest wait for the client to accept a write.
    #[serde(with = "humantime_serde")]
    pub write: Duration,
    /// How long an idle keep-alive client connection is kept open (at most `read`: Pingora
    /// times the wait for a request and the reading of its header with one timer).
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
}

impl Default for EntryPointTimeouts {
    fn default() -> Self {
        EntryPointTimeouts {
            read: Duration::from_secs(60),
            write: Duration::from_secs(60),
            idle: Duration::from_secs(90),
        }
    }
}

/// Whether inbound `X-Forwarded-*` headers are trusted or replaced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardedHeaders {
    /// Trust `X-Forwarded-*` from every client (only behind another proxy you control).
    pub insecure: bool,
    /// Clients (IPs or CIDRs) whose `X-Forwarded-*` headers are kept and extended.
    #[serde(rename = "trustedIPs")]
    pub trusted_ips: Vec<String>,
}

/// The admin listener: health probes and the read-only API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Admin {
    pub address: String,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            address: "127.0.0.1:9000".to_owned(),
        }
    }
}
