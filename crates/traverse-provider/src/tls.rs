//! From Secrets, the default TLSStore and IngressRoutes' `spec.tls` to the certificates
//! each TLS entrypoint serves by SNI.
//!
//! Only Secrets something names are read (a cluster holds many unrelated ones). A Secret
//! that stops being usable is reported on itself (naming the field) and on the routes
//! naming it, and its last good certificate keeps serving: [`TlsTranslator`] remembers
//! it from one translation to the next.

mod certificate;
mod options;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use traverse_api::{IngressRoute, Secret, TLSOption};
use traverse_model::tls::{SniTable, TlsOptions, TlsTable};

pub use certificate::{
    certificate_from_pem, certificate_from_secret, secret_value, Certificate, CertificateError,
    CERT_KEY, KEY_KEY,
};

use crate::diagnostics::{Diagnostic, Diagnostics, ObjectRef, Reason, Severity};
use crate::snapshot::{Object, Snapshot};
use crate::EntryPoints;

/// The name of the TLSStore (and TLSOption) that applies where none is named.
pub const DEFAULT: &str = "default";

/// Turns snapshots into [`TlsTable`]s, remembering each Secret's last good certificate.
#[derive(Debug, Default)]
pub struct TlsTranslator {
    secrets: HashMap<ObjectRef, Checked>,
}

/// What a Secret held when last checked, what came of it, and its last good certificate.
#[derive(Debug)]
struct Checked {
    data: (Vec<u8>, Vec<u8>),
    outcome: Result<Arc<Certificate>, CertificateError>,
    last_good: Option<Arc<Certificate>>,
}

/// A Secret as a reference resolved it.
enum Resolved {
    Usable(Arc<Certificate>),
    /// Unusable now; the certificate it last held, if any, keeps serving.
    Broken {
        error: CertificateError,
        last_good: Option<Arc<Certificate>>,
    },
    Missing,
}

impl TlsTranslator {
    /// The certificates of `snapshot` for the TLS entrypoints of `entry_points`, and
    /// what was wrong.
    pub fn translate(
        &mut self,
        snapshot: &Snapshot,
        entry_points: &EntryPoints,
    ) -> (TlsTable, Diagnostics) {
        let mut run = Run {
            snapshot,
            secrets: index(&snapshot.secrets),
            cache: &mut self.secrets,
            diagnostics: Diagnostics::default(),
            tls_options: index(&snapshot.tls_options),
            options: HashMap::new(),
        };
        let mut table = TlsTable {
            default_options: run.default_options(),
            ..TlsTable::default()
        };
        let mut routes: Vec<&IngressRoute> =
            snapshot.ingress_routes.iter().map(Arc::as_ref).collect();
        routes.sort_by_key(|r| r.key());
        routes.dedup_by_key(|r| r.key());
        for route in routes {
            run.ingress_route(route, entry_points, &mut table);
        }
        run.default_store(entry_points, &mut table);
        let mut diagnostics = run.diagnostics;
        // Forget Secrets that are gone: a Secret created again starts without a past.
        let present: std::collections::HashSet<ObjectRef> =
            snapshot.secrets.iter().map(|s| s.object_ref()).collect();
        self.secrets.retain(|object, _| present.contains(object));
        diagnostics.normalize();
        (table, diagnostics)
    }
}

fn index<T: Object>(objects: &[Arc<T>]) -> HashMap<(&str, &str), &T> {
    let mut map = HashMap::new();
    for object in objects {
        map.entry(object.key()).or_insert(object.as_ref());
    }
    map
}

struct Run<'a> {
    snapshot: &'a Snapshot,
    secrets: HashMap<(&'a str, &'a str), &'a Secret>,
    cache: &'a mut HashMap<ObjectRef, Checked>,
    diagnostics: Diagnostics,
    tls_options: HashMap<(&'a str, &'a str), &'a TLSOption>,
    /// Each TLSOption converted once, or `None` when it does not exist.
    options: HashMap<(String, String), Option<Arc<TlsOptions>>>,
}

impl<'a> Run<'a> {
    fn report(
        &mut self,
        object: ObjectRef,
        severity: Severity,
        reason: Reason,
        field: &str,
        message: String,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            reason,
            source: self.snapshot.source_of(&object),
            object: Some(object),
            field: Some(field.to_owned()),
            message,
        });
    }

    /// The Secret `namespace/name`, checked (once per content) and reported on itself
    /// when unusable.
    fn secret(&mut self, namespace: &str, name: &str) -> Resolved {
        let Some(secret) = self.secrets.get(&(namespace, name)).copied() else {
            return Resolved::Missing;
        };
        let object = secret.object_ref();
        let data = (
            certificate::secret_value(secret, CERT_KEY).map_or_else(Vec::new, |(b, _)| b.to_vec()),
            certificate::secret_value(secret, KEY_KEY).map_or_else(Vec::new, |(b, _)| b.to_vec()),
        );
        let stale = self.cache.get(&object).is_none_or(|c| c.data != data);
        if stale {
            let outcome = certificate_from_secret(secret).map(Arc::new);
            let previous = self.cache.remove(&object).and_then(|c| c.last_good);
            let last_good = outcome.as_ref().ok().cloned().or(previous);
            self.cache.insert(
                object.clone(),
                Checked {
                    data,
                    outcome,
                    last_good,
                },
            );
        }
        let Some(checked) = self.cache.get(&object) else {
            return Resolved::Missing;
        };
        match &checked.outcome {
            Ok(certificate) => Resolved::Usable(Arc::clone(certificate)),
            Err(error) => {
                let (error, last_good) = (error.clone(), checked.last_good.clone());
                let kept = if last_good.is_some() {
                    "; its last good certificate keeps serving"
                } else {
                    ""
                };
                self.report(
                    object,
                    Severity::Error,
                    Reason::InvalidCertificate,
                    &error.field,
                    format!("{}{kept}", error.message),
                );
                Resolved::Broken { error, last_good }
            }
        }
    }

    /// The certificate a reference names, reporting on `referrer` why there is none.
    fn certificate(
        &mut self,
        referrer: &ObjectRef,
        field: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Certificate>> {
        match self.secret(namespace, name) {
            Resolved::Usable(certificate) => Some(certificate),
            Resolved::Broken { error, last_good } => {
                let outcome = if last_good.is_some() {
                    "its last good certificate keeps serving"
                } else {
                    "no certificate is served for it"
                };
                self.report(
                    referrer.clone(),
                    Severity::Warning,
                    Reason::InvalidCertificate,
                    field,
                    format!(
                        "Secret {namespace}/{name} is unusable ({}: {}); {outcome}",
                        error.field, error.message
                    ),
                );
                last_good
            }
            Resolved::Missing => {
                self.report(
                    referrer.clone(),
                    Severity::Warning,
                    Reason::SecretNotFound,
                    field,
                    format!("Secret {namespace}/{name} not found"),
                );
                None
            }
        }
    }

    /// The TLSOption `namespace/name` in rustls' terms (converted and reported once).
    fn option(&mut self, namespace: &str, name: &str) -> Option<Arc<TlsOptions>> {
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(done) = self.options.get(&key) {
            return done.clone();
        }
        let converted = self
            .tls_options
            .get(&(namespace, name))
            .copied()
            .map(|option| {
                let secrets = &self.secrets;
                let (mut converted, problems) =
                    options::options(option, format!("{namespace}/{name}"), |secret| {
                        secrets.get(&(namespace, secret)).copied()
                    });
                for problem in problems {
                    if problem.fatal && converted.refuse.is_none() {
                        converted.refuse = Some(format!(
                            "TLSOption {namespace}/{name}: {}: {}",
                            problem.field, problem.message
                        ));
                    }
                    self.report(
                        option.object_ref(),
                        if problem.fatal {
                            Severity::Error
                        } else {
                            Severity::Warning
                        },
                        if problem.fatal {
                            Reason::InvalidTlsOption
                        } else {
                            Reason::Unsupported
                        },
                        &problem.field,
                        problem.message,
                    );
                }
                Arc::new(converted)
            });
        self.options.insert(key, converted.clone());
        converted
    }

    /// The TLSOption named `default` (the first by namespace), for every handshake no
    /// route's option covers.
    fn default_options(&mut self) -> Option<Arc<TlsOptions>> {
        let mut defaults: Vec<(&'a str, &'a str)> = self
            .tls_options
            .keys()
            .filter(|(_, name)| *name == DEFAULT)
            .copied()
            .collect();
        defaults.sort();
        let (namespace, name) = defaults.first().copied()?;
        self.option(namespace, name)
    }

    /// The TLSOption a route names, on the hosts of its rules.
    fn route_options(
        &mut self,
        route: &IngressRoute,
        tls_entry_points: &[String],
        table: &mut TlsTable,
    ) {
        let Some(reference) = route.spec.tls.as_ref().and_then(|t| t.options.as_ref()) else {
            return;
        };
        let me = route.object_ref();
        let (route_namespace, _) = route.key();
        // Traefik's `name@kubernetescrd` form names the same object.
        let name = reference.name.split('@').next().unwrap_or_default();
        let namespace = reference.namespace.as_deref().unwrap_or(route_namespace);
        if name == DEFAULT {
            return;
        }
        let options = match self.option(namespace, name) {
            Some(options) => {
                if let Some(why) = &options.refuse {
                    self.report(
                        me.clone(),
                        Severity::Warning,
                        Reason::InvalidTlsOption,
                        "spec.tls.options",
                        format!("{why}; handshakes for this route's hosts are refused"),
                    );
                }
                options
            }
            None => {
                let why = format!("TLSOption {namespace}/{name} not found");
                self.report(
                    me.clone(),
                    Severity::Warning,
                    Reason::TlsOptionNotFound,
                    "spec.tls.options",
                    format!("{why}; handshakes for this route's hosts are refused"),
                );
                Arc::new(TlsOptions {
                    name: format!("{namespace}/{name}"),
                    refuse: Some(why),
                    ..TlsOptions::default()
                })
            }
        };
        let mut hosts = Vec::new();
        let mut hostless = Vec::new();
        {
            let mut rules = self.snapshot.rules.lock();
            for (i, r) in route.spec.routes.iter().enumerate() {
                match rules.rule(&r.r#match) {
                    Ok(rule) if rule.host_names().is_empty() => hostless.push(i),
                    Ok(rule) => hosts.extend(rule.host_names()),
                    // An unparsable rule is reported by the routing translation.
                    Err(_) => {}
                }
            }
        }
        for i in hostless {
            self.report(
                me.clone(),
                Severity::Warning,
                Reason::InvalidTlsOption,
                &format!("spec.routes[{i}].match"),
                "names no Host, so spec.tls.options cannot apply to it (TLS options are \
                 chosen by the SNI host, as in Traefik)"
                    .into(),
            );
        }
        for entry_point in tls_entry_points {
            for host in &hosts {
                let by_host = table.options.entry(entry_point.clone()).or_default();
                if let Some(other) = by_host.find(host).filter(|o| !Arc::ptr_eq(o, &options)) {
                    let message = format!(
                        "host {host} already uses TLSOption {} on entrypoint {entry_point}; that one applies",
                        other.name
                    );
                    self.report(
                        me.clone(),
                        Severity::Warning,
                        Reason::InvalidTlsOption,
                        "spec.tls.options",
                        message,
                    );
                    continue;
                }
                by_host.insert(host, Arc::clone(&options));
            }
        }
    }

    fn ingress_route(
        &mut self,
        route: &IngressRoute,
        entry_points: &EntryPoints,
        table: &mut TlsTable,
    ) {
        let Some(tls) = &route.spec.tls else { return };
        let me = route.object_ref();
        let tls_entry_points = entry_points.tls_of(&route.spec.entry_points);
        self.route_options(route, &tls_entry_points, table);
        let Some(secret_name) = tls.secret_name.as_deref().filter(|n| !n.is_empty()) else {
            return;
        };
        let (namespace, _) = route.key();
        let Some(certificate) =
            self.certificate(&me, "spec.tls.secretName", namespace, secret_name)
        else {
            return;
        };
        for entry_point in tls_entry_points {
            add(
                table.entry_points.entry(entry_point).or_default(),
                &certificate,
            );
        }
    }

    /// The TLSStore named `default`: its certificates on every TLS entrypoint, after the
    /// routes' own, and its default certificate.
    fn default_store(&mut self, entry_points: &EntryPoints, table: &mut TlsTable) {
        let mut stores: BTreeMap<(&str, &str), _> = BTreeMap::new();
        for store in &self.snapshot.tls_stores {
            stores.entry(store.key()).or_insert(Arc::clone(store));
        }
        let mut defaults = stores.into_iter().filter(|((_, name), _)| *name == DEFAULT);
        let Some(((namespace, _), store)) = defaults.next() else {
            return;
        };
        let me = store.object_ref();
        for ((other_namespace, _), other) in defaults {
            self.report(
                other.object_ref(),
                Severity::Warning,
                Reason::Duplicate,
                "metadata.name",
                format!("only one default TLSStore is used, the one in namespace {namespace}; {other_namespace}'s is ignored"),
            );
        }
        if store.spec.default_generated_cert.is_some() {
            self.report(
                me.clone(),
                Severity::Warning,
                Reason::Unsupported,
                "spec.defaultGeneratedCert",
                "certificate resolvers (ACME) are not implemented; name a Secret in defaultCertificate".into(),
            );
        }
        for (index, reference) in store.spec.certificates.iter().enumerate() {
            let field = format!("spec.certificates[{index}].secretName");
            if let Some(certificate) =
                self.certificate(&me, &field, namespace, &reference.secret_name)
            {
                for entry_point in entry_points.tls_of(&[]) {
                    add(
                        table.entry_points.entry(entry_point).or_default(),
                        &certificate,
                    );
                }
            }
        }
        if let Some(reference) = &store.spec.default_certificate {
            table.default = self
                .certificate(
                    &me,
                    "spec.defaultCertificate.secretName",
                    namespace,
                    &reference.secret_name,
                )
                .map(|c| Arc::clone(&c.key));
        }
    }
}

/// Serves `certificate` for each of its names not already taken on the entrypoint.
fn add(table: &mut SniTable<Arc<rustls::sign::CertifiedKey>>, certificate: &Certificate) {
    for name in &certificate.names {
        table.insert(name, Arc::clone(&certificate.key));
    }
}
