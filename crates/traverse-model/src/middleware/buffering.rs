//! `buffering`: the largest request and response bodies a route lets through.

use super::Origin;

/// Traefik `buffering`, validated; `None` is no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffering {
    pub origin: Origin,
    /// A larger request body is answered 413.
    pub max_request_body_bytes: Option<u64>,
    /// A larger response body is answered 500.
    pub max_response_body_bytes: Option<u64>,
}
