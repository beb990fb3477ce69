//! Traffic: `rateLimit` and `inFlightReq`, both 429 when over.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use pingora::Result;
use traverse_model::middleware::Admission;
use traverse_model::{InFlightReq, Origin, RateLimit, SourceCriterion};

use super::access::forwarded_for;
use super::{status_text, Answer, Step, Verdict};
use crate::clock::now_ns;
use crate::exchange::Exchange;
use crate::host::request_host;
use crate::Telemetry;

const TOO_MANY_REQUESTS: u16 = 429;

/// The source a request counts against.
fn source(criterion: &SourceCriterion, request: &RequestHeader, exchange: &Exchange) -> String {
    match criterion {
        SourceCriterion::Ip(strategy) => strategy
            .client_ip(exchange.client_ip(), &forwarded_for(request, exchange))
            .unwrap_or_default(),
        SourceCriterion::Header(name) => request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        SourceCriterion::Host => request_host(request).unwrap_or_default().to_owned(),
    }
}

#[async_trait]
impl Step for RateLimit {
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
        let source = source(&self.source, request, exchange);
        match self.admit(&source, now_ns()) {
            Admission::Now => Ok(Verdict::Continue),
            Admission::After(wait) => {
                // Within the allowed delay: held to keep to the rate, as Traefik does.
                tokio::time::sleep(Duration::from_nanos(wait)).await;
                Ok(Verdict::Continue)
            }
            Admission::Refused(wait) => {
                let wait = Duration::from_nanos(wait);
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut headers = vec![(http::header::RETRY_AFTER, HeaderValue::from(seconds))];
                if let Ok(value) = HeaderValue::from_str(&format!("{wait:?}")) {
                    headers.push((HeaderName::from_static("x-retry-in"), value));
                }
                Ok(Verdict::Answer(Answer {
                    status: TOO_MANY_REQUESTS,
                    headers,
                    body: Bytes::from(status_text(TOO_MANY_REQUESTS)),
                }))
            }
        }
    }
}

#[async_trait]
impl Step for InFlightReq {
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
        let source = source(&self.source, request, exchange);
        match self.acquire(&source) {
            Some(permit) => {
                // Held until the exchange ends, after the response is sent.
                exchange.notes_mut().permits.push(permit);
                Ok(Verdict::Continue)
            }
            None => Ok(Verdict::Answer(Answer {
                status: TOO_MANY_REQUESTS,
                headers: Vec::new(),
                body: Bytes::from(status_text(TOO_MANY_REQUESTS)),
            })),
        }
    }
}
