//! One entrypoint as a Pingora service.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::v2::server::H2Options;
use pingora::protocols::http::ServerSession;
use pingora::protocols::Stream;
use pingora::proxy::{http_proxy, HttpProxy};
use pingora::server::configuration::ServerConf;
use pingora::server::ShutdownWatch;
use pingora::services::listening::Service;
use traverse_config::{EntryPoint, Upstream};

use crate::{Gateway, GatewayOptions, GatewayState};

/// The proxy of one entrypoint, with the entrypoint's timeouts applied from the first byte
/// of every request. Pingora reads a new connection's first header under a fixed 60 s
/// keep-alive timer and only lets `request_filter` change it, after the header is in; a
/// client trickling a header (slowloris) must be cut off by the configured timeout instead.
pub struct EntryPointApp {
    proxy: Arc<HttpProxy<Gateway>>,
    read_timeout: Duration,
    keepalive_seconds: u64,
}

/// A listening service for the entrypoint `name`, serving from `state`.
pub fn entrypoint_service(
    conf: &Arc<ServerConf>,
    name: &str,
    entry_point: &EntryPoint,
    upstream: &Upstream,
    state: Arc<GatewayState>,
) -> Service<EntryPointApp> {
    let options = GatewayOptions::new(name, entry_point, upstream);
    let keepalive_seconds = options.keepalive_seconds;
    let mut proxy = http_proxy(conf, Gateway::new(options, state));
    let mut server_options = HttpServerOptions::default();
    server_options.h2c = entry_point.h2c;
    proxy.server_options = Some(server_options);
    let app = EntryPointApp {
        proxy: Arc::new(proxy),
        read_timeout: entry_point.timeouts.read,
        keepalive_seconds,
    };
    let mut service = Service::new(format!("entrypoint {name}"), app);
    service.add_tcp(&entry_point.address);
    service
}

#[async_trait]
impl HttpServerApp for EntryPointApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        session.set_read_timeout(Some(self.read_timeout));
        // A session Pingora marked not reusable (shutting down) stays so.
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(self.keepalive_seconds));
        }
        self.proxy.process_new_http(session, shutdown).await
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.proxy.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.proxy.server_options()
    }

    async fn http_cleanup(&self) {
        self.proxy.http_cleanup().await
    }

    async fn process_custom_session(
        self: Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        Arc::clone(&self.proxy)
            .process_custom_session(stream, shutdown)
            .await
    }
}
