//! The sample upstream behind each child: answers every request with a small JSON body
//! naming the app, its cluster and child gateway, so the demo can tell which cluster
//! served a request. It opens no spans; the `traceparent` it received is echoed to show
//! the context reached it.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::http::{bind, respond, serve};

/// Who an app instance is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub app: String,
    pub cluster: String,
    /// The child gateway in front of it.
    pub gateway: String,
}

/// Serves `identity` on `address` until the runtime stops; returns the bound address.
pub async fn start(address: SocketAddr, identity: Identity) -> anyhow::Result<SocketAddr> {
    let what = format!("the sample app of {}", identity.gateway);
    let listener = bind(address, &what).await?;
    let bound = listener.local_addr().unwrap_or(address);
    serve(listener, move |request| {
        let response = answer(&identity, &request);
        async move { response }
    });
    Ok(bound)
}

fn answer(identity: &Identity, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body = serde_json::json!({
        "app": identity.app,
        "cluster": identity.cluster,
        "gateway": identity.gateway,
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "traceparent": header("traceparent"),
    });
    let mut text = body.to_string();
    text.push('\n');
    respond(StatusCode::OK, "application/json", Bytes::from(text))
}

/// The cluster named in an app's answer, if the body is one.
pub fn cluster_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("cluster")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::send;
    use hyper::Method;
    use std::time::Duration;

    #[tokio::test]
    async fn answers_any_request_with_its_identity() {
        let address = start(
            "127.0.0.1:0".parse().expect("an address"),
            Identity {
                app: "whoami".into(),
                cluster: "eu-west".into(),
                gateway: "child-a".into(),
            },
        )
        .await
        .expect("the app starts");
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let reply = send(
            address,
            Method::POST,
            "/orders/42?x=1",
            &[("traceparent", traceparent)],
            Bytes::from_static(b"ignored"),
            Duration::from_secs(5),
        )
        .await
        .expect("the app answers");
        assert_eq!(reply.status, StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
        assert_eq!(body["app"], "whoami");
        assert_eq!(body["cluster"], "eu-west");
        assert_eq!(body["gateway"], "child-a");
        assert_eq!(body["method"], "POST");
        assert_eq!(body["path"], "/orders/42");
        assert_eq!(body["traceparent"], traceparent);
        assert_eq!(cluster_of(&reply.body).as_deref(), Some("eu-west"));
        assert_eq!(cluster_of(b"<html>"), None);
    }
}
