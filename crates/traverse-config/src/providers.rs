//! Where routing resources come from: a directory of manifests or a Kubernetes cluster.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Where routing resources come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Providers {
    pub file: Option<FileProvider>,
    pub kubernetes: Option<KubernetesProvider>,
}

/// The same kinds as the file provider, watched in a Kubernetes cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesProvider {
    /// Namespaces to watch; empty: every namespace.
    pub namespaces: Vec<String>,
    /// Only IngressRoutes, Middlewares and Uplinks matching this label selector
    /// (e.g. `team=shop,tier!=canary`); Services and EndpointSlices are found by reference.
    pub label_selector: Option<String>,
    /// Only IngressRoutes of this class (`spec.ingressClassName` or the
    /// `kubernetes.io/ingress.class` annotation). Unset: those without a class, or of
    /// class `traverse` or `traefik`.
    pub ingress_class: Option<String>,
    /// Quiet time after a change before the configuration is rebuilt, so a burst of
    /// changes (a rollout's EndpointSlices) is applied once.
    #[serde(with = "humantime_serde")]
    pub throttle: Duration,
    /// A kubeconfig file; unset: kube's inference, `KUBECONFIG` or `~/.kube/config`
    /// when present, else the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// Of several replicas, only the holder of this Lease writes status and Events.
    pub leader_election: LeaderElection,
    /// Whether routes, chains and TraefikServices may reference objects in other
    /// namespaces (Traefik's setting of the same name, false by default).
    pub allow_cross_namespace: bool,
    /// `nativeLB` for the Services that do not set it (Traefik's `nativeLBByDefault`).
    #[serde(rename = "nativeLBByDefault")]
    pub native_lb_by_default: bool,
}

impl Default for KubernetesProvider {
    fn default() -> Self {
        KubernetesProvider {
            namespaces: Vec::new(),
            label_selector: None,
            ingress_class: None,
            throttle: Duration::from_millis(200),
            kubeconfig: None,
            leader_election: LeaderElection::default(),
            allow_cross_namespace: false,
            native_lb_by_default: false,
        }
    }
}

/// The Lease replicas contend for.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderElection {
    pub name: String,
    /// Default: the pod's namespace (`POD_NAMESPACE`), else `default`.
    pub namespace: Option<String>,
    /// A holder that has not renewed for this long is replaced.
    #[serde(with = "humantime_serde")]
    pub lease_duration: Duration,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            name: "traverse-status".into(),
            namespace: None,
            lease_duration: Duration::from_secs(15),
        }
    }
}

/// Kubernetes-style YAML manifests read from a directory.
///
/// `directory` is required, so the optional fields name their defaults one by one
/// (a struct-level default would make a missing directory silently empty).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileProvider {
    /// Relative paths are resolved against the configuration file's directory.
    pub directory: PathBuf,
    /// Reload when files change.
    #[serde(default = "FileProvider::default_watch")]
    pub watch: bool,
    /// Quiet time after the last change before reloading, so an editor's or
    /// `kubectl`-style multi-file write is applied once.
    #[serde(default = "FileProvider::default_debounce", with = "humantime_serde")]
    pub debounce: Duration,
    /// Whether routes, chains and TraefikServices may reference objects in other
    /// namespaces (Traefik's `allowCrossNamespace`, false by default).
    #[serde(default)]
    pub allow_cross_namespace: bool,
    /// `nativeLB` for the Services that do not set it (Traefik's `nativeLBByDefault`).
    #[serde(default, rename = "nativeLBByDefault")]
    pub native_lb_by_default: bool,
}

impl FileProvider {
    /// Reads `directory` with every other setting at its default.
    pub fn new(directory: impl Into<PathBuf>) -> FileProvider {
        FileProvider {
            directory: directory.into(),
            watch: FileProvider::default_watch(),
            debounce: FileProvider::default_debounce(),
            allow_cross_namespace: false,
            native_lb_by_default: false,
        }
    }

    fn default_watch() -> bool {
        true
    }

    fn default_debounce() -> Duration {
        Duration::from_millis(200)
    }
}
