//! A bare Pingora proxy, the baseline the load benchmarks compare Traverse with: every
//! request goes to one upstream, nothing else happens. Same allocator as Traverse, and
//! the Pingora settings are arguments so a run can match Traverse's.
//!
//!   bare_pingora LISTEN UPSTREAM [--threads N] [--no-work-stealing] [--no-h2c] [--pool N]

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::prelude::HttpPeer;
use pingora::proxy::{http_proxy_service, ProxyHttp, Session};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::Result;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bare_pingora LISTEN UPSTREAM [--threads N] [--no-work-stealing] [--no-h2c] [--pool N]";
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let Ok(upstream) = upstream.parse::<SocketAddr>() else {
        eprintln!("UPSTREAM must be ip:port\n{usage}");
        std::process::exit(2);
    };
    // Stop at once on SIGTERM (Pingora's default grace keeps serving for a minute), so a
    // bench's cleanup leaves no proxy running into the next run; shutdown only.
    let mut conf = ServerConf {
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut h2c = true;
    while let Some(flag) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse::<usize>().ok());
        match flag.as_str() {
            "--threads" => conf.threads = number().unwrap_or(1),
            "--pool" => conf.upstream_keepalive_pool_size = number().unwrap_or(128),
            "--no-work-stealing" => conf.work_stealing = false,
            "--no-h2c" => h2c = false,
            _ => {
                eprintln!("unknown argument {flag}\n{usage}");
                std::process::exit(2);
            }
        }
    }
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, Bare { upstream });
    if let Some(app) = proxy.app_logic_mut() {
        let mut options = HttpServerOptions::default();
        options.h2c = h2c;
        app.server_options = Some(options);
    }
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
