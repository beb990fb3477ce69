//! A service reference's `healthCheck` checked and defaulted as Traefik v3 does.
//!
//! A field that cannot be used is a warning naming it: a bad duration falls back to its
//! default; a check the gateway cannot run (gRPC mode, a scheme other than http or
//! https, a bad method or header) leaves the Service unchecked, serving as without a
//! `healthCheck`. An https check connects with the TLS settings of the Service's
//! ServersTransport, as the Service's requests do (Traefik uses the same transport).

use std::sync::Arc;
use std::time::Duration;

use traverse_api::ingress_route::ServerHealthCheck;
use traverse_api::IntOrString;

use super::transports::go_duration;
use super::Translator;
use crate::diagnostics::{ObjectRef, Reason, Severity};
use crate::model::{ClientTls, HealthCheck, Scheme, ServersTransport};

/// Traefik's defaults.
const INTERVAL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(5);

impl Translator<'_> {
    /// The check of a Service reached over `scheme` through `transport`, or `None` when
    /// it has none or cannot be run (reported under `field`).
    pub(super) fn health_check(
        &mut self,
        me: &ObjectRef,
        check: Option<&ServerHealthCheck>,
        scheme: Scheme,
        transport: Option<&ServersTransport>,
        field: &str,
    ) -> Option<Arc<HealthCheck>> {
        let check = check?;
        let field = format!("{field}.healthCheck");
        let warn = |this: &mut Self, key: &str, message: String| {
            this.report(
                me,
                Severity::Warning,
                Reason::Unsupported,
                Some(format!("{field}.{key}")),
                message,
            );
        };
        let unchecked = "; the service is not health checked";
        match check
            .mode
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("http") => {}
            Some(mode) => {
                warn(
                    self,
                    "mode",
                    format!("mode {mode:?} is not implemented (http only){unchecked}"),
                );
                return None;
            }
        }
        let scheme = match check.scheme.as_deref().filter(|s| !s.is_empty()) {
            None => scheme,
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            Some(other) => {
                warn(
                    self,
                    "scheme",
                    format!("{other:?} is not http or https{unchecked}"),
                );
                return None;
            }
        };
        let method = match check.method.as_deref().filter(|m| !m.is_empty()) {
            None => http::Method::GET,
            Some(method) => {
                match http::Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
                    Ok(method) => method,
                    Err(_) => {
                        warn(
                            self,
                            "method",
                            format!("{method:?} is not an HTTP method{unchecked}"),
                        );
                        return None;
                    }
                }
            }
        };
        let mut headers = Vec::with_capacity(check.headers.len());
        for (name, value) in &check.headers {
            match (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(value)) => headers.push((name, value)),
                _ => {
                    warn(
                        self,
                        &format!("headers.{name}"),
                        format!("{name}: {value:?} is not a valid header{unchecked}"),
                    );
                    return None;
                }
            }
        }
        let hostname = check.hostname.clone().filter(|h| !h.is_empty());
        if let Some(host) = &hostname {
            if http::HeaderValue::from_str(host).is_err() || host.contains(char::is_whitespace) {
                warn(
                    self,
                    "hostname",
                    format!("{host:?} is not a host name{unchecked}"),
                );
                return None;
            }
        }
        let path = check.path.clone().unwrap_or_default();
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        if path.parse::<http::uri::PathAndQuery>().is_err() {
            warn(
                self,
                "path",
                format!("{path:?} is not a URL path{unchecked}"),
            );
            return None;
        }
        let status = match check.status {
            None | Some(0) => None,
            Some(code @ 100..=599) => Some(code as u16),
            Some(code) => {
                warn(
                    self,
                    "status",
                    format!("{code} is not an HTTP status; any 2xx or 3xx passes"),
                );
                None
            }
        };
        let port = match check.port {
            None | Some(0) => None,
            Some(port @ 1..=65535) => Some(port as u16),
            Some(port) => {
                warn(
                    self,
                    "port",
                    format!("{port} is not a port; the endpoint's port is checked"),
                );
                None
            }
        };
        let duration = |this: &mut Self,
                        value: &Option<IntOrString>,
                        key: &str,
                        default: Duration| {
            let parsed = match value.as_ref()? {
                IntOrString::Int(seconds) => u64::try_from(*seconds).ok().map(Duration::from_secs),
                IntOrString::String(text) => go_duration(text),
            };
            match parsed.filter(|d| !d.is_zero()) {
                Some(duration) => Some(duration),
                None => {
                    warn(
                        this,
                        key,
                        format!(
                            "{value:?} is not a positive duration such as 10s; {default:?} applies"
                        ),
                    );
                    None
                }
            }
        };
        let interval = duration(self, &check.interval, "interval", INTERVAL).unwrap_or(INTERVAL);
        let unhealthy_interval = duration(
            self,
            &check.unhealthy_interval,
            "unhealthyInterval",
            interval,
        )
        .unwrap_or(interval);
        let timeout = duration(self, &check.timeout, "timeout", TIMEOUT).unwrap_or(TIMEOUT);
        Some(Arc::new(HealthCheck {
            scheme: Some(scheme),
            path,
            method,
            hostname,
            port,
            status,
            headers,
            interval,
            unhealthy_interval,
            timeout,
            follow_redirects: check.follow_redirects.unwrap_or(true),
            tls: (scheme == Scheme::Https).then(|| {
                transport.map_or_else(|| Arc::new(ClientTls::default()), |t| Arc::clone(&t.tls))
            }),
            disable_http2: scheme == Scheme::Https && transport.is_some_and(|t| t.disable_http2),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{reasons, translate_all, APP};
    use crate::diagnostics::Reason;
    use crate::model::{Scheme, Target};

    type Found = (
        Option<crate::model::HealthCheck>,
        Vec<(Reason, Option<String>)>,
    );

    fn check_of(services: &str) -> Found {
        let ((check, found), _) = check_with("", services);
        (check, found)
    }

    /// The check of the first Service of a route to `services`, beside the objects of
    /// `objects`, and what was reported; and the Service's ServersTransport.
    fn check_with(
        objects: &str,
        services: &str,
    ) -> (
        Found,
        Option<std::sync::Arc<crate::model::ServersTransport>>,
    ) {
        let yaml = format!(
            r#"{APP}{objects}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: web, namespace: apps}}
spec:
  entryPoints: [web]
  routes:
    - match: PathPrefix(`/`)
      services: {services}
"#
        );
        let table = translate_all(&yaml);
        let route = table.routes.routes().next().expect("a route");
        let Target::Services(balancer) = &route.value.target else {
            panic!("services");
        };
        let backend = balancer.backends()[0].0;
        let check = backend.health_check.as_deref().cloned();
        ((check, reasons(&table)), backend.transport.clone())
    }

    #[test]
    fn traefik_defaults_apply() {
        let (check, found) = check_of("[{name: app, port: 80, healthCheck: {path: /health}}]");
        assert!(found.is_empty(), "{found:?}");
        let check = check.expect("checked");
        assert_eq!(check.path, "/health");
        assert_eq!(check.method, http::Method::GET);
        assert_eq!(check.scheme, Some(Scheme::Http));
        assert_eq!(check.interval, Duration::from_secs(30));
        assert_eq!(check.unhealthy_interval, Duration::from_secs(30));
        assert_eq!(check.timeout, Duration::from_secs(5));
        assert!(check.follow_redirects);
        assert_eq!(
            (check.status, check.port, check.hostname),
            (None, None, None)
        );
    }

    #[test]
    fn every_field_is_read() {
        let (check, found) = check_of(
            "[{name: app, port: 80, healthCheck: {path: /ready?full=1, method: head, interval: 2s, \
             unhealthyInterval: 500ms, timeout: 1, status: 204, port: 9000, hostname: app.local, \
             followRedirects: false, headers: {X-Probe: yes}}}]",
        );
        assert!(found.is_empty(), "{found:?}");
        let check = check.expect("checked");
        assert_eq!(check.path, "/ready?full=1");
        assert_eq!(check.method, http::Method::HEAD);
        assert_eq!(check.interval, Duration::from_secs(2));
        assert_eq!(check.unhealthy_interval, Duration::from_millis(500));
        assert_eq!(check.timeout, Duration::from_secs(1));
        assert_eq!((check.status, check.port), (Some(204), Some(9000)));
        assert_eq!(check.hostname.as_deref(), Some("app.local"));
        assert!(!check.follow_redirects);
        assert_eq!(check.headers.len(), 1);
    }

    #[test]
    fn bad_fields_are_reported_by_name() {
        let (check, found) = check_of(
            "[{name: app, port: 80, healthCheck: {path: /h, interval: soon, status: 42}}]",
        );
        let check = check.expect("still checked, with defaults");
        assert_eq!(
            (check.interval, check.status),
            (Duration::from_secs(30), None)
        );
        for field in ["interval", "status"] {
            let field = format!("spec.routes[0].services[0].healthCheck.{field}");
            assert!(
                found.iter().any(|(_, f)| f.as_deref() == Some(&field)),
                "{field}: {found:?}"
            );
        }
        for (spec, field) in [
            ("{mode: grpc}", "mode"),
            ("{scheme: ftp}", "scheme"),
            ("{method: 'G T'}", "method"),
        ] {
            let (check, found) =
                check_of(&format!("[{{name: app, port: 80, healthCheck: {spec}}}]"));
            assert!(check.is_none(), "{spec} is not run");
            let field = format!("spec.routes[0].services[0].healthCheck.{field}");
            assert!(
                found
                    .iter()
                    .any(|(r, f)| *r == Reason::Unsupported && f.as_deref() == Some(&field)),
                "{spec}: {found:?}"
            );
        }
    }

    #[test]
    fn an_h2c_service_is_checked_over_h2c_unless_the_check_says_http() {
        let (check, found) =
            check_of("[{name: app, port: 80, scheme: h2c, healthCheck: {path: /h}}]");
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(check.expect("checked").scheme, Some(Scheme::H2c));
        let (check, _) =
            check_of("[{name: app, port: 80, scheme: h2c, healthCheck: {path: /h, scheme: http}}]");
        assert_eq!(check.expect("checked").scheme, Some(Scheme::Http));
    }

    #[test]
    fn an_https_check_connects_with_the_tls_of_the_services_servers_transport() {
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).expect("CA");
        let transport = format!(
            r#"
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: internal, namespace: apps}}
spec: {{serverName: backend.internal, rootCAs: [{{secret: backend-ca}}], disableHTTP2: true}}
---
apiVersion: v1
kind: Secret
metadata: {{name: backend-ca, namespace: apps}}
stringData: {{ca.crt: {:?}}}"#,
            ca.cert.pem()
        );
        let ((check, found), transport) = check_with(
            &transport,
            "[{name: app, port: 80, scheme: https, serversTransport: internal, \
             healthCheck: {path: /h, hostname: app.internal}}]",
        );
        assert!(found.is_empty(), "{found:?}");
        let check = check.expect("checked");
        assert_eq!(check.scheme, Some(Scheme::Https));
        let tls = check.tls.expect("the transport's TLS");
        assert!(std::sync::Arc::ptr_eq(
            &tls,
            &transport.expect("transport").tls
        ));
        assert_eq!(tls.server_name.as_deref(), Some("backend.internal"));
        assert_eq!(tls.root_cas, [ca.cert.der().to_vec()]);
        assert!(check.disable_http2);

        // `scheme: https` on the check of an http Service; no transport: the defaults.
        let (check, found) =
            check_of("[{name: app, port: 80, healthCheck: {path: /h, scheme: https}}]");
        assert!(found.is_empty(), "{found:?}");
        let check = check.expect("checked");
        assert_eq!(check.scheme, Some(Scheme::Https));
        let tls = check.tls.expect("default TLS");
        assert_eq!(*tls, crate::model::ClientTls::default());
        assert!(!check.disable_http2);
        // An http check carries no TLS.
        let (check, _) = check_of("[{name: app, port: 80, healthCheck: {path: /h}}]");
        assert!(check.expect("checked").tls.is_none());
    }
}
