//! `digestAuth`: RFC 7616 digest authentication, MD5 with `qop=auth`, as Traefik answers
//! it (the `go-http-auth` library's challenge and checks).
//!
//! Nonces are stateless: the time they were issued and a random salt, signed with an
//! HMAC key made when the process starts. Checking one is a signature and a clock
//! comparison, so no request takes a lock or touches a shared map, and no number of
//! clients grows the gateway's memory. `go-http-auth` instead keeps every nonce it issued
//! (up to about a thousand, evicting the oldest) and the last nonce count seen with each,
//! which also refuses a replayed `Authorization` header; here a captured header replays
//! for the same method and URI until its nonce expires ([`NONCE_LIFETIME_S`]), the cost of
//! keeping no state. A nonce that expired, or comes from before a restart, is answered
//! with `stale=true`, so clients retry with the new nonce without asking their user again.

use std::sync::OnceLock;

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderValue};
use pingora::http::RequestHeader;
use pingora::{Error, ErrorType, Result};
use ring::hmac;
use traverse_model::middleware::DigestResponse;
use traverse_model::{DigestAuth, Origin};

use super::{Answer, PathRewrite, Step, Verdict};
use crate::exchange::Exchange;
use crate::Telemetry;

/// How long a nonce is accepted after it was issued.
const NONCE_LIFETIME_S: u64 = 300;

#[async_trait]
impl Step for DigestAuth {
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
        let key = key()?;
        let now = crate::clock::now_ms() / 1000;
        let params = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(digest_params);
        let outcome = match &params {
            Some(params) => check(self, key, now, request, params),
            None => Outcome::Refused,
        };
        // Logged as ClientUsername whether or not the proof matched, as in Traefik.
        exchange.notes_mut().user = params
            .as_ref()
            .and_then(|p| p.get("username"))
            .map(str::to_owned);
        if outcome != Outcome::Authenticated {
            let challenge = challenge(self, key, now, outcome == Outcome::Stale)?;
            return Ok(Verdict::Answer(Answer {
                status: 401,
                headers: vec![
                    (header::WWW_AUTHENTICATE, challenge),
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    ),
                ],
                body: Bytes::from_static(b"401 Unauthorized\n"),
            }));
        }
        if let (Some(field), Some(user)) = (&self.header_field, &exchange.notes().user) {
            if let Ok(value) = HeaderValue::from_str(user) {
                exchange
                    .notes_mut()
                    .upstream_headers
                    .push((field.clone(), Some(value)));
            }
        }
        Ok(Verdict::Continue)
    }

    fn upstream_request(&self, request: &mut RequestHeader, _path: &mut PathRewrite) -> Result<()> {
        if self.remove_header {
            request.remove_header(&header::AUTHORIZATION);
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Authenticated,
    /// The proof matched, but with an expired nonce (or one from before a restart).
    Stale,
    Refused,
}

/// `go-http-auth`'s checks: MD5 (assumed when absent), `qop=auth`, this middleware's
/// opaque, the request's own URI, a matching proof, then a live nonce of ours.
fn check(
    auth: &DigestAuth,
    key: &hmac::Key,
    now: u64,
    request: &RequestHeader,
    params: &Params,
) -> Outcome {
    let field = |name: &str| params.get(name).unwrap_or("");
    let algorithm = params.get("algorithm").unwrap_or("MD5");
    if algorithm != "MD5" || field("qop") != "auth" || field("opaque") != opaque(auth, key) {
        return Outcome::Refused;
    }
    // RFC 7616 section 3.4: the URI of the request line. `go-http-auth` also accepts a
    // prefix of the path, which would let a proof for `/` open every path: not here.
    if field("uri").as_bytes() != request.raw_path() {
        return Outcome::Refused;
    }
    let (ha1, known) = auth.ha1(field("username"));
    let proof = DigestResponse {
        method: request.method.as_str(),
        uri: field("uri"),
        nonce: field("nonce"),
        nc: field("nc"),
        cnonce: field("cnonce"),
        qop: field("qop"),
        response: field("response"),
    };
    if !(proof.matches(ha1) && known) || u64::from_str_radix(field("nc"), 16).is_err() {
        return Outcome::Refused;
    }
    match nonce_issued_at(key, field("nonce")) {
        Some(issued) if now.saturating_sub(issued) <= NONCE_LIFETIME_S && issued <= now => {
            Outcome::Authenticated
        }
        Some(_) => Outcome::Stale,
        // Well formed but not ours: most likely issued before this process started.
        None if field("nonce").len() == NONCE_HEX_LEN => Outcome::Stale,
        None => Outcome::Refused,
    }
}

/// The `WWW-Authenticate` value `go-http-auth` sends, with a fresh nonce.
fn challenge(auth: &DigestAuth, key: &hmac::Key, now: u64, stale: bool) -> Result<HeaderValue> {
    let mut value = format!(
        "Digest realm=\"{}\", nonce=\"{}\", opaque=\"{}\", algorithm=\"MD5\", qop=\"auth\"",
        auth.realm,
        nonce(key, now),
        opaque(auth, key)
    );
    if stale {
        value.push_str(", stale=\"true\"");
    }
    // The realm was checked to be header text when the configuration loaded.
    HeaderValue::from_str(&value)
        .map_err(|e| Error::because(ErrorType::InternalError, "digest challenge", e))
}

/// The process's nonce key, random, made on first use.
fn key() -> Result<&'static hmac::Key> {
    static KEY: OnceLock<Option<hmac::Key>> = OnceLock::new();
    KEY.get_or_init(|| {
        hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new()).ok()
    })
    .as_ref()
    .ok_or_else(|| Error::explain(ErrorType::InternalError, "no random source for nonces"))
}

/// Bytes of a nonce before its signature: the issue time and a salt.
const NONCE_DATA_LEN: usize = 16;
const NONCE_HEX_LEN: usize = 2 * (NONCE_DATA_LEN + 32);

/// A nonce issued at `now` (seconds): hex of the time, a salt and their signature.
fn nonce(key: &hmac::Key, now: u64) -> String {
    let mut data = [0u8; NONCE_DATA_LEN];
    data[..8].copy_from_slice(&now.to_be_bytes());
    // Only makes nonces of the same second differ; the signature is what protects them.
    data[8..].copy_from_slice(&fastrand::u64(..).to_be_bytes());
    let tag = hmac::sign(key, &data);
    let mut text = hex(&data);
    text.push_str(&hex(tag.as_ref()));
    text
}

/// When a nonce of ours was issued (seconds), or `None` when it is not one.
fn nonce_issued_at(key: &hmac::Key, nonce: &str) -> Option<u64> {
    if nonce.len() != NONCE_HEX_LEN {
        return None;
    }
    let bytes = unhex(nonce)?;
    let (data, tag) = bytes.split_at(NONCE_DATA_LEN);
    hmac::verify(key, data, tag).ok()?;
    let issued: [u8; 8] = data[..8].try_into().ok()?;
    Some(u64::from_be_bytes(issued))
}

/// The middleware's `opaque`, constant for the process, as `go-http-auth` keeps one per
/// authenticator.
fn opaque(auth: &DigestAuth, key: &hmac::Key) -> String {
    let tag = hmac::sign(key, format!("opaque {}", auth.origin.name).as_bytes());
    hex(&tag.as_ref()[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// The parameters of a `Digest` authorization, unquoted.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Parses `Digest k=v, k="v", ...` (quoted values may hold commas and `\` escapes).
fn digest_params(value: &str) -> Option<Params> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_owned();
        if chars.next() != Some('=') {
            return None;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
            value = value.trim().to_owned();
        }
        params.push((name, value));
    }
    Some(Params(params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use traverse_model::middleware::md5_hex;

    #[test]
    fn authorization_parameters_parse_quoted_and_bare() {
        let params = digest_params(
            "Digest username=\"Mufasa\", realm=\"a, b\", nonce=\"n\", uri=\"/dir/index.html?x=1\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629\", opaque=\"o\\\"q\"",
        )
        .expect("digest");
        assert_eq!(params.get("username"), Some("Mufasa"));
        assert_eq!(params.get("realm"), Some("a, b"));
        assert_eq!(params.get("uri"), Some("/dir/index.html?x=1"));
        assert_eq!(params.get("qop"), Some("auth"));
        assert_eq!(params.get("nc"), Some("00000001"));
        assert_eq!(params.get("opaque"), Some("o\"q"));
        assert_eq!(params.get("algorithm"), None);
        assert!(digest_params("Basic dGVzdDp0ZXN0").is_none());
        assert!(digest_params("Digest username=\"unterminated").is_none());
        assert!(digest_params("Digest novalue").is_none());
    }

    #[test]
    fn nonces_are_ours_and_dated() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"test key");
        let other = hmac::Key::new(hmac::HMAC_SHA256, b"another key");
        let nonce = nonce(&key, 1234);
        assert_eq!(nonce.len(), NONCE_HEX_LEN);
        assert_eq!(nonce_issued_at(&key, &nonce), Some(1234));
        assert_eq!(nonce_issued_at(&other, &nonce), None, "another process's");
        let mut forged = nonce.clone().into_bytes();
        // A later issue time without the signature to match.
        forged[15] = b'f';
        let forged = String::from_utf8(forged).expect("hex");
        assert_eq!(nonce_issued_at(&key, &forged), None);
        assert_eq!(
            nonce_issued_at(&key, "dcd98b7102dd2f0e8b11d0f600bfb0c093"),
            None
        );
        assert_ne!(super::nonce(&key, 1234), nonce, "salted");
    }

    fn auth() -> DigestAuth {
        DigestAuth {
            origin: Origin {
                name: "apps/digest".into(),
                kind: "digestAuth",
            },
            realm: "traefik".into(),
            users: vec![("test".into(), md5_hex(&["test:traefik:test"]))],
            remove_header: false,
            header_field: None,
        }
    }

    /// What a client answers to a challenge with `nonce`, for `GET uri`.
    fn authorization(
        auth: &DigestAuth,
        key: &hmac::Key,
        nonce: &str,
        uri: &str,
        pw: &str,
    ) -> String {
        let ha1 = md5_hex(&["test:traefik:", pw]);
        let ha2 = md5_hex(&["GET:", uri]);
        let response = md5_hex(&[&ha1, ":", nonce, ":00000001:c0ffee:auth:", &ha2]);
        format!(
            "Digest username=\"test\", realm=\"traefik\", nonce=\"{nonce}\", uri=\"{uri}\", \
             algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\", response=\"{response}\", \
             opaque=\"{}\"",
            opaque(auth, key)
        )
    }

    fn outcome(
        auth: &DigestAuth,
        key: &hmac::Key,
        now: u64,
        uri: &str,
        authorization: &str,
    ) -> Outcome {
        let request = RequestHeader::build("GET", uri.as_bytes(), None).expect("request");
        check(
            auth,
            key,
            now,
            &request,
            &digest_params(authorization).expect("digest"),
        )
    }

    #[test]
    fn proofs_are_checked_against_user_uri_and_nonce_age() {
        let auth = auth();
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"test key");
        let fresh = nonce(&key, 1000);
        let good = authorization(&auth, &key, &fresh, "/a?b=c", "test");
        assert_eq!(
            outcome(&auth, &key, 1000, "/a?b=c", &good),
            Outcome::Authenticated
        );
        assert_eq!(
            outcome(&auth, &key, 1000 + NONCE_LIFETIME_S, "/a?b=c", &good),
            Outcome::Authenticated
        );
        assert_eq!(
            outcome(&auth, &key, 1001 + NONCE_LIFETIME_S, "/a?b=c", &good),
            Outcome::Stale,
            "an expired nonce with a good proof"
        );
        assert_eq!(
            outcome(&auth, &key, 1000, "/a", &good),
            Outcome::Refused,
            "another URI"
        );
        let wrong = authorization(&auth, &key, &fresh, "/a?b=c", "wrong");
        assert_eq!(
            outcome(&auth, &key, 1000, "/a?b=c", &wrong),
            Outcome::Refused
        );
        let restarted = hmac::Key::new(hmac::HMAC_SHA256, b"new process");
        let old = authorization(&auth, &key, &nonce(&restarted, 1000), "/a?b=c", "test");
        assert_eq!(outcome(&auth, &key, 1000, "/a?b=c", &old), Outcome::Stale);
        let made_up = authorization(&auth, &key, "abc", "/a?b=c", "test");
        assert_eq!(
            outcome(&auth, &key, 1000, "/a?b=c", &made_up),
            Outcome::Refused
        );
        let sha = good.replace("algorithm=MD5", "algorithm=SHA-256");
        assert_eq!(outcome(&auth, &key, 1000, "/a?b=c", &sha), Outcome::Refused);
        let no_opaque = good.replace("opaque=", "x=");
        assert_eq!(
            outcome(&auth, &key, 1000, "/a?b=c", &no_opaque),
            Outcome::Refused
        );
    }
}
