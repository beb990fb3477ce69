//! What one request did, as every signal reads it.
//!
//! The data plane fills a [`RequestRecord`] once per request (and an [`AttemptRecord`]
//! once per upstream attempt), and the span, the metrics and the access log are all
//! derived from that one value, so the three signals cannot disagree about a scheme, a
//! status or a service. The records borrow: building one copies nothing.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Uri, Version};
use opentelemetry::trace::{SpanId, TraceId};

/// One finished request.
#[derive(Clone, Copy)]
pub struct RequestRecord<'a> {
    pub entry_point: &'a Arc<str>,
    /// `url.scheme`: `https` on a TLS listener, else `http`.
    pub scheme: &'static str,
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub version: Version,
    /// The host the client asked for, without a port (the access log's `RequestHost`).
    pub host: Option<&'a str>,
    /// The port the client asked for, else the port it connected to (`server.port`).
    pub port: Option<u16>,
    /// The TLS connection the request came over; `None` on cleartext.
    pub tls: Option<TlsRecord<'a>>,
    pub request_headers: &'a HeaderMap,
    /// `None` when no response header was sent.
    pub response_headers: Option<&'a HeaderMap>,
    pub client: Option<SocketAddr>,
    /// The matched router; `None` when no route matched.
    pub router: Option<&'a Arc<str>>,
    /// `http.route`: the matched rule's path template (`/api/*`); `None` when no route
    /// matched. Span names, the metric label and the access log all read it here.
    pub route: Option<&'a Arc<str>>,
    /// The Service port, or on a parent the uplink.
    pub service: Option<&'a Arc<str>>,
    /// The status sent (or, for a client that went away, 499).
    pub status: u16,
    /// What ended the request, when something failed.
    pub failure: Option<Failure<'a>>,
    pub start: SystemTime,
    pub duration: Duration,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Upstream attempts made (0 when none was).
    pub attempts: u32,
    /// The last attempt's upstream, when there was one.
    pub upstream: Option<Upstream>,
    /// The request's SERVER span, when traced.
    pub span: Option<SpanIds>,
    /// The user an authentication middleware identified (`ClientUsername`).
    pub client_username: Option<&'a str>,
    /// The middleware that answered the request itself (`namespace/name`).
    pub middleware: Option<&'a str>,
}

/// What the TLS handshake of the request's connection settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsRecord<'a> {
    /// `tls.protocol.version`: `1.2` or `1.3`.
    pub version: &'static str,
    /// The name the client asked for in the handshake (SNI).
    pub server_name: Option<&'a str>,
}

/// `server.address` of a request: on TLS the name of the handshake (SNI, which
/// semantic conventions fold into `server.address`), else the requested host.
pub fn server_address<'a>(host: Option<&'a str>, tls: Option<&TlsRecord<'a>>) -> Option<&'a str> {
    tls.and_then(|tls| tls.server_name).or(host)
}

/// The upstream of the last attempt.
#[derive(Debug, Clone, Copy)]
pub struct Upstream {
    pub address: SocketAddr,
    /// `http`, `https` or `h2c`.
    pub scheme: &'static str,
    /// `None` when no response header arrived.
    pub status: Option<u16>,
    /// From the attempt's start to the end of the request; `None` when it failed to connect.
    pub duration: Option<Duration>,
}

/// What failed, bounded for attributes (`kind`) and readable for people (`detail`).
#[derive(Clone, Copy)]
pub struct Failure<'a> {
    /// `error.type`, e.g. `ConnectRefused`.
    pub kind: &'static str,
    pub detail: &'a (dyn fmt::Display + Sync),
}

/// A span's identity, for exemplars and access log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanIds {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// One ended upstream attempt.
#[derive(Clone, Copy)]
pub struct AttemptRecord<'a> {
    pub service: Option<&'a Arc<str>>,
    /// `http.route` of the request the attempt serves.
    pub route: Option<&'a Arc<str>>,
    pub method: &'a Method,
    /// From 1.
    pub number: u32,
    pub endpoint: SocketAddr,
    /// `None` when no response header arrived.
    pub status: Option<u16>,
    /// What ended the attempt, when no response header arrived.
    pub failure: Option<Failure<'a>>,
    pub duration: Duration,
}

impl AttemptRecord<'_> {
    /// The CLIENT span's name: as the request's, `{method} {http.route}`.
    pub fn span_name(&self) -> String {
        span_name(self.method, self.route)
    }
}

impl<'a> RequestRecord<'a> {
    /// The method as semantic conventions bound it.
    pub fn method_name(&self) -> &'static str {
        method_name(self.method)
    }

    /// `network.protocol.version`.
    pub fn protocol(&self) -> &'static str {
        protocol_version(self.version)
    }

    /// `server.address`: see [`server_address`].
    pub fn server_address(&self) -> Option<&'a str> {
        server_address(self.host, self.tls.as_ref())
    }

    /// `{method} {http.route}`, the name of the request's spans; the method alone
    /// when no route matched.
    pub fn span_name(&self) -> String {
        span_name(self.method, self.route)
    }

    /// Path and query as received.
    pub fn path_and_query(&self) -> &str {
        self.uri
            .path_and_query()
            .map_or_else(|| self.uri.path(), |p| p.as_str())
    }
}

impl fmt::Debug for Failure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// `method` as the HTTP semantic conventions want it: the known methods, everything
/// else `_OTHER`, so a client cannot make span names and labels unbounded.
pub fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => OTHER_METHOD,
    }
}

/// `{method} {route}` as the HTTP semantic conventions name server and client spans
/// (the method bounded by [`method_name`]); the method alone without a route.
pub fn span_name(method: &Method, route: Option<&Arc<str>>) -> String {
    match route {
        // Pushed, not `format!`: two spans of every traced request are named.
        Some(route) => {
            let method = method_name(method);
            let mut name = String::with_capacity(method.len() + 1 + route.len());
            name.push_str(method);
            name.push(' ');
            name.push_str(route);
            name
        }
        None => method_name(method).to_owned(),
    }
}

/// The `http.request.method` of a method outside the standard set.
pub const OTHER_METHOD: &str = "_OTHER";

/// `network.protocol.version` of an HTTP version.
pub fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// An IP address as text, on the stack. Every request writes its client's (forwarding
/// headers, span attributes); `Display` through `format!` cost about 2,000 instructions
/// for an IPv4 address, this about a hundred.
pub struct IpText {
    bytes: [u8; IpText::CAPACITY],
    len: u8,
}

impl IpText {
    /// The longest IPv6 text: eight groups, or six and an IPv4 tail (45 bytes).
    const CAPACITY: usize = 45;

    pub fn new(ip: IpAddr) -> IpText {
        let mut text = IpText {
            bytes: [0; IpText::CAPACITY],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => {
                let mut digits = itoa::Buffer::new();
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b".");
                    }
                    text.push(digits.format(octet).as_bytes());
                }
            }
            // Rare, and its compressed form (`::`, an IPv4 tail) is std's to get right.
            IpAddr::V6(v6) => {
                use std::io::Write;
                let mut rest = &mut text.bytes[..];
                let _ = write!(rest, "{v6}");
                let left = rest.len();
                text.len = (IpText::CAPACITY - left) as u8;
            }
        }
        text
    }

    fn push(&mut self, part: &[u8]) {
        let start = usize::from(self.len);
        self.bytes[start..start + part.len()].copy_from_slice(part);
        self.len += part.len() as u8;
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("ASCII digits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_is_display() {
        for ip in [
            "0.0.0.0",
            "10.1.20.255",
            "255.255.255.255",
            "::",
            "::1",
            "2001:db8::8a2e:370:7334",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:192.168.100.200",
        ] {
            let ip: IpAddr = ip.parse().expect("address");
            assert_eq!(IpText::new(ip).as_str(), ip.to_string());
        }
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..1000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let ip = IpAddr::from((rng as u32).to_be_bytes());
            assert_eq!(IpText::new(ip).as_str(), ip.to_string());
        }
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(method_name(&Method::GET), "GET");
        let custom = Method::from_bytes(b"PURGE").expect("method");
        assert_eq!(method_name(&custom), "_OTHER");
    }

    #[test]
    fn span_names_bound_the_method() {
        let custom = Method::from_bytes(b"PURGE").expect("method");
        assert_eq!(
            span_name(&custom, Some(&Arc::from("/api/*"))),
            "_OTHER /api/*"
        );
        assert_eq!(span_name(&Method::GET, Some(&Arc::from("/x"))), "GET /x");
        assert_eq!(span_name(&Method::POST, None), "POST");
    }

    #[test]
    fn the_handshake_name_is_the_server_address_on_tls() {
        let tls = |server_name| TlsRecord {
            version: "1.3",
            server_name,
        };
        assert_eq!(server_address(Some("host.test"), None), Some("host.test"));
        assert_eq!(
            server_address(Some("host.test"), Some(&tls(Some("sni.test")))),
            Some("sni.test")
        );
        assert_eq!(
            server_address(Some("host.test"), Some(&tls(None))),
            Some("host.test")
        );
        assert_eq!(server_address(None, None), None);
    }

    #[test]
    fn protocol_versions() {
        assert_eq!(protocol_version(Version::HTTP_10), "1.0");
        assert_eq!(protocol_version(Version::HTTP_11), "1.1");
        assert_eq!(protocol_version(Version::HTTP_2), "2");
    }
}
