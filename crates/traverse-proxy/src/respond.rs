//! Responses the gateway gives itself (no route, no server, a middleware's answer).

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

pub(crate) const NOT_FOUND: &str = "404 page not found\n";
pub(crate) const NO_SERVER: &str = "no available server\n";

/// Sends `status` with a plain-text `body` and `headers`.
pub(crate) async fn respond(
    session: &mut Session,
    status: u16,
    body: Bytes,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<()> {
    let mut header = ResponseHeader::build(status, Some(3 + headers.len()))?;
    // Appended: a middleware's answer may repeat a header (an auth server's Set-Cookie).
    for (name, value) in headers {
        header.append_header(name.clone(), value.clone())?;
    }
    if !header.headers.contains_key(http::header::CONTENT_TYPE) {
        header.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    }
    header.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}
