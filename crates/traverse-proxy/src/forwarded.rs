//! `X-Forwarded-*` handling: trust what a known proxy sent, replace what anyone else sent.

use std::net::IpAddr;

use http::HeaderValue;
use ipnet::IpNet;
use pingora::http::RequestHeader;

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";
const X_FORWARDED_PORT: &str = "x-forwarded-port";
const X_REAL_IP: &str = "x-real-ip";

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

    fn trusts(&self, client: Option<IpAddr>) -> bool {
        self.insecure || client.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(&ip)))
    }

    /// Rewrites the upstream request's forwarding headers.
    pub fn apply(&self, request: &mut RequestHeader, downstream: &Downstream<'_>) {
        let trusted = self.trusts(downstream.client_ip);
        if !trusted {
            for name in [
                X_FORWARDED_FOR,
                X_FORWARDED_PROTO,
                X_FORWARDED_HOST,
                X_FORWARDED_PORT,
                X_REAL_IP,
            ] {
                request.remove_header(name);
            }
        }
        if let Some(ip) = downstream.client_ip {
            let ip = ip.to_string();
            let chain = match request
                .headers
                .get(X_FORWARDED_FOR)
                .and_then(|v| v.to_str().ok())
            {
                Some(previous) if !previous.trim().is_empty() => format!("{previous}, {ip}"),
                _ => ip.clone(),
            };
            insert(request, X_FORWARDED_FOR, &chain);
            if !request.headers.contains_key(X_REAL_IP) {
                insert(request, X_REAL_IP, &ip);
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
                insert(request, X_FORWARDED_PORT, &port.to_string());
            }
        }
    }
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
