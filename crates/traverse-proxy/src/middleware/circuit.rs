//! `circuitBreaker`: while tripped, the route's requests are answered `responseCode`
//! without reaching the upstream; the responses of those let through feed the breaker.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::RequestHeader;
use pingora::Result;
use traverse_model::middleware::CircuitBreaker;
use traverse_model::Origin;

use super::{status_text, Answer, Step, Verdict};
use crate::clock::now_ms;
use crate::exchange::Exchange;
use crate::Telemetry;

#[async_trait]
impl Step for CircuitBreaker {
    fn acts_on_request(&self) -> bool {
        true
    }

    fn origin(&self) -> Option<&Origin> {
        Some(&self.origin)
    }

    async fn request(
        &self,
        _request: &RequestHeader,
        exchange: &mut Exchange,
        _telemetry: &Telemetry,
    ) -> Result<Verdict> {
        if !self.admit(now_ms(), fastrand::f64()) {
            return Ok(Verdict::Answer(Answer {
                status: self.response_code,
                headers: Vec::new(),
                body: Bytes::from(status_text(self.response_code)),
            }));
        }
        exchange
            .notes_mut()
            .circuits
            .push(Arc::clone(&self.circuit));
        Ok(Verdict::Continue)
    }
}
