//! The host a request asked for: from the Host header (HTTP/1) or the URI authority
//! (HTTP/2), with or without its port.

use pingora::http::RequestHeader;

/// Host from the Host header (HTTP/1) or the URI authority (HTTP/2), as sent.
pub(crate) fn request_host(header: &RequestHeader) -> Option<&str> {
    header
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| header.uri.authority().map(|a| a.as_str()))
}

/// The host the request asked for, without its port, and that port (`server.address`
/// and `server.port`).
pub(crate) fn requested_host_port(header: &RequestHeader) -> (Option<&str>, Option<u16>) {
    request_host(header).map_or((None, None), |host| {
        let (name, port) = split_host_port(host);
        (Some(name), port)
    })
}

/// `example.com:8443` → `example.com`, `[::1]:8443` → `::1`.
pub(crate) fn strip_port(host: &str) -> &str {
    split_host_port(host).0
}

/// `host:port` → (host, port); IPv6 literals lose their brackets, and a bare IPv6
/// literal (several colons, no brackets) carries no port.
pub(crate) fn split_host_port(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (name, port.parse().ok())
        }
        _ => (host, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        for (host, name, port) in [
            ("a.example", "a.example", None),
            ("a.example:8443", "a.example", Some(8443)),
            ("[::1]:8443", "::1", Some(8443)),
            ("[::1]", "::1", None),
            ("::1", "::1", None),
        ] {
            assert_eq!(split_host_port(host), (name, port), "{host}");
            assert_eq!(strip_port(host), name, "{host}");
        }
    }

    #[test]
    fn host_header_before_authority() {
        let mut request = RequestHeader::build("GET", b"/x", None).expect("request");
        request.set_uri(http::Uri::from_static("http://authority.example/x"));
        assert_eq!(request_host(&request), Some("authority.example"));
        request
            .insert_header("host", "header.example:8080")
            .expect("host");
        assert_eq!(request_host(&request), Some("header.example:8080"));
    }
}
