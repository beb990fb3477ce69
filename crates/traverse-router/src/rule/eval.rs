//! Rule evaluation against a request. Nothing here allocates on the common
//! path: hosts are lowercased into a stack buffer, query strings are decoded
//! lazily while comparing.

use std::borrow::Cow;
use std::net::IpAddr;

use super::{Expr, HostPattern, Matcher, Pattern};
use crate::request::Request;

/// A request plus its host normalized once: port stripped, ASCII-lowercased,
/// IPv6 brackets removed. A trailing dot is kept (`HostRegexp` sees it).
pub(crate) struct Ctx<'r, 'a> {
    pub(crate) req: &'r Request<'a>,
    pub(crate) host: &'r str,
}

impl Ctx<'_, '_> {
    /// The host as compared against `Host(...)` patterns: also without one
    /// trailing dot, so `example.com.` and `example.com` are the same host.
    pub(crate) fn host_key(&self) -> &str {
        host_key(self.host)
    }
}

pub(crate) fn host_key(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

/// Longest host lowercased on the stack; longer ones (beyond DNS's 253) allocate.
const HOST_BUF: usize = 256;

/// Calls `f` with `raw` port-stripped and ASCII-lowercased, borrowing `raw`
/// when it is already lowercase and otherwise using a stack buffer.
pub(crate) fn with_normalized_host<R>(raw: &str, f: impl FnOnce(&str) -> R) -> R {
    let host = strip_port(raw);
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return f(host);
    }
    let mut buf = [0u8; HOST_BUF];
    if let Some(dst) = buf.get_mut(..host.len()) {
        dst.copy_from_slice(host.as_bytes());
        dst.make_ascii_lowercase();
        // ASCII lowercasing only rewrites ASCII bytes to ASCII bytes, so the
        // buffer is still valid UTF-8 and this branch is always taken.
        if let Ok(lower) = std::str::from_utf8(dst) {
            return f(lower);
        }
    }
    f(&host.to_ascii_lowercase())
}

/// Strips a `:port` suffix: `example.com:80` → `example.com`,
/// `[::1]:80` and `[::1]` → `::1`. A bare IPv6 literal (several colons, no
/// brackets) is left untouched since it cannot carry a port.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &rest[..end],
            None => host,
        };
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => name,
        _ => host,
    }
}

impl Expr {
    pub(super) fn eval(&self, ctx: &Ctx<'_, '_>) -> bool {
        match self {
            Expr::Or(items) => items.iter().any(|e| e.eval(ctx)),
            Expr::And(items) => items.iter().all(|e| e.eval(ctx)),
            Expr::Not(inner) => !inner.eval(ctx),
            Expr::Match(m) => m.eval(ctx),
        }
    }
}

impl Matcher {
    fn eval(&self, ctx: &Ctx<'_, '_>) -> bool {
        let req = ctx.req;
        match self {
            Matcher::Host(patterns) => {
                let host = ctx.host_key();
                !host.is_empty() && patterns.iter().any(|p| p.matches(host))
            }
            Matcher::HostRegexp(res) => res.iter().any(|re| re.matches(ctx.host)),
            Matcher::Path(paths) => paths.iter().any(|p| req.path == p),
            Matcher::PathPrefix(prefixes) => prefixes.iter().any(|p| req.path.starts_with(p)),
            Matcher::PathRegexp(res) => res.iter().any(|re| re.matches(req.path)),
            Matcher::Header { name, value } => name.as_ref().is_some_and(|name| {
                req.headers
                    .get_all(name)
                    .iter()
                    .any(|v| v.as_bytes() == value.as_bytes())
            }),
            Matcher::HeaderRegexp { name, regex } => name.as_ref().is_some_and(|name| {
                req.headers
                    .get_all(name)
                    .iter()
                    .any(|v| regex.is_match(v.as_bytes()))
            }),
            Matcher::Method(methods) => methods.iter().any(|m| m.eq_ignore_ascii_case(req.method)),
            Matcher::Query { key, value } => req.query.is_some_and(|q| {
                query_pairs(q).any(|(k, v)| {
                    decoded_eq(k, key.as_bytes())
                        && value
                            .as_ref()
                            .is_none_or(|want| decoded_eq(v, want.as_bytes()))
                })
            }),
            Matcher::QueryRegexp { key, regex } => req.query.is_some_and(|q| {
                query_pairs(q)
                    .any(|(k, v)| decoded_eq(k, key.as_bytes()) && regex.is_match(decode(v)))
            }),
            Matcher::ClientIp(nets) => req.client_ip.is_some_and(|ip| {
                // Like Go's net.IPNet, an IPv4-mapped IPv6 client (::ffff:a.b.c.d)
                // also matches IPv4 networks.
                let mapped = match ip {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
                    IpAddr::V4(_) => None,
                };
                nets.iter()
                    .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)))
            }),
        }
    }
}

impl Pattern {
    /// Same answer as the regex's `is_match` (an unanchored search).
    pub(crate) fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Exact(exact) => text == exact.as_ref(),
            Pattern::Prefix(prefix) => text.starts_with(prefix.as_ref()),
            Pattern::Regex(re) => re.is_match(text),
        }
    }
}

impl HostPattern {
    /// `host` must already be normalized like [`Ctx::host_key`].
    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .and_then(|labels| labels.strip_suffix('.'))
                .is_some_and(|labels| !labels.is_empty()),
        }
    }
}

/// Raw `key=value` pairs of an `application/x-www-form-urlencoded` string; a
/// pair without `=` has an empty value, empty pairs are skipped.
fn query_pairs(query: &str) -> impl Iterator<Item = (&[u8], &[u8])> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k.as_bytes(), v.as_bytes())
    })
}

/// Form decoding as an iterator: `+` is a space, `%XX` a byte, and a `%` not
/// followed by two hex digits is kept literally.
struct Decode<'a> {
    rest: &'a [u8],
}

impl Iterator for Decode<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        match first {
            b'+' => Some(b' '),
            b'%' => {
                if let [hi, lo, tail @ ..] = rest {
                    if let (Some(hi), Some(lo)) = (hex(*hi), hex(*lo)) {
                        self.rest = tail;
                        return Some(hi << 4 | lo);
                    }
                }
                Some(b'%')
            }
            b => Some(b),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn decoded_eq(raw: &[u8], want: &[u8]) -> bool {
    if !raw.iter().any(|&b| b == b'+' || b == b'%') {
        return raw == want;
    }
    Decode { rest: raw }.eq(want.iter().copied())
}

fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if raw.iter().any(|&b| b == b'+' || b == b'%') {
        Cow::Owned(Decode { rest: raw }.collect())
    } else {
        Cow::Borrowed(raw)
    }
}
