//! `grpcWeb`: a browser's gRPC-Web call (HTTP/1.1, `application/grpc-web[-text][+proto]`)
//! goes upstream as gRPC over HTTP/2, and the answer comes back as gRPC-Web.
//!
//! As Traefik's wrapper (improbable-eng/grpc-web) does: the request's content type loses
//! its `-web`; a text (base64) body is decoded as it streams; the response's content type
//! gains it back, and the gRPC trailers (`grpc-status`, `grpc-message`, metadata) become
//! the body's last frame, flagged `0x80`, base64-encoded again in text mode. A response
//! with no body (trailers-only) keeps its status in the headers, as the protocol allows.
//! A CORS preflight naming `x-grpc-web` is answered here for the `allowOrigins`. Any
//! other request passes through untouched. Pingora's own gRPC-Web bridge has neither the
//! text mode nor CORS, hence this step.
//!
//! The upstream must speak HTTP/2 (a Service with scheme `h2c`, or `https` whose server
//! picks HTTP/2 by ALPN), as Traefik requires.

use std::fmt::Write as _;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, CONNECTION, CONTENT_LENGTH,
    CONTENT_TYPE, ORIGIN, TE, TRAILER, TRANSFER_ENCODING, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{Error, ErrorType, Result};
use traverse_model::middleware::GrpcWeb;
use traverse_model::Origin;

use super::{Answer, PathRewrite, Step, Verdict};
use crate::exchange::Exchange;
use crate::Telemetry;

const GRPC: &str = "application/grpc";
const GRPC_WEB: &str = "application/grpc-web";
const GRPC_WEB_TEXT: &str = "application/grpc-web-text";
/// The flag of the frame carrying the trailers (the first byte's most significant bit).
const TRAILER_FRAME: u8 = 0x80;
/// Traefik's wrapper keeps a preflight for 10 minutes.
const PREFLIGHT_MAX_AGE: &str = "600";
/// The methods a preflight may ask for (the CORS library's defaults; OPTIONS always).
const PREFLIGHT_METHODS: [&str; 4] = ["GET", "POST", "HEAD", "OPTIONS"];
const NO_CONTENT: u16 = 204;
const BAD_REQUEST: u16 = 400;

/// How a gRPC-Web body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Binary,
    /// `application/grpc-web-text`: base64.
    Text,
}

/// The encoding of a gRPC-Web call: a POST whose content type starts with
/// `application/grpc-web` (the media type compared without regard to case).
fn grpc_web_call(request: &RequestHeader) -> Option<Encoding> {
    if request.method != Method::POST {
        return None;
    }
    let content_type = request.headers.get(CONTENT_TYPE)?.as_bytes();
    if starts_with_ignore_case(content_type, GRPC_WEB_TEXT) {
        Some(Encoding::Text)
    } else if starts_with_ignore_case(content_type, GRPC_WEB) {
        Some(Encoding::Binary)
    } else {
        None
    }
}

fn starts_with_ignore_case(text: &[u8], prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// `value` with its first `prefix` (compared without regard to case) replaced by `by`:
/// `application/grpc-web-text+proto` becomes `application/grpc+proto`.
fn replace_prefix(value: &HeaderValue, prefix: &str, by: &str) -> Option<HeaderValue> {
    let bytes = value.as_bytes();
    if !starts_with_ignore_case(bytes, prefix) {
        return None;
    }
    let mut replaced = Vec::with_capacity(bytes.len() + by.len());
    replaced.extend_from_slice(by.as_bytes());
    replaced.extend_from_slice(&bytes[prefix.len()..]);
    HeaderValue::from_bytes(&replaced).ok()
}

/// Whether a request is a CORS preflight for a gRPC-Web call: OPTIONS, asking for a
/// method, with `x-grpc-web` among the headers it asks for.
fn grpc_web_preflight(request: &RequestHeader) -> bool {
    let headers = &request.headers;
    request.method == Method::OPTIONS
        && headers
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .is_some_and(|m| !m.is_empty())
        && headers
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .is_some_and(|h| {
                h.to_str()
                    .unwrap_or("")
                    .to_ascii_lowercase()
                    .contains("x-grpc-web")
            })
}

/// The client's `Origin`, when `step` allows it.
fn allowed_origin<'a>(step: &GrpcWeb, request: &'a RequestHeader) -> Option<&'a HeaderValue> {
    request
        .headers
        .get(ORIGIN)
        .filter(|origin| !origin.is_empty())
        .filter(|origin| origin.to_str().is_ok_and(|o| step.allows(o)))
}

/// The answer to a preflight: the origin, method and headers asked for are allowed when
/// the origin is; otherwise only `Vary`, and the browser refuses the call.
fn preflight_answer(step: &GrpcWeb, request: &RequestHeader) -> Answer {
    let mut headers = vec![(
        VARY,
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ),
    )];
    let method = request.headers.get(ACCESS_CONTROL_REQUEST_METHOD);
    let method_allowed = method.is_some_and(|m| PREFLIGHT_METHODS.iter().any(|a| m == a));
    if let (Some(origin), Some(method), true) =
        (allowed_origin(step, request), method, method_allowed)
    {
        headers.push((ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
        headers.push((ACCESS_CONTROL_ALLOW_METHODS, method.clone()));
        if let Some(asked) = request
            .headers
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|h| !h.is_empty())
        {
            headers.push((ACCESS_CONTROL_ALLOW_HEADERS, asked.clone()));
        }
        headers.push((
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
        headers.push((
            ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(PREFLIGHT_MAX_AGE),
        ));
    }
    Answer {
        status: NO_CONTENT,
        headers,
        body: Bytes::new(),
    }
}

/// One gRPC-Web call being converted, kept on its exchange.
#[derive(Debug)]
pub(crate) struct Conversion {
    encoding: Encoding,
    /// Base64 characters of the request body not yet decoded (fewer than 4).
    pending: Vec<u8>,
    /// The upstream answered gRPC: its body and trailers are converted.
    converting_response: bool,
}

impl Conversion {
    fn new(encoding: Encoding) -> Conversion {
        Conversion {
            encoding,
            pending: Vec::new(),
            converting_response: false,
        }
    }

    /// Decodes a chunk of a text request body in place; characters that do not yet make
    /// a whole base64 quantum wait for the next chunk.
    pub fn request_chunk(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) -> Result<()> {
        if self.encoding != Encoding::Text {
            return Ok(());
        }
        let chunk = body.as_deref().unwrap_or_default();
        let decoded = decode_text(&mut self.pending, chunk).map_err(|why| {
            Error::explain(
                ErrorType::HTTPStatus(BAD_REQUEST),
                format!("gRPC-Web text body: {why}"),
            )
        })?;
        if end_of_stream && !self.pending.is_empty() {
            return Error::e_explain(
                ErrorType::HTTPStatus(BAD_REQUEST),
                "gRPC-Web text body: ends inside a base64 quantum",
            );
        }
        *body = (!decoded.is_empty() || body.is_some()).then(|| Bytes::from(decoded));
        Ok(())
    }

    /// Encodes a chunk of a converted text response in place, each chunk with its own
    /// padding so nothing is held back (the protocol allows padding mid-stream).
    pub fn response_chunk(&mut self, body: &mut Option<Bytes>) {
        if !self.converting_response || self.encoding != Encoding::Text {
            return;
        }
        if let Some(chunk) = body.as_mut().filter(|c| !c.is_empty()) {
            *chunk = Bytes::from(STANDARD.encode(&chunk[..]));
        }
    }

    /// The frame that carries `trailers` at the end of a converted response body.
    pub fn trailers(&mut self, trailers: &HeaderMap) -> Result<Option<Bytes>> {
        if !std::mem::take(&mut self.converting_response) {
            return Ok(None);
        }
        let frame = trailer_frame(trailers)?;
        Ok(Some(match self.encoding {
            Encoding::Binary => frame,
            Encoding::Text => Bytes::from(STANDARD.encode(&frame)),
        }))
    }
}

/// Decodes the whole base64 quanta of `pending` + `chunk`, keeping the rest in `pending`.
/// A padded quantum may end a segment mid-stream (clients flush that way); ASCII
/// whitespace is skipped.
fn decode_text(pending: &mut Vec<u8>, chunk: &[u8]) -> std::result::Result<Vec<u8>, String> {
    pending.extend(chunk.iter().filter(|b| !b.is_ascii_whitespace()));
    let whole = pending.len() / 4 * 4;
    let mut decoded = Vec::with_capacity(whole / 4 * 3);
    let mut segment_start = 0;
    for end in (4..=whole).step_by(4) {
        // A quantum with padding ends a segment: decode what came before with it.
        if pending[end - 1] == b'=' || end == whole {
            STANDARD
                .decode_vec(&pending[segment_start..end], &mut decoded)
                .map_err(|e| format!("invalid base64: {e}"))?;
            segment_start = end;
        }
    }
    pending.drain(..whole);
    Ok(decoded)
}

/// A gRPC-Web trailer frame: flag `0x80`, the length (4 bytes, big-endian), then the
/// trailers as an HTTP/1 header block without its final empty line, names in lower case.
pub(crate) fn trailer_frame(trailers: &HeaderMap) -> Result<Bytes> {
    let mut block = BytesMut::new();
    for (name, value) in trailers {
        block.put_slice(name.as_str().as_bytes());
        block.put_slice(b": ");
        block.put_slice(value.as_bytes());
        block.put_slice(b"\r\n");
    }
    let length = u32::try_from(block.len())
        .map_err(|_| Error::explain(ErrorType::InternalError, "gRPC trailers longer than 4 GiB"))?;
    let mut frame = BytesMut::with_capacity(5 + block.len());
    frame.put_u8(TRAILER_FRAME);
    frame.put_u32(length);
    frame.put_slice(&block);
    Ok(frame.freeze())
}

/// The names a browser script may read from the response: all of its headers, and the
/// status the trailers-only form carries in them.
fn exposed_headers(response: &ResponseHeader) -> Result<HeaderValue> {
    let mut names = String::new();
    let hop_by_hop = [TRANSFER_ENCODING, CONNECTION];
    let listed = response.headers.keys().filter(|n| !hop_by_hop.contains(n));
    let status = [
        HeaderName::from_static("grpc-status"),
        HeaderName::from_static("grpc-message"),
    ];
    let mut seen: Vec<&HeaderName> = Vec::new();
    for name in listed.chain(status.iter()) {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        if !names.is_empty() {
            names.push_str(", ");
        }
        let _ = write!(names, "{name}");
    }
    HeaderValue::from_str(&names)
        .map_err(|e| Error::because(ErrorType::InternalError, "exposed header names", e))
}

#[async_trait]
impl Step for GrpcWeb {
    fn acts_on_request(&self) -> bool {
        true
    }

    async fn request(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        if grpc_web_preflight(request) {
            return Ok(Verdict::Answer(preflight_answer(self, request)));
        }
        if let Some(encoding) = grpc_web_call(request) {
            exchange.notes_mut().grpc_web = Some(Conversion::new(encoding));
        }
        Ok(Verdict::Continue)
    }

    fn upstream_request(&self, request: &mut RequestHeader, _path: &mut PathRewrite) -> Result<()> {
        let Some(encoding) = grpc_web_call(request) else {
            return Ok(());
        };
        let web = match encoding {
            Encoding::Binary => GRPC_WEB,
            Encoding::Text => GRPC_WEB_TEXT,
        };
        if let Some(grpc) = request
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| replace_prefix(v, web, GRPC))
        {
            request.insert_header(CONTENT_TYPE, grpc)?;
        }
        // The decoded body has another length, and HTTP/2 frames carry their own.
        request.remove_header(&CONTENT_LENGTH);
        // gRPC over HTTP/2 requires it; a browser cannot send it.
        request.insert_header(TE, "trailers")?;
        // The end of a gRPC request is an (empty) DATA frame, never the HEADERS frame.
        request.set_send_end_stream(false);
        Ok(())
    }

    fn response(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        response: &mut ResponseHeader,
    ) -> Result<()> {
        let Some(conversion) = exchange.notes_mut().grpc_web.as_mut() else {
            return Ok(());
        };
        response.append_header(VARY, "Origin")?;
        if let Some(origin) = allowed_origin(self, request) {
            response.insert_header(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone())?;
            response.insert_header(ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")?;
        }
        let web = match conversion.encoding {
            Encoding::Binary => GRPC_WEB,
            Encoding::Text => GRPC_WEB_TEXT,
        };
        let Some(content_type) = response
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| replace_prefix(v, GRPC, web))
        else {
            // Not a gRPC answer (a proxy error, a plain HTTP server): left as it is.
            return Ok(());
        };
        response.insert_header(CONTENT_TYPE, content_type)?;
        response.remove_header(&TRAILER);
        response.remove_header(&CONTENT_LENGTH);
        response.insert_header(TRANSFER_ENCODING, "chunked")?;
        let exposed = exposed_headers(response)?;
        response.insert_header(ACCESS_CONTROL_EXPOSE_HEADERS, exposed)?;
        conversion.converting_response = true;
        Ok(())
    }

    fn origin(&self) -> Option<&Origin> {
        Some(&self.origin)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn step(origins: &[&str]) -> GrpcWeb {
        GrpcWeb {
            origin: Origin {
                name: Arc::from("apps/web"),
                kind: "grpcWeb",
            },
            allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    fn request(method: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut request = RequestHeader::build(method, b"/test.Echo/Unary", None).expect("request");
        for (name, value) in headers {
            request
                .append_header(name.to_string(), *value)
                .expect("header");
        }
        request
    }

    /// A length-prefixed gRPC message frame.
    fn message(payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    #[test]
    fn the_trailer_frame_is_flagged_and_length_prefixed() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("9"));
        trailers.insert("grpc-message", HeaderValue::from_static("stock%3A 0 left"));
        trailers.append("x-reason", HeaderValue::from_static("a"));
        trailers.append("x-reason", HeaderValue::from_static("b"));
        let frame = trailer_frame(&trailers).expect("frame");
        let block =
            b"grpc-status: 9\r\ngrpc-message: stock%3A 0 left\r\nx-reason: a\r\nx-reason: b\r\n";
        assert_eq!(frame[0], 0x80);
        assert_eq!(
            u32::from_be_bytes(frame[1..5].try_into().expect("4 bytes")),
            block.len() as u32
        );
        assert_eq!(&frame[5..], block);
        assert_eq!(
            &trailer_frame(&HeaderMap::new()).expect("empty")[..],
            [0x80, 0, 0, 0, 0]
        );
    }

    #[test]
    fn text_bodies_decode_across_any_chunking_and_mid_stream_padding() {
        let first = message(b"ping");
        let second = message(b"pong!");
        // Two separately padded segments, as a client flushing after each message sends.
        let text = format!("{}{}", STANDARD.encode(&first), STANDARD.encode(&second));
        assert!(
            text[..text.len() - 1].contains('='),
            "padding mid-stream: {text}"
        );
        let expected = [first, second].concat();
        for size in 1..=text.len() {
            let mut conversion = Conversion::new(Encoding::Text);
            let mut decoded = Vec::new();
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(size).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let mut body = Some(Bytes::copy_from_slice(chunk));
                conversion
                    .request_chunk(&mut body, i + 1 == chunks.len())
                    .expect("decodes");
                decoded.extend_from_slice(&body.unwrap_or_default());
            }
            assert_eq!(decoded, expected, "chunks of {size}");
        }
    }

    #[test]
    fn a_broken_text_body_is_a_bad_request() {
        for (text, end) in [("AAAA*AAA", false), ("AAAAAA", true), ("AA=AAAAA", false)] {
            let mut conversion = Conversion::new(Encoding::Text);
            let mut body = Some(Bytes::from(text));
            let error = conversion.request_chunk(&mut body, end).expect_err(text);
            assert_eq!(error.etype, ErrorType::HTTPStatus(400), "{text}");
        }
    }

    #[test]
    fn binary_bodies_pass_untouched_and_text_responses_are_encoded() {
        let frame = Bytes::from(message(b"echo:ping"));
        let mut binary = Conversion::new(Encoding::Binary);
        binary.converting_response = true;
        let mut body = Some(frame.clone());
        binary.request_chunk(&mut body, true).expect("binary");
        binary.response_chunk(&mut body);
        assert_eq!(body.as_ref(), Some(&frame));

        let mut text = Conversion::new(Encoding::Text);
        let mut body = Some(frame.clone());
        text.response_chunk(&mut body);
        assert_eq!(
            body.as_ref(),
            Some(&frame),
            "not converted before a gRPC answer"
        );
        text.converting_response = true;
        text.response_chunk(&mut body);
        assert_eq!(body.expect("encoded"), STANDARD.encode(&frame));

        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let encoded = text.trailers(&trailers).expect("frame").expect("converted");
        let decoded = STANDARD.decode(&encoded).expect("base64");
        assert_eq!(decoded, trailer_frame(&trailers).expect("frame"));
        assert_eq!(text.trailers(&trailers).expect("once"), None, "only once");
    }

    #[test]
    fn calls_are_recognised_by_method_and_content_type() {
        let post = |ct: &str| grpc_web_call(&request("POST", &[("content-type", ct)]));
        assert_eq!(post("application/grpc-web"), Some(Encoding::Binary));
        assert_eq!(post("application/grpc-web+proto"), Some(Encoding::Binary));
        assert_eq!(post("application/gRPC-Web+proto"), Some(Encoding::Binary));
        assert_eq!(post("application/grpc-web-text"), Some(Encoding::Text));
        assert_eq!(
            post("application/grpc-web-text+proto"),
            Some(Encoding::Text)
        );
        assert_eq!(post("application/grpc"), None);
        assert_eq!(post("application/json"), None);
        let get = request("GET", &[("content-type", "application/grpc-web")]);
        assert_eq!(grpc_web_call(&get), None);
    }

    #[test]
    fn the_upstream_request_is_grpc() {
        for (web, grpc) in [
            ("application/grpc-web+proto", "application/grpc+proto"),
            ("application/grpc-web-text+proto", "application/grpc+proto"),
            ("application/grpc-web-text", "application/grpc"),
        ] {
            let mut upstream = request(
                "POST",
                &[
                    ("content-type", web),
                    ("content-length", "12"),
                    ("x-grpc-web", "1"),
                ],
            );
            step(&[])
                .upstream_request(&mut upstream, &mut PathRewrite::default())
                .expect("rewrite");
            assert_eq!(upstream.headers["content-type"], grpc, "{web}");
            assert_eq!(upstream.headers["te"], "trailers");
            assert!(!upstream.headers.contains_key("content-length"));
        }
        let mut plain = request(
            "POST",
            &[
                ("content-type", "application/json"),
                ("content-length", "2"),
            ],
        );
        step(&[])
            .upstream_request(&mut plain, &mut PathRewrite::default())
            .expect("untouched");
        assert_eq!(plain.headers["content-length"], "2");
        assert!(!plain.headers.contains_key("te"));
    }

    fn header<'a>(headers: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().expect("text"))
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_is_answered_with_cors() {
        let asked = [
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type,x-grpc-web,x-user-agent",
            ),
        ];
        let preflight = request("OPTIONS", &asked);
        assert!(grpc_web_preflight(&preflight));
        let answer = preflight_answer(&step(&["https://app.example"]), &preflight);
        assert_eq!(answer.status, 204);
        let h = &answer.headers;
        assert_eq!(
            header(h, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(header(h, "access-control-allow-methods"), Some("POST"));
        assert_eq!(
            header(h, "access-control-allow-headers"),
            Some("content-type,x-grpc-web,x-user-agent")
        );
        assert_eq!(header(h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(header(h, "access-control-max-age"), Some("600"));

        // Another origin, or a method the CORS rules do not allow: only Vary.
        for (origins, method) in [
            (&["https://other.example"][..], "POST"),
            (&["*"][..], "PUT"),
        ] {
            let mut asked = asked.to_vec();
            asked[1].1 = method;
            let answer = preflight_answer(&step(origins), &request("OPTIONS", &asked));
            assert_eq!(answer.status, 204);
            assert_eq!(
                answer.headers.len(),
                1,
                "{origins:?} {method}: {:?}",
                answer.headers
            );
            assert_eq!(answer.headers[0].0, VARY);
        }

        // Not a gRPC-Web preflight: passed on.
        let other = request(
            "OPTIONS",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
            ],
        );
        assert!(!grpc_web_preflight(&other));
    }
}
