//! Problems found in the resources, reported once per change and never fatal to the others.

use serde::{Deserialize, Serialize};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The object, or the part of it named by `field`, was not applied.
    Error,
    /// Applied, but not as written (unsupported field, unresolved reference answering 503, ...).
    Warning,
}

/// The Kubernetes identity of an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Machine-readable cause; also the `reason` of Kubernetes conditions and Events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// The document is not valid YAML or does not match the kind's schema.
    InvalidDocument,
    /// apiVersion/kind this gateway does not handle.
    UnknownKind,
    /// The `match` rule does not parse.
    InvalidRule,
    /// A field that parses but is not acted on yet.
    Unsupported,
    ServiceNotFound,
    PortNotFound,
    MiddlewareNotFound,
    /// A Middleware object that sets no type, or several.
    InvalidMiddleware,
    /// A TraefikService that cannot be used (no type, an unsupported one, a bad field, a
    /// loop): its routes answer 503.
    InvalidService,
    /// A Service with no ready endpoints: its routes answer 503.
    NoReadyEndpoints,
    /// The same kind/namespace/name defined more than once; the first wins.
    Duplicate,
    /// An IngressRoute's uplink annotation names an Uplink that does not exist.
    UplinkNotFound,
    /// An Uplink no serviceable route is bound to: advertised as not ready.
    UplinkNotReady,
    /// A Secret named for a certificate (or CA) does not exist.
    SecretNotFound,
    /// A ConfigMap named for CAs does not exist or holds none.
    ConfigMapNotFound,
    /// A Secret's certificate or key cannot be used (bad PEM or DER, key not matching).
    InvalidCertificate,
    /// A TLSOption named by a route does not exist.
    TlsOptionNotFound,
    /// A service reference's ServersTransport does not exist.
    ServersTransportNotFound,
    /// A TLSOption asks for what cannot be done (a version or suite rustls lacks, ...).
    InvalidTlsOption,
}

impl Reason {
    /// A reference to another object that does not resolve.
    pub fn is_unresolved_reference(self) -> bool {
        matches!(
            self,
            Reason::ServiceNotFound
                | Reason::PortNotFound
                | Reason::MiddlewareNotFound
                | Reason::UplinkNotFound
                | Reason::SecretNotFound
                | Reason::ConfigMapNotFound
                | Reason::InvalidCertificate
                | Reason::TlsOptionNotFound
                | Reason::InvalidTlsOption
                | Reason::ServersTransportNotFound
        )
    }
}

/// One problem, anchored at an object and, where known, a file and a field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub reason: Reason,
    /// `None` when the document is too broken to tell what it is.
    pub object: Option<ObjectRef>,
    /// Where the object came from: `path/to/file.yaml#2` (document index) for files.
    pub source: Option<String>,
    /// JSON-path-like location inside the object, e.g. `spec.routes[0].services[1].port`.
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}")?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        if let Some(object) = &self.object {
            write!(f, ": {object}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All problems of one snapshot, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Adds a problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Adds every problem of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Sorts and removes exact duplicates, so equal inputs give equal output.
    pub fn normalize(&mut self) {
        self.0.sort();
        self.0.dedup();
    }

    /// The problems, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// The problems, to refine (a provider placing them on their lines).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Diagnostic> {
        self.0.iter_mut()
    }

    /// Problems about one object.
    pub fn for_object<'a>(&'a self, object: &'a ObjectRef) -> impl Iterator<Item = &'a Diagnostic> {
        self.0
            .iter()
            .filter(move |d| d.object.as_ref() == Some(object))
    }

    /// True when some problem has error severity.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
