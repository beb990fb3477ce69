//! Traverse's static configuration: the YAML file an operator writes.
//!
//! Parsing is strict (`deny_unknown_fields`): a typo is an error that names the key,
//! never a silently ignored setting. Each section's defaults live in one place, its
//! struct's `Default` (applied by a struct-level `#[serde(default)]`); the few structs
//! with a required key name their optional fields' defaults beside those fields instead.
//! [`Config::validate`] checks what serde cannot (addresses, ranges, conflicts) and
//! names the offending key the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod entrypoints;
mod logs;
mod metrics;
mod multicluster;
mod process;
mod providers;
mod syntax;
mod tls;
mod tracing;
mod validate;

pub use entrypoints::{
    listen_address, Admin, EntryPoint, EntryPointHttp, EntryPointRedirect, EntryPointTimeouts,
    ForwardedHeaders, Redirections, TrustPolicy,
};
pub use logs::{
    parse_status_range, AccessLog, AccessLogFields, AccessLogFilters, AccessLogFormat, FieldMode,
    FieldSelection, GeneralLogs, HeaderMode, HeaderSelection, Logs,
};
pub use metrics::{MetricFamilies, Metrics, MetricsOtlp, Prometheus};
pub use multicluster::{Child, ChildHealthCheck, Multicluster, PassiveHealthCheck, Role};
pub use process::{Cluster, Server, Shutdown, Upstream};
pub use providers::{FileProvider, KubernetesProvider, LeaderElection, Providers};
pub use tls::{CertificateFiles, ChildTls, ListenerTls, Tls};
pub use tracing::{Compression, ExportQueue, Otlp, OtlpGrpc, OtlpHttp, Tracing};

#[cfg(test)]
mod defaults_tests;
#[cfg(test)]
mod tests;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The YAML does not match the schema (unknown key, wrong type, ...), or is not YAML.
    #[error("{origin}{}: {key}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        origin: String,
        /// Where the parser stopped, when it says.
        line: Option<u64>,
        key: String,
        message: String,
    },
    /// The configuration parsed but is not usable; every problem is listed.
    #[error("{origin}: invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

/// One validation failure, anchored at a configuration key such as `entryPoints.web.address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The whole static configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub role: Role,
    pub cluster: Cluster,
    /// Listeners for client traffic, by name (the name IngressRoutes use in `entryPoints`).
    pub entry_points: BTreeMap<String, EntryPoint>,
    pub admin: Admin,
    pub providers: Providers,
    pub upstream: Upstream,
    pub server: Server,
    pub shutdown: Shutdown,
    pub tracing: Tracing,
    pub metrics: Metrics,
    pub logs: Logs,
    /// Parent side of multi-cluster routing: the child gateways to forward to.
    pub multicluster: Multicluster,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            role: Role::default(),
            cluster: Cluster::default(),
            // Given no entrypoints, one for plain HTTP (and h2c) on 8080.
            entry_points: BTreeMap::from([("web".to_owned(), EntryPoint::new("0.0.0.0:8080"))]),
            admin: Admin::default(),
            providers: Providers::default(),
            upstream: Upstream::default(),
            server: Server::default(),
            shutdown: Shutdown::default(),
            tracing: Tracing::default(),
            metrics: Metrics::default(),
            logs: Logs::default(),
            multicluster: Multicluster::default(),
        }
    }
}

impl Config {
    /// Reads, parses and validates a configuration file. Relative paths inside it are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let origin = path.display().to_string();
        let mut config = Config::parse(&text, &origin)?;
        config.resolve_paths(path.parent().unwrap_or_else(|| Path::new(".")));
        config
            .validate()
            .map_err(|problems| ConfigError::Invalid { origin, problems })?;
        Ok(config)
    }

    /// Makes every relative file path in the configuration relative to `base`, the
    /// configuration file's directory.
    fn resolve_paths(&mut self, base: &Path) {
        let mut paths: Vec<&mut PathBuf> = Vec::new();
        paths.extend(self.providers.file.as_mut().map(|f| &mut f.directory));
        paths.extend(
            self.providers
                .kubernetes
                .as_mut()
                .and_then(|k| k.kubeconfig.as_mut()),
        );
        paths.extend(self.logs.access.file_path.as_mut());
        for tls in self
            .entry_points
            .values_mut()
            .filter_map(|e| e.tls.as_mut())
        {
            paths.extend(tls.paths_mut());
        }
        for tls in self
            .multicluster
            .children
            .values_mut()
            .filter_map(|c| c.tls.as_mut())
        {
            paths.extend(tls.paths_mut());
        }
        for path in paths {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Parses YAML without validating; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        // An empty file is a valid, all-defaults configuration.
        let text = if text.trim().is_empty() { "{}" } else { text };
        // Only `true` and `false` are booleans (YAML 1.2): `on` or `y` stay strings.
        let options = serde_saphyr::options! { strict_booleans: true, with_snippet: false };
        // The key where deserializing stopped; none when the text is not YAML at all.
        let mut key = String::from(".");
        let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
            serde_path_to_error::deserialize(de).map_err(|error| {
                key = error.path().to_string();
                error.into_inner()
            })
        });
        let error = match parsed {
            Ok(config) => return Ok(config),
            Err(error) => error,
        };
        let error = error.without_snippet();
        Err(ConfigError::Parse {
            origin: origin.to_owned(),
            line: error.location().map(|l| l.line()).filter(|l| *l > 0),
            key: if key == "." {
                "(top level)".to_owned()
            } else {
                key
            },
            // The message alone: the line is given once, beside the file's name.
            message: serde_saphyr::MessageFormatter::format_message(
                &serde_saphyr::DefaultMessageFormatter,
                error,
            )
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
        })
    }

    /// Worker threads per entrypoint after resolving `0` to the number of cores.
    pub fn worker_threads(&self) -> usize {
        match self.server.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}
