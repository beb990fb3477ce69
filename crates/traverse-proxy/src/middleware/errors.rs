//! `errors`: an upstream response whose status is listed gets the body and headers of an
//! error page fetched from another Service, and keeps its status, as in Traefik. The page
//! request is a CLIENT span of the request's trace, with its context injected.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::HeaderName;
use http_body_util::Empty;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::Result;
use traverse_model::middleware::Errors;
use traverse_model::Origin;

use super::calls::call;
use super::Step;
use crate::clock::now_ms;
use crate::exchange::Exchange;
use crate::host::request_host;
use crate::Telemetry;

/// An error page larger than this is not used.
const MAX_PAGE_BYTES: usize = 1 << 20;
/// How long fetching a page may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(5);

/// A fetched page: what replaces the upstream's response.
pub(crate) struct Page {
    headers: Vec<(HeaderName, http::HeaderValue)>,
    body: Bytes,
}

#[async_trait]
impl Step for Errors {
    fn intercepts(&self) -> bool {
        true
    }

    fn origin(&self) -> Option<&Origin> {
        Some(&self.origin)
    }

    async fn intercept(
        &self,
        request: &RequestHeader,
        exchange: &mut Exchange,
        response: &mut ResponseHeader,
        telemetry: &Telemetry,
    ) -> Result<()> {
        let status = response.status.as_u16();
        // The page replaces the upstream's body chunk by chunk: a response announced
        // without one (HEAD, `Content-Length: 0`) keeps its own.
        let bodiless = request.method == http::Method::HEAD
            || response
                .headers
                .get(CONTENT_LENGTH)
                .is_some_and(|length| length.as_bytes() == b"0");
        if !self.catches(status) || bodiless || exchange.notes().page.is_some() {
            return Ok(());
        }
        let url = request
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let escaped: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
        let path = self.page(status, &escaped);
        let call = exchange.begin_call(telemetry, "errors");
        let context = call.as_ref().map(|c| c.context_headers());
        let fetched = fetch(self, &path, request_host(request), context).await;
        if let Some(call) = call {
            let outcome = fetched
                .as_ref()
                .map(|(code, _)| *code)
                .map_err(Clone::clone);
            exchange.end_call(telemetry, call, outcome);
        }
        let page = match fetched {
            Ok((_, page)) => page,
            Err(why) => {
                // The upstream's own response goes out instead.
                tracing::debug!(middleware = %self.origin.name, %why, "error page not fetched");
                return Ok(());
            }
        };
        let mut replaced = ResponseHeader::build(status, Some(page.headers.len() + 1))?;
        for (name, value) in &page.headers {
            replaced.append_header(name.clone(), value.clone())?;
        }
        replaced.insert_header(CONTENT_LENGTH, page.body.len())?;
        *response = replaced;
        exchange.notes_mut().page = Some(Some(page.body));
        Ok(())
    }
}

/// Gets `path` from one of the error Service's endpoints: its status and page.
async fn fetch(
    errors: &Errors,
    path: &str,
    host: Option<&str>,
    context: Option<traverse_telemetry::propagation::Outbound>,
) -> std::result::Result<(u16, Page), String> {
    let servers = &errors.service.servers;
    let (_, endpoint) = servers
        .select(&[], now_ms())
        .or_else(|| servers.select_untried(&[]))
        .ok_or("the error Service has no endpoint")?;
    let mut builder = http::Request::get(format!("http://{}{path}", endpoint.address));
    if let Some(host) = host {
        builder = builder.header(HOST, host);
    }
    if let Some(context) = context {
        if let Some(value) = context.traceparent {
            builder = builder.header("traceparent", value);
        }
        if let Some(value) = context.tracestate {
            builder = builder.header("tracestate", value);
        }
    }
    let page_request = builder.body(Empty::new()).map_err(|e| e.to_string())?;
    let (parts, body) = call(page_request, PAGE_TIMEOUT, MAX_PAGE_BYTES).await?;
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| ![CONNECTION, TRANSFER_ENCODING, CONTENT_LENGTH].contains(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    Ok((parts.status.as_u16(), Page { headers, body }))
}
