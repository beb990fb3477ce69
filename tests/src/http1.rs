//! Just enough HTTP/1.1 framing for the test client and the test upstream: a message
//! head, then a body framed by `Content-Length`, `chunked`, or the end of the stream.

use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Longest head accepted; anything larger is a framing bug in the test, not a real message.
const MAX_HEAD: usize = 64 * 1024;

/// A start line and its header fields, names as received (case kept), duplicates kept.
#[derive(Debug, Clone)]
pub struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    /// The head exactly as received, up to and including the blank line.
    pub raw: Vec<u8>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Every value of header `name` (case-insensitive), in order.
pub fn header_all<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The first value of header `name` (case-insensitive) in a list of fields.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads one message head. `Ok(None)` on a clean end of stream before any byte.
pub async fn read_head<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<Head>> {
    let mut lines = Vec::new();
    let mut total = 0;
    let mut raw = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line).await?;
        raw.extend_from_slice(&line);
        if n == 0 {
            if lines.is_empty() && total == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(invalid("message head too large"));
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        if text.is_empty() {
            if lines.is_empty() {
                // Tolerate stray blank lines between messages (RFC 9112 §2.2).
                raw.clear();
                continue;
            }
            break;
        }
        lines.push(text);
    }
    let start_line = lines.remove(0);
    let mut headers = Vec::with_capacity(lines.len());
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(&format!("header line without ':': {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(Some(Head {
        start_line,
        headers,
        raw,
    }))
}

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilEof,
}

/// Framing of a request body (no body unless announced).
pub fn request_framing(head: &Head) -> io::Result<Framing> {
    if is_chunked(head) {
        return Ok(Framing::Chunked);
    }
    match head.header("content-length") {
        Some(length) => Ok(Framing::Length(
            length.parse().map_err(|_| invalid("bad content-length"))?,
        )),
        None => Ok(Framing::None),
    }
}

/// Framing of a response body to a request with `method`.
pub fn response_framing(head: &Head, method: &str, status: u16) -> io::Result<Framing> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        return Ok(Framing::None);
    }
    if is_chunked(head) {
        return Ok(Framing::Chunked);
    }
    match head.header("content-length") {
        Some(length) => Ok(Framing::Length(
            length.parse().map_err(|_| invalid("bad content-length"))?,
        )),
        None => Ok(Framing::UntilEof),
    }
}

fn is_chunked(head: &Head) -> bool {
    head.header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
}

/// Reads a body with the given framing.
pub async fn read_body<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    framing: Framing,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    match framing {
        Framing::None => {}
        Framing::Length(length) => {
            body.resize(length, 0);
            reader.read_exact(&mut body).await?;
        }
        Framing::UntilEof => {
            reader.read_to_end(&mut body).await?;
        }
        Framing::Chunked => loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a chunked body",
                ));
            }
            let text = String::from_utf8_lossy(&line);
            let size = text.trim().split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size line"))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut trailer = Vec::new();
                    if reader.read_until(b'\n', &mut trailer).await? == 0
                        || trailer == b"\r\n"
                        || trailer == b"\n"
                    {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).await?;
            let mut crlf = Vec::new();
            reader.read_until(b'\n', &mut crlf).await?;
        },
    }
    Ok(body)
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}
