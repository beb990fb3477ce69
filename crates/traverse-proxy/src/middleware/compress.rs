//! `compress`: the response body encoded as it streams (gzip, br or zstd), in the
//! encoding the model chooses from the client's `Accept-Encoding`.
//!
//! Each chunk from the upstream is encoded and flushed at once, so a slow stream (events,
//! long polls) is never held back and memory stays bounded by the encoder's window. The
//! decision is taken on the response header: a response without `Content-Length` is
//! compressed whatever its final size (Traefik waits for `minResponseBodyBytes` first).

use std::fmt;
use std::io::{self, Write};

use bytes::Bytes;
use flate2::write::GzEncoder;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    TRANSFER_ENCODING, VARY,
};
use http::{HeaderValue, Method, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::{Error, ErrorType, Result};
use sync_wrapper::SyncWrapper;
use traverse_model::middleware::{Compress, Encoding};

use super::Step;
use crate::exchange::Exchange;

/// zlib's default level.
const GZIP_LEVEL: u32 = 6;
/// The default quality of Traefik's brotli encoder, with Pingora's window (512 KiB)
/// rather than the 4 MiB default, to bound memory per response.
const BROTLI_QUALITY: u32 = 6;
const BROTLI_WINDOW_BITS: u32 = 19;
const BROTLI_BUFFER: usize = 4096;
/// zstd's default level.
const ZSTD_LEVEL: i32 = 3;

impl Step for Compress {
    fn response(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        response: &mut ResponseHeader,
    ) -> Result<()> {
        if !has_full_body(request, response)
            || response.headers.contains_key(CONTENT_ENCODING)
            || exchange.notes().encoder.is_some()
        {
            return Ok(());
        }
        let content_type = response
            .headers
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let length = response
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        if !self.compresses_type(content_type) || length.is_some_and(|l| l < self.min_body_bytes) {
            return Ok(());
        }
        // From here the outcome depends on Accept-Encoding alone: caches must know.
        add_vary(response)?;
        let lines: Vec<&str> = request
            .headers
            .get_all(ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let present = request.headers.contains_key(ACCEPT_ENCODING);
        let Some(encoding) = self.choose(present.then_some(lines.as_slice())) else {
            return Ok(());
        };
        let encoder = Encoder::new(encoding).map_err(|e| {
            Error::because(ErrorType::InternalError, "starting the response encoder", e)
        })?;
        response.insert_header(CONTENT_ENCODING, encoding.token())?;
        // The encoded length is not known ahead, and byte ranges no longer apply.
        response.remove_header(&CONTENT_LENGTH);
        response.remove_header(&ACCEPT_RANGES);
        response.insert_header(TRANSFER_ENCODING, "chunked")?;
        exchange.notes_mut().encoder = Some(encoder);
        Ok(())
    }
}

/// Whether the response carries a whole representation as its body: not for HEAD, 1xx,
/// 204 and 304, nor for a partial (206) content.
fn has_full_body(request: &RequestHeader, response: &ResponseHeader) -> bool {
    let status = response.status;
    request.method != Method::HEAD
        && !status.is_informational()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED
        && status != StatusCode::PARTIAL_CONTENT
        && !response.headers.contains_key(CONTENT_RANGE)
}

/// Adds `Accept-Encoding` to `Vary`, unless already there (or `*`).
fn add_vary(response: &mut ResponseHeader) -> Result<()> {
    let listed = response
        .headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|name| {
            let name = name.trim();
            name == "*" || name.eq_ignore_ascii_case("accept-encoding")
        });
    if !listed {
        response.append_header(VARY, HeaderValue::from_static("Accept-Encoding"))?;
    }
    Ok(())
}

/// The encoder of one response body.
pub(crate) struct Encoder {
    encoding: Encoding,
    /// Only ever used through `&mut`: the wrapper makes the exchange `Sync` without a
    /// lock, though the zstd encoder is not.
    codec: SyncWrapper<Codec>,
}

enum Codec {
    Gzip(GzEncoder<Vec<u8>>),
    /// Taken at the end: finishing the stream consumes the writer.
    Brotli(Option<Box<brotli::CompressorWriter<Vec<u8>>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    pub fn new(encoding: Encoding) -> io::Result<Encoder> {
        let codec = match encoding {
            Encoding::Gzip => Codec::Gzip(GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(GZIP_LEVEL),
            )),
            Encoding::Brotli => Codec::Brotli(Some(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_WINDOW_BITS,
            )))),
            Encoding::Zstd => {
                Codec::Zstd(zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)?)
            }
        };
        Ok(Encoder {
            encoding,
            codec: SyncWrapper::new(codec),
        })
    }

    /// Replaces `body` by its encoding; at the end of the stream, adds the encoding's end.
    pub fn encode(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) -> Result<()> {
        let input = body.as_deref().unwrap_or_default();
        let output = self
            .codec
            .get_mut()
            .encode(input, end_of_stream)
            .map_err(|e| Error::because(ErrorType::InternalError, "compressing the response", e))?;
        *body = (!output.is_empty()).then(|| Bytes::from(output));
        Ok(())
    }
}

impl Codec {
    /// Encodes `input` and flushes it; finishes the stream at `end`.
    fn encode(&mut self, input: &[u8], end: bool) -> io::Result<Vec<u8>> {
        match self {
            Codec::Gzip(gzip) => {
                gzip.write_all(input)?;
                if end {
                    gzip.try_finish()?;
                } else if !input.is_empty() {
                    gzip.flush()?;
                }
                Ok(std::mem::take(gzip.get_mut()))
            }
            Codec::Brotli(slot) => {
                let Some(brotli) = slot.as_mut() else {
                    return Ok(Vec::new());
                };
                brotli.write_all(input)?;
                if end {
                    let rest = slot.take().map(|b| b.into_inner()).unwrap_or_default();
                    return Ok(rest);
                }
                if !input.is_empty() {
                    brotli.flush()?;
                }
                Ok(std::mem::take(brotli.get_mut()))
            }
            Codec::Zstd(zstd) => {
                zstd.write_all(input)?;
                if end {
                    zstd.do_finish()?;
                } else if !input.is_empty() {
                    zstd.flush()?;
                }
                Ok(std::mem::take(zstd.get_mut()))
            }
        }
    }
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("encoding", &self.encoding.token())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn decode(encoding: Encoding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            Encoding::Gzip => flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map(|_| ()),
            Encoding::Brotli => brotli::Decompressor::new(bytes, 4096)
                .read_to_end(&mut out)
                .map(|_| ()),
            Encoding::Zstd => zstd::stream::read::Decoder::new(bytes)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{encoding:?}: {e}"));
        out
    }

    /// What a client decodes from the first bytes of a stream, before its end.
    fn decode_prefix(encoding: Encoding, bytes: &[u8]) -> Vec<u8> {
        fn feed<W: Write>(mut decoder: W, bytes: &[u8]) -> W {
            decoder.write_all(bytes).expect("decodes");
            decoder.flush().expect("flushes");
            decoder
        }
        match encoding {
            Encoding::Gzip => feed(flate2::write::GzDecoder::new(Vec::new()), bytes)
                .get_ref()
                .clone(),
            // A buffer larger than the test's output: this decoder's flush stops at a full one.
            Encoding::Brotli => feed(brotli::DecompressorWriter::new(Vec::new(), 1 << 16), bytes)
                .get_ref()
                .clone(),
            Encoding::Zstd => feed(
                zstd::stream::write::Decoder::new(Vec::new()).expect("zstd"),
                bytes,
            )
            .get_ref()
            .clone(),
        }
    }

    /// Streams `chunks` through an encoder: what was sent after each chunk decodes to
    /// every byte given so far (nothing is held back), and the whole stream decodes.
    #[test]
    fn each_chunk_is_encoded_at_once_and_the_stream_decodes_whole() {
        let chunks: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("chunk {i}: {}\n", "abc".repeat(500)).into_bytes())
            .collect();
        for encoding in [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd] {
            let mut encoder = Encoder::new(encoding).expect("encoder");
            let mut sent = Vec::new();
            for (i, chunk) in chunks.iter().enumerate() {
                let mut body = Some(Bytes::from(chunk.clone()));
                encoder.encode(&mut body, false).expect("encode");
                let out = body.expect("output for each chunk");
                assert!(out.len() < chunk.len(), "{encoding:?} compresses");
                sent.extend_from_slice(&out);
                assert_eq!(
                    decode_prefix(encoding, &sent),
                    chunks[..=i].concat(),
                    "{encoding:?} after chunk {i}"
                );
            }
            let mut end = None;
            encoder.encode(&mut end, true).expect("finish");
            sent.extend_from_slice(&end.expect("the stream's end"));
            assert_eq!(decode(encoding, &sent), chunks.concat(), "{encoding:?}");
        }
    }

    fn traefik_default() -> Compress {
        Compress {
            encodings: traverse_model::middleware::DEFAULT_ENCODINGS.to_vec(),
            default_encoding: None,
            min_body_bytes: 1024,
            content_types: traverse_model::middleware::ContentTypes::Excluded(Vec::new()),
        }
    }

    /// The response header after the step, and whether it left an encoder.
    fn filter(
        method: &str,
        accept: Option<&str>,
        status: u16,
        headers: &[(&str, &str)],
    ) -> (ResponseHeader, bool) {
        let mut request = RequestHeader::build(method, b"/", None).expect("request");
        if let Some(accept) = accept {
            request
                .insert_header(ACCEPT_ENCODING, accept)
                .expect("header");
        }
        let mut response = ResponseHeader::build(status, None).expect("response");
        for (name, value) in headers {
            response
                .append_header(name.to_string(), *value)
                .expect("header");
        }
        let mut exchange = Exchange::new(None);
        traefik_default()
            .response(&request, &mut exchange, &mut response)
            .expect("filter");
        let encoding = exchange.notes().encoder.is_some();
        (response, encoding)
    }

    fn header<'a>(response: &'a ResponseHeader, name: &str) -> Vec<&'a str> {
        response
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().expect("text"))
            .collect()
    }

    #[test]
    fn the_response_header_announces_the_chosen_encoding() {
        let large = [
            ("content-type", "application/json"),
            ("content-length", "2048"),
            ("accept-ranges", "bytes"),
            ("vary", "Origin"),
        ];
        let (response, encodes) = filter("GET", Some("gzip;q=0.5, br;q=0.9"), 200, &large);
        assert!(encodes);
        assert_eq!(header(&response, "content-encoding"), ["br"]);
        assert_eq!(header(&response, "vary"), ["Origin", "Accept-Encoding"]);
        assert!(header(&response, "content-length").is_empty());
        assert!(header(&response, "accept-ranges").is_empty());

        // No Accept-Encoding: not compressed, but the response still varies on it.
        let (response, encodes) = filter("GET", None, 200, &large);
        assert!(!encodes);
        assert!(header(&response, "content-encoding").is_empty());
        assert_eq!(header(&response, "content-length"), ["2048"]);
        assert_eq!(header(&response, "vary"), ["Origin", "Accept-Encoding"]);

        // Unknown length: compressed.
        let (response, encodes) = filter("GET", Some("zstd"), 200, &large[..1]);
        assert!(encodes);
        assert_eq!(header(&response, "content-encoding"), ["zstd"]);
    }

    #[test]
    fn responses_that_cannot_or_need_not_be_compressed_are_untouched() {
        let json = ("content-type", "application/json");
        let long = ("content-length", "4096");
        type Case<'a> = (&'a str, u16, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            ("small", 200, &[json, ("content-length", "1023")]),
            ("encoded", 200, &[json, long, ("content-encoding", "gzip")]),
            ("no content", 204, &[json]),
            ("not modified", 304, &[json, long]),
            (
                "partial",
                206,
                &[json, long, ("content-range", "bytes 0-4095/9000")],
            ),
            ("grpc", 200, &[("content-type", "application/grpc"), long]),
            ("bad type", 200, &[("content-type", "nonsense"), long]),
        ];
        for (case, status, headers) in cases {
            let (response, encodes) = filter("GET", Some("gzip"), *status, headers);
            assert!(!encodes, "{case}");
            assert!(header(&response, "vary").is_empty(), "{case}");
        }
        let (_, encodes) = filter("HEAD", Some("gzip"), 200, &[json, long]);
        assert!(!encodes, "HEAD");
    }

    #[test]
    fn an_empty_body_still_ends_as_a_valid_stream() {
        for encoding in [Encoding::Gzip, Encoding::Brotli, Encoding::Zstd] {
            let mut encoder = Encoder::new(encoding).expect("encoder");
            let mut body = Some(Bytes::new());
            encoder.encode(&mut body, true).expect("finish");
            assert_eq!(decode(encoding, &body.unwrap_or_default()), b"");
        }
    }
}
