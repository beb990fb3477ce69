//! What the schema cannot express: addresses, ranges, conflicts between sections.
//! Every problem names its configuration key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::logs::{parse_status_range, Logs};
use crate::metrics::Metrics;
use crate::multicluster::Role;
use crate::syntax::{is_dns_label, is_host_port, is_ip_or_cidr, is_token};
use crate::tracing::{Otlp, Tracing};
use crate::{Config, EntryPoint, Problem, TrustPolicy};

impl Config {
    /// Checks what the schema cannot express; returns every problem, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        let mut problem = |key: String, message: String| problems.push(Problem { key, message });

        if self.cluster.name.trim().is_empty() {
            problem("cluster.name".into(), "must not be empty".into());
        }
        if self.entry_points.is_empty() {
            problem(
                "entryPoints".into(),
                "at least one entrypoint is required".into(),
            );
        }
        let mut addresses: BTreeMap<SocketAddr, String> = BTreeMap::new();
        let mut claim = |key: String, address: &str, problem: &mut dyn FnMut(String, String)| {
            match crate::entrypoints::listen_address(address).parse::<SocketAddr>() {
                Ok(addr) => {
                    if let Some(other) = addresses.insert(addr, key.clone()) {
                        problem(key, format!("{address} is already used by {other}"));
                    }
                }
                Err(err) => problem(key, format!("invalid address {address:?} ({err}); expected host:port such as 0.0.0.0:8080")),
            }
        };
        for (name, entry_point) in &self.entry_points {
            let key = format!("entryPoints.{name}");
            if !is_dns_label(name) {
                problem(
                    key.clone(),
                    "entrypoint names must be lowercase letters, digits and '-' (at most 63)"
                        .into(),
                );
            }
            claim(format!("{key}.address"), &entry_point.address, &mut problem);
            for (field, value) in [
                ("read", entry_point.timeouts.read),
                ("write", entry_point.timeouts.write),
                ("idle", entry_point.timeouts.idle),
            ] {
                if value.is_zero() {
                    problem(
                        format!("{key}.timeouts.{field}"),
                        "must be greater than zero".into(),
                    );
                }
            }
            if entry_point.max_connections == Some(0) {
                problem(
                    format!("{key}.maxConnections"),
                    "must be at least 1 (leave it out for no limit)".into(),
                );
            }
            for (field, value) in [
                ("maxUriLength", entry_point.max_uri_length),
                ("maxHeaderBytes", entry_point.max_header_bytes),
            ] {
                if value == 0 || value > EntryPoint::PINGORA_MAX_HEADER_BYTES {
                    problem(
                        format!("{key}.{field}"),
                        "must be between 1 and 1048576 (Pingora's own limit)".into(),
                    );
                }
            }
            if let Some(tls) = &entry_point.tls {
                if tls.cert.is_some() != tls.key.is_some() {
                    problem(
                        format!("{key}.tls"),
                        "cert and key must be set together (or neither: certificates from Secrets only)"
                            .into(),
                    );
                }
            }
            if let Some(redirect) = &entry_point.http.redirections.entry_point {
                let to = &redirect.to;
                let port = to.strip_prefix(':').map(|p| p.parse::<u16>().is_ok());
                if port == Some(false) || (port.is_none() && !self.entry_points.contains_key(to)) {
                    problem(
                        format!("{key}.http.redirections.entryPoint.to"),
                        format!(
                            "{to:?} is neither a configured entrypoint nor a port such as \":443\""
                        ),
                    );
                }
                if redirect.scheme != "http" && redirect.scheme != "https" {
                    problem(
                        format!("{key}.http.redirections.entryPoint.scheme"),
                        format!("{:?} is not http or https", redirect.scheme),
                    );
                }
            }
            for (index, cidr) in entry_point.forwarded_headers.trusted_ips.iter().enumerate() {
                if !is_ip_or_cidr(cidr) {
                    problem(
                        format!("{key}.forwardedHeaders.trustedIPs[{index}]"),
                        format!("{cidr:?} is not an IP address or CIDR"),
                    );
                }
            }
        }
        claim("admin.address".into(), &self.admin.address, &mut problem);

        if let Some(kubernetes) = &self.providers.kubernetes {
            if self.providers.file.is_some() {
                problem(
                    "providers".into(),
                    "set one provider: file or kubernetes, not both".into(),
                );
            }
            for (index, namespace) in kubernetes.namespaces.iter().enumerate() {
                if !is_dns_label(namespace) {
                    problem(
                        format!("providers.kubernetes.namespaces[{index}]"),
                        format!("{namespace:?} is not a namespace name"),
                    );
                }
            }
            if kubernetes.leader_election.lease_duration < Duration::from_secs(1) {
                problem(
                    "providers.kubernetes.leaderElection.leaseDuration".into(),
                    "must be at least 1s".into(),
                );
            }
            if kubernetes.throttle > Duration::from_secs(60) {
                problem(
                    "providers.kubernetes.throttle".into(),
                    "must be at most 1m".into(),
                );
            }
        }
        if let Some(file) = &self.providers.file {
            if !file.directory.is_dir() {
                problem(
                    "providers.file.directory".into(),
                    format!("{} is not a directory", file.directory.display()),
                );
            }
        }
        for (field, value) in [
            ("connectTimeout", self.upstream.connect_timeout),
            ("readTimeout", self.upstream.read_timeout),
            ("writeTimeout", self.upstream.write_timeout),
            ("idleTimeout", self.upstream.idle_timeout),
        ] {
            if value.is_zero() {
                problem(
                    format!("upstream.{field}"),
                    "must be greater than zero".into(),
                );
            }
        }
        if self.upstream.passive_health_check.failures == 0 {
            problem(
                "upstream.passiveHealthCheck.failures".into(),
                "must be at least 1".into(),
            );
        }
        if self.shutdown.grace_period > Duration::from_secs(3600) {
            problem("shutdown.gracePeriod".into(), "must be at most 1h".into());
        }
        if self.shutdown.drain_delay > Duration::from_secs(600) {
            problem("shutdown.drainDelay".into(), "must be at most 10m".into());
        }
        self.validate_multicluster(&mut problem);
        self.tracing.validate(&mut problem);
        self.metrics.validate(&mut problem);
        self.logs.validate(&mut problem);

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn validate_multicluster(&self, problem: &mut dyn FnMut(String, String)) {
        let uplinks: Vec<&String> = self
            .entry_points
            .iter()
            .filter(|(_, e)| e.uplink)
            .map(|(name, _)| name)
            .collect();
        for name in &uplinks {
            if self.entry_points[*name].trace_context != TrustPolicy::Continue {
                problem(
                    format!("entryPoints.{name}.traceContext"),
                    "an uplink entrypoint continues its parent's trace; it must be continue".into(),
                );
            }
        }
        let multicluster = &self.multicluster;
        match self.role {
            Role::Child if uplinks.is_empty() => problem(
                "entryPoints".into(),
                "a child needs an uplink entrypoint (uplink: true) for its parents".into(),
            ),
            Role::Parent if multicluster.children.is_empty() => problem(
                "multicluster.children".into(),
                "a parent needs at least one child".into(),
            ),
            Role::Child => {}
            _ => {
                for name in &uplinks {
                    problem(
                        format!("entryPoints.{name}.uplink"),
                        format!(
                            "only a child serves parents (role is {})",
                            self.role.as_str()
                        ),
                    );
                }
            }
        }
        if self.role != Role::Parent && !multicluster.children.is_empty() {
            problem(
                "multicluster.children".into(),
                format!(
                    "only a parent forwards to children (role is {})",
                    self.role.as_str()
                ),
            );
        }
        for (name, child) in &multicluster.children {
            let key = format!("multicluster.children.{name}");
            if !is_dns_label(name) {
                problem(
                    key.clone(),
                    "child names must be lowercase letters, digits and '-' (at most 63)".into(),
                );
            }
            if !is_host_port(&child.address) {
                problem(
                    format!("{key}.address"),
                    format!(
                        "{:?} is not host:port, e.g. child-a.example.com:9443",
                        child.address
                    ),
                );
            }
            if let Some(tls) = &child.tls {
                if tls.cert.is_some() != tls.key.is_some() {
                    problem(
                        format!("{key}.tls"),
                        "cert and key must be set together (mutual TLS)".into(),
                    );
                }
            }
        }
        if !is_token(&multicluster.source_cluster_header) {
            problem(
                "multicluster.sourceClusterHeader".into(),
                format!(
                    "{:?} is not a valid header name",
                    multicluster.source_cluster_header
                ),
            );
        }
        if multicluster.max_hops == 0 {
            problem("multicluster.maxHops".into(), "must be at least 1".into());
        }
        let health = &multicluster.health_check;
        for (field, value) in [("interval", health.interval), ("timeout", health.timeout)] {
            if value.is_zero() {
                problem(
                    format!("multicluster.healthCheck.{field}"),
                    "must be greater than zero".into(),
                );
            }
        }
        for (field, value) in [
            ("healthCheck.unhealthyThreshold", health.unhealthy_threshold),
            ("healthCheck.healthyThreshold", health.healthy_threshold),
            (
                "passiveHealthCheck.failures",
                multicluster.passive_health_check.failures,
            ),
        ] {
            if value == 0 {
                problem(format!("multicluster.{field}"), "must be at least 1".into());
            }
        }
    }
}

impl Tracing {
    fn validate(&self, problem: &mut dyn FnMut(String, String)) {
        if let Some(rate) = self.sample_rate {
            if !(0.0..=1.0).contains(&rate) {
                problem(
                    "tracing.sampleRate".into(),
                    format!("{rate} is not between 0.0 and 1.0"),
                );
            }
        }
        if let Some(name) = &self.trace_id_response_header {
            if !is_token(name) {
                problem(
                    "tracing.traceIdResponseHeader".into(),
                    format!("{name:?} is not a valid header name"),
                );
            }
        }
        for key in self.resource_attributes.keys() {
            if key.trim().is_empty() {
                problem(
                    "tracing.resourceAttributes".into(),
                    "attribute names must not be empty".into(),
                );
            }
        }
        self.otlp.validate("tracing.otlp", problem);
        let queue = &self.queue;
        if queue.max_size == 0 {
            problem(
                "tracing.queue.maxSize".into(),
                "must be greater than zero".into(),
            );
        }
        if queue.max_batch_size == 0 || queue.max_batch_size > queue.max_size {
            problem(
                "tracing.queue.maxBatchSize".into(),
                format!("must be between 1 and maxSize ({})", queue.max_size),
            );
        }
        if queue.schedule_delay.is_zero() {
            problem(
                "tracing.queue.scheduleDelay".into(),
                "must be greater than zero".into(),
            );
        }
    }
}

impl Metrics {
    fn validate(&self, problem: &mut dyn FnMut(String, String)) {
        self.otlp.transport().validate("metrics.otlp", problem);
        if self
            .otlp
            .push_interval
            .is_some_and(|i| i < Duration::from_secs(1))
        {
            problem(
                "metrics.otlp.pushInterval".into(),
                "must be at least 1s".into(),
            );
        }
    }
}

impl Logs {
    fn validate(&self, problem: &mut dyn FnMut(String, String)) {
        self.general.otlp.validate("logs.general.otlp", problem);
        let access = &self.access;
        access.otlp.validate("logs.access.otlp", problem);
        if access.buffer_size == 0 {
            problem(
                "logs.access.bufferSize".into(),
                "must be greater than zero".into(),
            );
        }
        for (index, range) in access.filters.status_codes.iter().enumerate() {
            if parse_status_range(range).is_none() {
                problem(
                    format!("logs.access.filters.statusCodes[{index}]"),
                    format!("{range:?} is not a status code (100-599) or a range such as 500-599"),
                );
            }
        }
        for name in access.fields.headers.names.keys() {
            if !is_token(name) {
                problem(
                    "logs.access.fields.headers.names".into(),
                    format!("{name:?} is not a valid header name"),
                );
            }
        }
    }
}

impl Otlp {
    fn validate(&self, key: &str, problem: &mut dyn FnMut(String, String)) {
        if self.http_enabled().is_some() && self.grpc_enabled().is_some() {
            problem(key.into(), "enable one of http and grpc, not both".into());
        }
        let transports = [
            self.http
                .as_ref()
                .map(|h| ("http", h.endpoint.as_deref(), &h.headers, h.timeout, &h.tls)),
            self.grpc
                .as_ref()
                .map(|g| ("grpc", g.endpoint.as_deref(), &g.headers, g.timeout, &g.tls)),
        ];
        for (name, endpoint, headers, timeout, tls) in transports.into_iter().flatten() {
            let key = format!("{key}.{name}");
            if let Some(endpoint) = endpoint {
                let has_scheme =
                    endpoint.starts_with("http://") || endpoint.starts_with("https://");
                if (name == "http" && !has_scheme) || endpoint.contains(char::is_whitespace) {
                    problem(
                        format!("{key}.endpoint"),
                        format!("{endpoint:?} is not an http:// or https:// URL"),
                    );
                }
            }
            for header in headers.keys() {
                if !is_token(header) {
                    problem(
                        format!("{key}.headers"),
                        format!("{header:?} is not a valid header name"),
                    );
                }
            }
            if timeout.is_some_and(|t| t.is_zero()) {
                problem(format!("{key}.timeout"), "must be greater than zero".into());
            }
            if let Some(tls) = tls {
                if tls.cert.is_some() != tls.key.is_some() {
                    problem(
                        format!("{key}.tls"),
                        "cert and key must be given together".into(),
                    );
                }
            }
        }
        if let Some(grpc) = &self.grpc {
            if grpc.insecure
                && grpc
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("https://"))
            {
                problem(
                    format!("{key}.grpc.insecure"),
                    "contradicts the https:// endpoint".into(),
                );
            }
        }
    }
}
