//! The HTTP calls middlewares make on a request's behalf (error pages, forwardAuth):
//! one pooled client for the process, a deadline and a bound on what is read.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

type CallClient = Client<HttpConnector, Empty<Bytes>>;

/// Made on first use.
fn client() -> &'static CallClient {
    static CLIENT: OnceLock<CallClient> = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
}

/// Sends `request` (plain HTTP) and reads its answer, within `deadline` and `max_body`.
pub(super) async fn call(
    request: http::Request<Empty<Bytes>>,
    deadline: Duration,
    max_body: usize,
) -> Result<(http::response::Parts, Bytes), String> {
    let exchange = async {
        let response = client()
            .request(request)
            .await
            .map_err(|e| error_chain(&e))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((parts, body))
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .map_err(|_| format!("no answer within {deadline:?}"))?
}

/// An error and its causes, which hyper's errors keep apart.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
