//! Request hygiene at the edge: what a request must look like before it is routed, so that
//! the router and the upstream can never read it two ways. See `docs/security.md`.
//!
//! Refused with 400 (and the connection closed):
//! - an HTTP/1.1 request without exactly one `Host` field (RFC 9112 §3.2);
//! - a request-target that is neither origin-form (`/…`) nor absolute-form
//!   (`http://host/…`), e.g. `GET faults/x` or `GET *` (RFC 9112 §3.2);
//! - a path with a dot-segment (`.` or `..`, also percent-encoded): the router and the
//!   upstream would resolve it differently, so it is never forwarded;
//! - a `Content-Length` that is a list or repeated, even with identical values;
//! - a `Transfer-Encoding` other than exactly `chunked` (e.g. `gzip, chunked`): the body
//!   is re-framed on the way upstream, and a coding must never be dropped.

use std::time::Duration;

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::Version;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

/// An entrypoint's own limits on a request head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Longest request-target: longer is 414.
    pub max_uri_length: usize,
    /// Largest header section (request line and fields): larger is 431.
    pub max_header_bytes: usize,
    /// Largest request body: a larger `Content-Length` is 413 before anything is forwarded.
    pub max_body_bytes: Option<u64>,
}

impl Limits {
    /// `entry_point`'s limits.
    pub(crate) fn of(entry_point: &traverse_config::EntryPoint) -> Limits {
        Limits {
            max_uri_length: entry_point.max_uri_length,
            max_header_bytes: entry_point.max_header_bytes,
            max_body_bytes: entry_point.max_body_bytes,
        }
    }
}

/// Fails with 413 once more than the entrypoint's `maxBodyBytes` of a body without a
/// `Content-Length` (chunked, HTTP/2) has been read. What was read is already on its way
/// upstream, which sees the request cut short; the client gets the 413 when no response
/// has started.
pub(crate) fn body_within_limit(read: usize, limits: Limits) -> pingora::Result<()> {
    match limits.max_body_bytes {
        Some(max) if read as u64 > max => pingora::Error::e_explain(
            pingora::ErrorType::HTTPStatus(413),
            "request body larger than maxBodyBytes",
        ),
        _ => Ok(()),
    }
}

/// The status (414, 431 or 400) and reason `request` must be refused with, or `None` when
/// it may proceed.
pub(crate) fn refusal(request: &RequestHeader, limits: Limits) -> Option<(u16, &'static str)> {
    let target = request.raw_path().len();
    if target > limits.max_uri_length {
        return Some((414, "request-target too long"));
    }
    // As sent over HTTP/1.1: `METHOD target HTTP/1.1`, `name: value` lines, CRLFs.
    let fields: usize = request
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if request.method.as_str().len() + target + 12 + fields + 2 > limits.max_header_bytes {
        return Some((431, "request header fields too large"));
    }
    if let Some(max) = limits.max_body_bytes {
        let declared = request.headers.get(CONTENT_LENGTH);
        if declared.and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok()) > Some(max) {
            return Some((413, "request body larger than maxBodyBytes"));
        }
    }
    malformed(request).map(|reason| (400, reason))
}

/// Why `request` must be refused with 400, or `None` when it may proceed.
fn malformed(request: &RequestHeader) -> Option<&'static str> {
    let http1 = matches!(request.version, Version::HTTP_10 | Version::HTTP_11);
    let hosts = request.headers.get_all(HOST).iter().count();
    if request.version == Version::HTTP_11 && hosts != 1 {
        return Some(if hosts == 0 {
            "HTTP/1.1 request without Host"
        } else {
            "more than one Host"
        });
    }
    if http1 && hosts > 1 {
        return Some("more than one Host");
    }
    // Pingora keeps the target as received in `raw_path` and puts only the path of an
    // absolute-form target in the Uri (the root for anything it cannot classify).
    let raw = request.raw_path();
    let absolute = [&b"http://"[..], b"https://"]
        .iter()
        .any(|scheme| raw.len() > scheme.len() && raw[..scheme.len()].eq_ignore_ascii_case(scheme));
    if !absolute && !raw.starts_with(b"/") {
        return Some("request-target neither origin-form nor absolute-form");
    }
    if has_dot_segment(request.uri.path()) {
        return Some("dot-segment in the path");
    }
    let lengths: Vec<_> = request.headers.get_all(CONTENT_LENGTH).iter().collect();
    if lengths.len() > 1 || lengths.iter().any(|v| v.as_bytes().contains(&b',')) {
        return Some("Content-Length repeated or a list");
    }
    if http1 {
        let mut codings = request
            .headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii);
        if let Some(first) = codings.next() {
            if !first.eq_ignore_ascii_case(b"chunked") || codings.next().is_some() {
                return Some("Transfer-Encoding other than chunked");
            }
        }
    }
    None
}

/// Whether `path` has a `.` or `..` segment, plain or percent-encoded.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase();
        let dots = segment.replace("%2e", ".");
        dots == "." || dots == ".."
    })
}

/// Sets the connection's keep-alive to `seconds` unless Pingora already decided to close
/// it (HTTP/1.0 without keep-alive, `Connection: close`, Content-Length beside
/// Transfer-Encoding) or the gateway is draining.
pub(crate) fn keep_alive(session: &mut Session, seconds: u64, draining: bool) {
    if draining {
        session.set_keepalive(None);
    } else if session.get_keepalive().is_some() {
        session.set_keepalive(Some(seconds));
    }
}

/// The head of an error response the gateway generates: an empty body, not cached, and
/// no `Server` field.
pub(crate) fn error_response(status: u16) -> pingora::Result<ResponseHeader> {
    let mut response = ResponseHeader::build(status, Some(3))?;
    response.insert_header(CONTENT_LENGTH, "0")?;
    response.insert_header(http::header::CACHE_CONTROL, "private, no-store")?;
    Ok(response)
}

/// Sends the error response `status` (with the trace header, when there is one); a
/// client that cannot take it is only noted.
pub(crate) async fn send_error(
    session: &mut Session,
    status: u16,
    trace: Option<(http::HeaderName, http::HeaderValue)>,
) {
    let mut response = match error_response(status) {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, status, "could not build error response");
            return;
        }
    };
    if let Some((name, value)) = trace {
        // The name and value were validated when built; this cannot fail.
        let _ = response.insert_header(name, value);
    }
    let downstream = session.as_downstream_mut();
    if let Err(write_error) = downstream
        .write_error_response(response, bytes::Bytes::new())
        .await
    {
        tracing::debug!(%write_error, "could not send error response");
    }
}

/// `d` rounded up to whole seconds, at least 1: Pingora counts keep-alive in seconds and
/// reads 0 as "forever".
pub(crate) fn whole_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::from_millis(500)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(90)), 90);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
    }

    /// `raw`: a request line and header lines, as sent (CRLF-separated, no body).
    fn request(raw: &str) -> RequestHeader {
        let mut lines = raw.split("\r\n").filter(|l| !l.is_empty());
        let start = lines.next().expect("a request line");
        let mut parts = start.split(' ');
        let (method, target, version) = (
            parts.next().expect("method"),
            parts.next().expect("target"),
            parts.next().expect("version"),
        );
        let mut header = RequestHeader::build(method, target.as_bytes(), None).expect("builds");
        header.set_version(if version == "HTTP/1.0" {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        });
        for line in lines {
            let (name, value) = line.split_once(": ").expect("a header line");
            header
                .append_header(name.to_owned(), value)
                .expect("a header");
        }
        header
    }

    #[test]
    fn refusals() {
        let refused = [
            "GET / HTTP/1.1\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n",
            "GET /a/../b HTTP/1.1\r\nHost: a\r\n",
            "GET /a/%2E%2e HTTP/1.1\r\nHost: a\r\n",
            "GET /./ HTTP/1.1\r\nHost: a\r\n",
            "GET faults/x HTTP/1.1\r\nHost: a\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n",
        ];
        for raw in refused {
            assert!(malformed(&request(raw)).is_some(), "{raw}");
        }
        let passed = [
            "GET / HTTP/1.0\r\n",
            "GET /a/..b/.c/d.. HTTP/1.1\r\nHost: a\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n",
            "GET http://a/x HTTP/1.1\r\nHost: a\r\n",
        ];
        for raw in passed {
            assert_eq!(malformed(&request(raw)), None, "{raw}");
        }
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_uri_length: 10,
            max_header_bytes: 64,
            max_body_bytes: None,
        };
        let refused = [
            (414, "GET /0123456789 HTTP/1.1\r\nHost: a\r\n"),
            (
                431,
                "GET / HTTP/1.1\r\nHost: a\r\nX: 01234567890123456789012345678901234567\r\n",
            ),
        ];
        for (status, raw) in refused {
            assert_eq!(
                refusal(&request(raw), limits).map(|r| r.0),
                Some(status),
                "{raw}"
            );
        }
        let fits = request("GET /012345678 HTTP/1.1\r\nHost: a\r\n");
        assert_eq!(refusal(&fits, limits), None);
    }

    #[test]
    fn body_limit() {
        let limits = Limits {
            max_uri_length: 100,
            max_header_bytes: 1000,
            max_body_bytes: Some(10),
        };
        let declared = |length: u32| {
            let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n");
            refusal(&request(&raw), limits).map(|r| r.0)
        };
        assert_eq!(declared(11), Some(413));
        assert_eq!(declared(10), None);
        assert!(body_within_limit(10, limits).is_ok());
        let error = body_within_limit(11, limits).expect_err("over the limit");
        assert_eq!(error.etype(), &pingora::ErrorType::HTTPStatus(413));
        let unlimited = Limits {
            max_body_bytes: None,
            ..limits
        };
        assert_eq!(
            refusal(
                &request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999\r\n"),
                unlimited
            ),
            None
        );
        assert!(body_within_limit(usize::MAX, unlimited).is_ok());
    }

    #[test]
    fn error_responses_do_not_name_the_server() {
        let response = error_response(502).expect("a valid status");
        assert_eq!(response.status.as_u16(), 502);
        assert!(!response.headers.contains_key(http::header::SERVER));
    }
}
