//! Redirects: `redirectScheme`, `redirectRegex`.

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue, Method};
use pingora::http::RequestHeader;
use pingora::Result;
use traverse_model::middleware::redirect_status;
use traverse_model::{Origin, RedirectRegex, RedirectScheme};

use super::{status_text, Answer, Step, Verdict};
use crate::exchange::Exchange;
use crate::host::request_host;
use crate::Telemetry;

#[async_trait]
impl Step for RedirectScheme {
    fn acts_on_request(&self) -> bool {
        true
    }

    fn origin(&self) -> Option<&Origin> {
        Some(&self.origin)
    }

    async fn request(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        let (host, port) = host_and_port(request_host(request).unwrap_or_default());
        let target = self.target(
            client_scheme(request, exchange),
            host,
            port,
            path_and_query(request),
        );
        Ok(target.map_or(Verdict::Continue, |url| {
            redirect(url, self.permanent, &request.method)
        }))
    }
}

#[async_trait]
impl Step for RedirectRegex {
    fn acts_on_request(&self) -> bool {
        true
    }

    fn origin(&self) -> Option<&Origin> {
        Some(&self.origin)
    }

    async fn request(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        // Traefik matches `scheme://host[:port]/path?query`, the scheme being the
        // connection's (X-Forwarded-Proto is not consulted here, unlike redirectScheme).
        let url = format!(
            "{}://{}{}",
            exchange.scheme(),
            request_host(request).unwrap_or_default(),
            path_and_query(request)
        );
        Ok(self.target(&url).map_or(Verdict::Continue, |url| {
            redirect(url, self.permanent, &request.method)
        }))
    }
}

/// The scheme the client used: the connection's, or a trusted proxy's
/// `X-Forwarded-Proto` (`ws`/`wss` counting as `http`/`https`).
pub(super) fn client_scheme(request: &RequestHeader, exchange: &Exchange) -> &'static str {
    let forwarded = exchange
        .notes()
        .forwarded_trusted
        .then(|| request.headers.get("x-forwarded-proto"))
        .flatten()
        .and_then(|v| v.to_str().ok());
    match forwarded {
        Some(proto) if proto.eq_ignore_ascii_case("http") || proto.eq_ignore_ascii_case("ws") => {
            "http"
        }
        Some(proto) if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("wss") => {
            "https"
        }
        _ => exchange.scheme(),
    }
}

fn path_and_query(request: &RequestHeader) -> &str {
    request.uri.path_and_query().map_or("/", |p| p.as_str())
}

/// `host` and `port` of a Host header, keeping an IPv6 literal's brackets.
fn host_and_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

fn redirect(url: String, permanent: bool, method: &Method) -> Verdict {
    let status = redirect_status(permanent, method == Method::GET);
    let mut headers = Vec::with_capacity(1);
    // A URL that is not header text (from a hostile Host) is sent without a Location.
    if let Ok(location) = HeaderValue::from_str(&url) {
        headers.push((header::LOCATION, location));
    }
    Verdict::Answer(Answer {
        status,
        headers,
        body: Bytes::from(status_text(status)),
    })
}

#[cfg(test)]
mod tests {
    use super::host_and_port;

    #[test]
    fn host_and_port_keep_ipv6_brackets() {
        assert_eq!(host_and_port("a.example:8080"), ("a.example", Some("8080")));
        assert_eq!(host_and_port("a.example"), ("a.example", None));
        assert_eq!(host_and_port("[::1]:80"), ("[::1]", Some("80")));
        assert_eq!(host_and_port("[::1]"), ("[::1]", None));
    }
}
