//! Access control: `basicAuth`, `ipAllowList` (and `ipWhiteList`).

use std::borrow::Cow;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderValue};
use pingora::http::RequestHeader;
use pingora::{Error, ErrorType, Result};
use traverse_model::{BasicAuth, IpAllowList, Origin};

use super::{status_text, Answer, PathRewrite, Step, Verdict};
use crate::exchange::Exchange;
use crate::Telemetry;

#[async_trait]
impl Step for BasicAuth {
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
        let credentials = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| basic_credentials(value.as_bytes()));
        let authenticated = match &credentials {
            Some((user, password)) => check(self, user, password).await?,
            None => false,
        };
        let user = credentials.map(|(user, _)| user);
        // Logged as ClientUsername whether or not the password matched, as in Traefik.
        exchange.notes_mut().user = user.clone();
        if !authenticated {
            return Ok(Verdict::Answer(Answer {
                status: 401,
                headers: vec![(header::WWW_AUTHENTICATE, self.challenge.clone())],
                body: Bytes::from_static(b"401 Unauthorized\n"),
            }));
        }
        if let (Some(field), Some(user)) = (&self.header_field, user) {
            if let Ok(value) = HeaderValue::from_str(&user) {
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

/// Verifies a password; bcrypt, slow by design, runs on the blocking pool so it does
/// not hold up the requests sharing this thread.
async fn check(auth: &BasicAuth, user: &str, password: &[u8]) -> Result<bool> {
    {
        let Some((credential, known)) = auth.credential(user) else {
            return Ok(false);
        };
        let matches = if credential.is_slow() {
            let credential = credential.clone();
            let password = password.to_vec();
            tokio::task::spawn_blocking(move || credential.verify(&password))
                .await
                .map_err(|e| Error::because(ErrorType::InternalError, "password check", e))?
        } else {
            credential.verify(password)
        };
        Ok(known && matches)
    }
}

/// `user` and `password` of a `Basic` authorization (Go's `Request.BasicAuth`).
fn basic_credentials(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&value[6..])
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[async_trait]
impl Step for IpAllowList {
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
        if self.allows(exchange.client_ip(), &forwarded_for(request, exchange)) {
            return Ok(Verdict::Continue);
        }
        Ok(Verdict::Answer(Answer {
            status: self.reject_status,
            headers: Vec::new(),
            body: Bytes::from(status_text(self.reject_status)),
        }))
    }
}

/// The `X-Forwarded-For` chain as Traefik's middlewares see it: a trusted proxy's,
/// every line joined; nothing from anyone else (the entrypoint drops what they send).
pub(super) fn forwarded_for<'a>(request: &'a RequestHeader, exchange: &Exchange) -> Cow<'a, str> {
    if !exchange.notes().forwarded_trusted {
        return Cow::Borrowed("");
    }
    let mut lines = request
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    match (lines.next(), lines.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(one), None) => Cow::Borrowed(one),
        (Some(first), Some(second)) => {
            let mut joined = format!("{first}, {second}");
            for line in lines {
                joined.push_str(", ");
                joined.push_str(line);
            }
            Cow::Owned(joined)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::basic_credentials;

    #[test]
    fn basic_credentials_parse_like_go() {
        // "alice:open:sesame"
        let (user, password) =
            basic_credentials(b"Basic YWxpY2U6b3BlbjpzZXNhbWU=").expect("credentials");
        assert_eq!(user, "alice");
        assert_eq!(password, b"open:sesame");
        assert!(basic_credentials(b"basic YWxpY2U6eA==").is_some());
        assert!(basic_credentials(b"Bearer YWxpY2U6eA==").is_none());
        assert!(basic_credentials(b"Basic !!!").is_none());
        assert!(basic_credentials(b"Basic YWxpY2U=").is_none(), "no colon");
    }
}
