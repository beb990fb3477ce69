//! `headers`: custom request and response headers, CORS (preflights answered here) and
//! security headers, in Traefik's order: the security headers are set on the response
//! first, then the custom response headers, then CORS.

use async_trait::async_trait;
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use traverse_model::{Cors, Headers, Origin, Security};

use super::{Answer, PathRewrite, Step, Verdict};
use crate::exchange::Exchange;
use crate::host::request_host;
use crate::Telemetry;

const ACCESS_CONTROL_REQUEST_METHOD: &str = "access-control-request-method";
const ACCESS_CONTROL_REQUEST_HEADERS: &str = "access-control-request-headers";

#[async_trait]
impl Step for Headers {
    fn acts_on_request(&self) -> bool {
        self.cors.is_some()
            || self
                .security
                .as_ref()
                .is_some_and(|s| !s.allowed_hosts.is_empty())
    }

    fn origin(&self) -> Option<&Origin> {
        Some(&self.origin)
    }

    async fn request(
        &self,
        request: &RequestHeader,
        _exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        if let Some(answer) = self.cors.as_ref().and_then(|c| preflight(c, request)) {
            return Ok(Verdict::Answer(answer));
        }
        if let Some(security) = &self.security {
            let host = security
                .hosts_proxy_headers
                .iter()
                .find_map(|name| text(request, name).filter(|v| !v.is_empty()))
                .or_else(|| request_host(request))
                .unwrap_or_default();
            if !security.host_allowed(host) {
                // unrolled/secure's answer to a host outside allowedHosts.
                return Ok(Verdict::Answer(Answer {
                    status: 500,
                    headers: vec![(
                        HeaderName::from_static("x-content-type-options"),
                        HeaderValue::from_static("nosniff"),
                    )],
                    body: Bytes::from_static(b"Bad Host\n"),
                }));
            }
        }
        Ok(Verdict::Continue)
    }

    fn upstream_request(&self, request: &mut RequestHeader, _path: &mut PathRewrite) -> Result<()> {
        for (name, value) in &self.request {
            match value {
                Some(value) => request.insert_header(name.clone(), value.clone())?,
                None => {
                    request.remove_header(name);
                }
            }
        }
        Ok(())
    }

    fn response(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        response: &mut ResponseHeader,
    ) -> Result<()> {
        if let Some(security) = &self.security {
            secure(security, request, exchange, response)?;
        }
        for (name, value) in &self.response {
            match value {
                Some(value) => response.insert_header(name.clone(), value.clone())?,
                None => {
                    response.remove_header(name);
                }
            }
        }
        if let Some(cors) = &self.cors {
            cors_response(cors, request, response)?;
        }
        Ok(())
    }
}

fn text(request: &RequestHeader, name: impl http::header::AsHeaderName) -> Option<&str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The answer to a CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), or `None` for any other request.
fn preflight(cors: &Cors, request: &RequestHeader) -> Option<Answer> {
    let method = text(request, ACCESS_CONTROL_REQUEST_METHOD).filter(|m| !m.is_empty())?;
    let origin = text(request, header::ORIGIN).filter(|o| !o.is_empty())?;
    if request.method != Method::OPTIONS {
        return None;
    }
    let mut headers = Vec::new();
    if cors.allow_credentials {
        headers.push((
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        ));
    }
    if cors.allow_headers_wildcard && cors.allow_credentials {
        if let Some(asked) = request
            .headers
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .filter(|v| !v.is_empty())
        {
            headers.push((header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone()));
        }
    } else if let Some(allowed) = &cors.allow_headers {
        headers.push((header::ACCESS_CONTROL_ALLOW_HEADERS, allowed.clone()));
    }
    if cors.allow_methods_wildcard && cors.allow_credentials {
        if let Ok(method) = HeaderValue::from_str(method) {
            headers.push((header::ACCESS_CONTROL_ALLOW_METHODS, method));
        }
    } else if let Some(allowed) = &cors.allow_methods {
        headers.push((header::ACCESS_CONTROL_ALLOW_METHODS, allowed.clone()));
    }
    if let Some(allowed) = cors
        .allowed_origin(origin)
        .and_then(|o| HeaderValue::from_str(o).ok())
    {
        headers.push((header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed));
    }
    if let Some(age) = cors.max_age {
        headers.push((header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age)));
    }
    if let Some(expose) = cors.expose_headers() {
        headers.push((header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone()));
    }
    Some(Answer {
        status: 200,
        headers,
        body: Bytes::new(),
    })
}

/// CORS headers on an actual response.
fn cors_response(
    cors: &Cors,
    request: &RequestHeader,
    response: &mut ResponseHeader,
) -> Result<()> {
    let origin = text(request, header::ORIGIN).unwrap_or_default();
    if let Some(allowed) = cors
        .allowed_origin(origin)
        .and_then(|o| HeaderValue::from_str(o).ok())
    {
        response.insert_header(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed)?;
    }
    if cors.allow_credentials {
        response.insert_header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")?;
    }
    if let Some(expose) = cors.expose_headers() {
        response.insert_header(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone())?;
    }
    if cors.add_vary {
        let vary = response
            .headers
            .get(header::VARY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if vary != "Origin" {
            let vary = if vary.is_empty() {
                "Origin".to_owned()
            } else {
                format!("{vary},Origin")
            };
            response.insert_header(header::VARY, vary)?;
        }
    }
    Ok(())
}

/// Security headers; STS and key pins only on HTTPS requests (the listener's scheme,
/// or an `sslProxyHeaders` match) unless forced.
fn secure(
    security: &Security,
    request: &RequestHeader,
    exchange: &Exchange,
    response: &mut ResponseHeader,
) -> Result<()> {
    let https = exchange.scheme() == "https"
        || security.ssl_proxy_headers.iter().any(|(name, expected)| {
            // An untrusted client's X-Forwarded-Proto is replaced by the gateway's own.
            if name == "x-forwarded-proto" && !exchange.notes().forwarded_trusted {
                return exchange.scheme() == expected;
            }
            text(request, name) == Some(expected.as_str())
        });
    if !security.development {
        if let Some(sts) = security
            .sts
            .as_ref()
            .filter(|_| https || security.force_sts)
        {
            response.insert_header(header::STRICT_TRANSPORT_SECURITY, sts.clone())?;
        }
        if let Some(pins) = security.public_key.as_ref().filter(|_| https) {
            response.insert_header("public-key-pins", pins.clone())?;
        }
    }
    for (name, value) in &security.always {
        response.insert_header(name.clone(), value.clone())?;
    }
    Ok(())
}
