//! A service reference resolved Service → port → EndpointSlices → ready endpoints.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use traverse_api::{IntOrString, ServiceRef};

use super::Translator;
use crate::diagnostics::{ObjectRef, Reason, Severity};
use crate::model::balancer::server_url;
use crate::model::{Backend, Endpoint, Scheme, Sticky, StickyCookie, Strategy, Weighted};

impl Translator<'_> {
    /// Resolves one Kubernetes Service reference to its ready endpoints, or says why it
    /// cannot; `cookie` is its checked `sticky.cookie`.
    pub(super) fn backend(
        &mut self,
        me: &ObjectRef,
        namespace: &str,
        reference: &ServiceRef,
        field: &str,
        cookie: Option<StickyCookie>,
    ) -> Result<Backend, String> {
        let service_namespace = reference.namespace.as_deref().unwrap_or(namespace);
        let Some(service) = self
            .services
            .get(&(service_namespace, reference.name.as_str()))
            .copied()
        else {
            let message = format!("service {service_namespace}/{} not found", reference.name);
            self.report(
                me,
                Severity::Warning,
                Reason::ServiceNotFound,
                Some(format!("{field}.name")),
                format!("{message}; the route answers 503 until it exists"),
            );
            return Err(message);
        };
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            let message = format!(
                "service {service_namespace}/{} is of type ExternalName, not supported yet",
                reference.name
            );
            self.report(
                me,
                Severity::Warning,
                Reason::Unsupported,
                Some(format!("{field}.name")),
                message.clone(),
            );
            return Err(message);
        }
        let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
        let port = match &reference.port {
            Some(IntOrString::Int(number)) => ports.iter().find(|p| p.port == *number),
            Some(IntOrString::String(port_name)) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(port_name.as_str())),
            None if ports.len() == 1 => ports.first(),
            None => None,
        };
        let Some(port) = port else {
            let wanted = match &reference.port {
                Some(IntOrString::Int(n)) => n.to_string(),
                Some(IntOrString::String(s)) => format!("{s:?}"),
                None => "(none given, and the service does not have exactly one port)".into(),
            };
            let message = format!(
                "service {service_namespace}/{} has no port {wanted}",
                reference.name
            );
            self.report(
                me,
                Severity::Warning,
                Reason::PortNotFound,
                Some(format!("{field}.port")),
                format!("{message}; the route answers 503"),
            );
            return Err(message);
        };

        let port_name = port.name.as_deref().unwrap_or("");
        let mut servers = BTreeSet::new();
        // `nativeLB`: the Service's cluster IP and port, which Kubernetes balances itself.
        let native_lb = reference
            .native_lb
            .unwrap_or(self.snapshot.native_lb_by_default);
        if native_lb {
            let cluster_ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
            let ip = match cluster_ip.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => {
                    let why = match cluster_ip {
                        "" => "has no clusterIP".to_owned(),
                        "None" => "is headless (clusterIP: None)".to_owned(),
                        other => format!("has an invalid clusterIP {other:?}"),
                    };
                    let message = format!("service {service_namespace}/{} {why}", reference.name);
                    self.report(
                        me,
                        Severity::Error,
                        Reason::InvalidService,
                        Some(format!("{field}.nativeLB")),
                        format!("{message}; the route answers 503"),
                    );
                    return Err(message);
                }
            };
            let Ok(service_port) = u16::try_from(port.port) else {
                return Err(format!("service port {} is out of range", port.port));
            };
            servers.insert(SocketAddr::new(ip, service_port));
        }
        let slices = match native_lb {
            true => None,
            false => self
                .slices
                .get(&(service_namespace, reference.name.as_str())),
        };
        for slice in slices.into_iter().flatten() {
            let Some(slice_port) = slice
                .ports
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                .and_then(|p| p.port)
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            for endpoint in slice.endpoints.iter().flatten() {
                // Kubernetes: an unset `ready` means ready.
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                if !ready {
                    continue;
                }
                for address in &endpoint.addresses {
                    if let Ok(ip) = address.parse::<IpAddr>() {
                        servers.insert(SocketAddr::new(ip, slice_port));
                    }
                }
            }
        }
        let backend_name = format!(
            "{service_namespace}/{}:{}",
            reference.name,
            port.name.clone().unwrap_or_else(|| port.port.to_string())
        );
        if servers.is_empty() {
            self.report(
                me,
                Severity::Warning,
                Reason::NoReadyEndpoints,
                Some(format!("{field}.name")),
                format!("service {backend_name} has no ready endpoints; requests to it answer 503"),
            );
        }

        let scheme = match reference.scheme.as_deref() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            Some("h2c") => Scheme::H2c,
            Some(other) => {
                self.report(
                    me,
                    Severity::Warning,
                    Reason::Unsupported,
                    Some(format!("{field}.scheme")),
                    format!("scheme {other:?} is not one of http, https, h2c; using http"),
                );
                Scheme::Http
            }
            // Traefik's default: https for port 443 or a port named https.
            None if port.port == 443 || port_name == "https" => Scheme::Https,
            None => Scheme::Http,
        };
        let strategy = match reference.strategy.as_deref().unwrap_or("") {
            // `RoundRobin`: Traefik's deprecated name for wrr.
            "" | "wrr" | "RoundRobin" => Strategy::Wrr,
            "p2c" => Strategy::P2c,
            other => {
                let why = if ["hrw", "leasttime"].contains(&other) {
                    format!("strategy {other} is not implemented; wrr is used")
                } else {
                    format!("{other:?} is not one of wrr, p2c, hrw, leasttime; wrr is used")
                };
                self.report(
                    me,
                    Severity::Warning,
                    Reason::Unsupported,
                    Some(format!("{field}.strategy")),
                    why,
                );
                Strategy::Wrr
            }
        };
        let transport = reference
            .servers_transport
            .as_deref()
            .filter(|t| !t.is_empty())
            .and_then(|t| self.servers_transport(me, service_namespace, t, field));
        let health_check = self.health_check(
            me,
            reference.health_check.as_deref(),
            scheme,
            transport.as_deref(),
            field,
        );
        // Traefik names a server by its URL, and the sticky cookie carries its hash.
        let urls: Vec<String> = servers
            .iter()
            .map(|s| server_url(scheme.as_str(), *s))
            .collect();
        Ok(Backend {
            transport,
            name: backend_name.into(),
            scheme,
            pass_host_header: reference.pass_host_header.unwrap_or(true),
            servers: Weighted::new(servers.into_iter().map(|s| (Endpoint::new(s), 1)).collect()),
            sticky: cookie.map(|c| Sticky::new(c, urls.iter().map(String::as_str))),
            health_check,
            strategy,
        })
    }
}
