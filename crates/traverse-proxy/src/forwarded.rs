//! `X-Forwarded-*` handling: trust what a known proxy sent, replace what anyone else sent.

use std::net::IpAddr;

use http::HeaderValue;
use ipnet::IpNet;
use pingora::http::RequestHeader;
use traverse_telemetry::record::IpText;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_PORT: &str = "x-forwarded-port";
const X_REAL_IP: &str = "x-real-ip";
/// Every forwarding header an untrusted client must not be able to set (Traefik's list).
const FORWARDING_HEADERS: [&str; 11] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PORT,
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-method",
    "x-forwarded-prefix",
    "x-forwarded-tls-client-cert",
    "x-forwarded-tls-client-cert-info",
    X_REAL_IP,
];

/// Which clients may set `X-Forwarded-*` headers that are passed on.
#[derive(Debug, Clone, Default)]
pub struct ForwardedPolicy {
    insecure: bool,
    trusted: Vec<IpNet>,
}

/// What Traverse knows about the connection the request arrived on.
pub struct Downstream<'a> {
    pub client_ip: Option<IpAddr>,
    pub proto: &'static str,
    pub host: Option<&'a str>,
    pub port: Option<u16>,
}

impl ForwardedPolicy {
    /// From the entrypoint's `forwardedHeaders`; entries were checked by config validation,
    /// so unparsable ones (impossible there) are skipped rather than trusted.
    pub fn new(insecure: bool, trusted: &[String]) -> Self {
        let trusted = trusted
            .iter()
            .filter_map(|text| {
                text.parse::<IpNet>()
                    .ok()
                    .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect();
        ForwardedPolicy { insecure, trusted }
    }

    /// Whether `client` may set `X-Forwarded-*` headers that are believed.
    pub(crate) fn trusts(&self, client: Option<IpAddr>) -> bool {
        self.insecure || client.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(&ip)))
    }

    /// Rewrites the upstream request's forwarding headers.
    pub fn apply(&self, request: &mut RequestHeader, downstream: &Downstream<'_>) {
        let trusted = self.trusts(downstream.client_ip);
        // One pass over the (few) headers the client sent finds out whether there is
        // anything to remove; most requests carry none of these.
        if !trusted && request.headers.keys().any(|n| is_forwarding(n.as_str())) {
            for name in FORWARDING_HEADERS {
                request.remove_header(name);
            }
        }
        if let Some(ip) = downstream.client_ip {
            let text = IpText::new(ip);
            let ip = text.as_str();
            // A trusted chain may arrive as several header lines: keep every hop, in order.
            let inbound = request.headers.get_all(X_FORWARDED_FOR);
            if inbound.iter().next().is_none() {
                insert(request, X_FORWARDED_FOR, ip);
            } else {
                let mut chain: Vec<&str> = inbound
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .collect();
                chain.push(ip);
                let chain = chain.join(", ");
                insert(request, X_FORWARDED_FOR, &chain);
            }
            if !request.headers.contains_key(X_REAL_IP) {
                insert(request, X_REAL_IP, ip);
            }
        }
        if !request.headers.contains_key(X_FORWARDED_PROTO) {
            insert(request, X_FORWARDED_PROTO, downstream.proto);
        }
        if let Some(host) = downstream.host {
            if !request.headers.contains_key(X_FORWARDED_HOST) {
                insert(request, X_FORWARDED_HOST, host);
            }
        }
        if let Some(port) = downstream.port {
            if !request.headers.contains_key(X_FORWARDED_PORT) {
                insert(request, X_FORWARDED_PORT, itoa::Buffer::new().format(port));
            }
        }
    }
}

/// Whether a header name (lowercase, as the map keeps it) is one a client must not set.
fn is_forwarding(name: &str) -> bool {
    name.starts_with("x-forwarded-") || name == X_REAL_IP
}

/// Values that are not valid header text (impossible for IPs and ports; possible for a
/// hostile Host) are dropped rather than failing the request.
fn insert(request: &mut RequestHeader, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        // insert_header only fails on invalid values, excluded above.
        let _ = request.insert_header(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&'static str, &str)]) -> RequestHeader {
        let mut request = RequestHeader::build("GET", b"/", None).expect("request");
        for (name, value) in headers {
            request.append_header(*name, *value).expect("header");
        }
        request
    }

    fn header<'a>(request: &'a RequestHeader, name: &str) -> Option<&'a str> {
        request.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn downstream(ip: &str) -> Downstream<'static> {
        Downstream {
            client_ip: Some(ip.parse().expect("ip")),
            proto: "http",
            host: Some("example.com"),
            port: Some(8080),
        }
    }

    #[test]
    fn untrusted_client_headers_are_replaced() {
        let policy = ForwardedPolicy::new(false, &["10.0.0.0/8".into()]);
        let mut req = request(&[
            (X_FORWARDED_FOR, "6.6.6.6"),
            (X_FORWARDED_HOST, "evil"),
            (X_REAL_IP, "6.6.6.6"),
        ]);
        policy.apply(&mut req, &downstream("192.0.2.1"));
        assert_eq!(header(&req, X_FORWARDED_FOR), Some("192.0.2.1"));
        assert_eq!(header(&req, X_REAL_IP), Some("192.0.2.1"));
        assert_eq!(header(&req, X_FORWARDED_HOST), Some("example.com"));
        assert_eq!(header(&req, X_FORWARDED_PROTO), Some("http"));
        assert_eq!(header(&req, X_FORWARDED_PORT), Some("8080"));
    }

    #[test]
    fn trusted_proxy_chain_is_extended() {
        let policy = ForwardedPolicy::new(false, &["10.0.0.0/8".into(), "::1".into()]);
        let mut req = request(&[
            (X_FORWARDED_FOR, "203.0.113.9"),
            (X_FORWARDED_PROTO, "https"),
        ]);
        policy.apply(&mut req, &downstream("10.1.2.3"));
        assert_eq!(header(&req, X_FORWARDED_FOR), Some("203.0.113.9, 10.1.2.3"));
        assert_eq!(header(&req, X_FORWARDED_PROTO), Some("https"));

        let mut req = request(&[(X_FORWARDED_FOR, "203.0.113.9")]);
        policy.apply(&mut req, &downstream("::1"));
        assert_eq!(header(&req, X_FORWARDED_FOR), Some("203.0.113.9, ::1"));
    }

    #[test]
    fn trusted_chain_over_several_lines_is_kept_whole() {
        let policy = ForwardedPolicy::new(true, &[]);
        let mut req = request(&[
            (X_FORWARDED_FOR, "1.1.1.1"),
            (X_FORWARDED_FOR, "2.2.2.2, 3.3.3.3"),
        ]);
        policy.apply(&mut req, &downstream("10.0.0.1"));
        let values: Vec<_> = req.headers.get_all(X_FORWARDED_FOR).iter().collect();
        assert_eq!(values, ["1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1"]);
    }

    #[test]
    fn untrusted_prefix_and_friends_are_dropped() {
        let policy = ForwardedPolicy::new(false, &[]);
        let mut req = request(&[
            ("x-forwarded-prefix", "/evil"),
            ("x-forwarded-uri", "/evil"),
        ]);
        policy.apply(&mut req, &downstream("192.0.2.1"));
        assert!(req.headers.get("x-forwarded-prefix").is_none());
        assert!(req.headers.get("x-forwarded-uri").is_none());
    }

    #[test]
    fn insecure_trusts_everyone() {
        let policy = ForwardedPolicy::new(true, &[]);
        let mut req = request(&[(X_FORWARDED_FOR, "203.0.113.9")]);
        policy.apply(&mut req, &downstream("192.0.2.1"));
        assert_eq!(
            header(&req, X_FORWARDED_FOR),
            Some("203.0.113.9, 192.0.2.1")
        );
    }
}
