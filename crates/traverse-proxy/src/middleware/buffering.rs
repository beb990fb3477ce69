//! `buffering`: body size limits, checked as the bodies stream through.
//!
//! Traefik holds the whole body before passing it on; Traverse keeps bodies streaming
//! and counts them. A body announced larger than the limit (`Content-Length`) is refused
//! before anything is sent; one that grows past it while streaming is cut there.

use async_trait::async_trait;
use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{Error, ErrorType, Result};
use traverse_model::{Buffering, Origin};

use super::{status_text, Answer, Step, Verdict};
use crate::exchange::Exchange;
use crate::Telemetry;

const PAYLOAD_TOO_LARGE: u16 = 413;
const INTERNAL_SERVER_ERROR: u16 = 500;

/// The announced `Content-Length`, when there is one that parses.
fn announced(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

#[async_trait]
impl Step for Buffering {
    fn acts_on_request(&self) -> bool {
        self.max_request_body_bytes.is_some()
    }

    async fn request(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        let Some(max) = self.max_request_body_bytes else {
            return Ok(Verdict::Continue);
        };
        if announced(&request.headers).is_some_and(|length| length > max) {
            return Ok(Verdict::Answer(Answer {
                status: PAYLOAD_TOO_LARGE,
                headers: Vec::new(),
                // Traefik's (Go's) text for 413.
                body: Bytes::from_static(b"Request Entity Too Large"),
            }));
        }
        let notes = exchange.notes_mut();
        notes.max_request_body = Some(notes.max_request_body.map_or(max, |m| m.min(max)));
        Ok(Verdict::Continue)
    }

    fn intercepts(&self) -> bool {
        self.max_response_body_bytes.is_some()
    }

    async fn intercept(
        &self,
        _request: &RequestHeader,
        exchange: &mut Exchange,
        response: &mut ResponseHeader,
        _telemetry: &Telemetry,
    ) -> Result<()> {
        let Some(max) = self.max_response_body_bytes else {
            return Ok(());
        };
        match announced(&response.headers) {
            Some(length) if length > max => {
                let body = Bytes::from(status_text(INTERNAL_SERVER_ERROR));
                let mut replaced = ResponseHeader::build(INTERNAL_SERVER_ERROR, Some(2))?;
                replaced.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
                replaced.insert_header(CONTENT_LENGTH, body.len())?;
                *response = replaced;
                exchange.answered_by(self.origin.clone());
                exchange.notes_mut().page = Some(Some(body));
            }
            Some(_) => {}
            None => {
                let notes = exchange.notes_mut();
                notes.response_body_left =
                    Some(notes.response_body_left.map_or(max, |m| m.min(max)));
            }
        }
        Ok(())
    }

    fn origin(&self) -> Option<&Origin> {
        Some(&self.origin)
    }
}

/// Fails once more than the route's `maxRequestBodyBytes` of a request body has been
/// read; the client gets a 413 when no response has started.
pub(crate) fn request_body_within_limit(read: usize, exchange: &Exchange) -> Result<()> {
    match exchange.notes().max_request_body {
        Some(max) if read as u64 > max => Error::e_explain(
            ErrorType::HTTPStatus(PAYLOAD_TOO_LARGE),
            "request body larger than the buffering middleware's maxRequestBodyBytes",
        ),
        _ => Ok(()),
    }
}

/// Counts a chunk of a response body sent without `Content-Length` against the route's
/// `maxResponseBodyBytes`; past it, the response is cut (its header is already sent).
pub(crate) fn response_chunk_within_limit(
    left: &mut Option<u64>,
    chunk: Option<&Bytes>,
) -> Result<()> {
    let (Some(budget), Some(chunk)) = (left.as_mut(), chunk) else {
        return Ok(());
    };
    match budget.checked_sub(chunk.len() as u64) {
        Some(rest) => {
            *budget = rest;
            Ok(())
        }
        None => Error::e_explain(
            ErrorType::HTTPStatus(INTERNAL_SERVER_ERROR),
            "response body larger than the buffering middleware's maxResponseBodyBytes",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_response_is_counted_until_past_the_limit() {
        let mut left = Some(10);
        let chunk = Bytes::from_static(b"12345");
        assert!(response_chunk_within_limit(&mut left, Some(&chunk)).is_ok());
        assert!(response_chunk_within_limit(&mut left, Some(&chunk)).is_ok());
        assert_eq!(left, Some(0));
        assert!(response_chunk_within_limit(&mut left, None).is_ok());
        let error = response_chunk_within_limit(&mut left, Some(&Bytes::from_static(b"x")))
            .expect_err("one byte too many");
        assert_eq!(error.etype(), &ErrorType::HTTPStatus(500));

        let mut unlimited = None;
        assert!(response_chunk_within_limit(&mut unlimited, Some(&chunk)).is_ok());
    }
}
