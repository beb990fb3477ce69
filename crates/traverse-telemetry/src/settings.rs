//! Resolves the telemetry configuration (traces, metrics push, OTLP logs) against the standard `OTEL_*` environment
//! variables: a value set in the configuration file wins, then the variable, then
//! the default. Pure (the environment is passed in) so every precedence rule is
//! tested without touching the process environment.

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Sampler;
use opentelemetry_sdk::Resource;
use opentelemetry_semantic_conventions::attribute as semconv;
use traverse_config::{Config, ExportQueue, Otlp, Problem, Tls};

use crate::export::{Compression, ExporterOptions, Protocol, TlsOptions};
use crate::logs::LogSettings;
use crate::metrics::push::PushSettings;

/// Everything the trace pipeline needs, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    pub exporter: ExporterOptions,
    pub sampler: Sampler,
    pub resource: Resource,
    pub queue: ExportQueue,
    pub add_internals: bool,
    pub trace_id_response_header: Option<http::HeaderName>,
    pub role: &'static str,
}

/// Every telemetry signal, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// service.name, k8s.cluster.name, ...: shared by every signal.
    pub resource: Resource,
    /// `None` when tracing is off.
    pub traces: Option<TraceSettings>,
    /// `None` when the OTLP metrics push is off.
    pub metrics_push: Option<PushSettings>,
    /// The gateway's own log lines over OTLP.
    pub general_logs: Option<LogSettings>,
    /// Access log records over OTLP.
    pub access_logs: Option<LogSettings>,
}

const DEFAULT_SERVICE_NAME: &str = "traverse";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
const DEFAULT_PUSH_INTERVAL: Duration = Duration::from_secs(10);

/// An OTLP signal, as the `OTEL_*` variables and the HTTP paths name it.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    /// The upper-case infix of the signal-specific variables.
    fn env(self) -> &'static str {
        match self {
            Signal::Traces => "TRACES",
            Signal::Metrics => "METRICS",
            Signal::Logs => "LOGS",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }
}

/// Resolves every signal for `config`. `env` looks up an environment variable
/// (`|name| std::env::var(name).ok()` in production). Every problem is reported,
/// each naming its configuration key or variable.
pub fn resolve(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TelemetrySettings, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |key: &str, message: String| {
        problems.push(Problem {
            key: key.to_owned(),
            message,
        })
    };
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let tracing = &config.tracing;
    let resource = resource(config, &env, &mut problem);

    let traces =
        exporter(&tracing.otlp, Signal::Traces, true, &env, &mut problem).map(|exporter| {
            let sampler = match tracing.sample_rate {
                Some(rate) => parent_based_ratio(rate),
                None => sampler_from_env(&env, &mut problem),
            };
            TraceSettings {
                exporter,
                sampler,
                resource: resource.clone(),
                queue: tracing.queue.clone(),
                add_internals: tracing.add_internals,
                trace_id_response_header: tracing
                    .trace_id_response_header
                    .as_deref()
                    .and_then(|name| http::HeaderName::try_from(name).ok()),
                role: config.role.as_str(),
            }
        });

    let metrics = &config.metrics.otlp;
    let metrics_push = exporter(
        &metrics.transport(),
        Signal::Metrics,
        true,
        &env,
        &mut problem,
    )
    .map(|exporter| {
        let interval =
            metrics
                .push_interval
                .unwrap_or_else(|| match env("OTEL_METRIC_EXPORT_INTERVAL") {
                    None => DEFAULT_PUSH_INTERVAL,
                    Some(ms) => match ms.trim().parse::<u64>() {
                        Ok(ms) if ms >= 1000 => Duration::from_millis(ms),
                        _ => {
                            problem(
                                "OTEL_METRIC_EXPORT_INTERVAL",
                                format!("{ms:?} is not a number of milliseconds of at least 1000"),
                            );
                            DEFAULT_PUSH_INTERVAL
                        }
                    },
                });
        PushSettings {
            exporter,
            interval,
            families: metrics.families(),
            service_name: metrics.service_name.clone(),
        }
    });

    let logs = |otlp, problem: &mut dyn FnMut(&str, String)| {
        exporter(otlp, Signal::Logs, false, &env, problem).map(|exporter| LogSettings {
            exporter,
            resource: resource.clone(),
            queue: ExportQueue::default(),
        })
    };
    let general_logs = logs(&config.logs.general.otlp, &mut problem);
    let access_logs = logs(&config.logs.access.otlp, &mut problem);

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(TelemetrySettings {
        resource,
        traces,
        metrics_push,
        general_logs,
        access_logs,
    })
}

/// Where one signal goes, or `None` when it is not exported. `env_enables`: whether an
/// `OTEL_EXPORTER_OTLP_*ENDPOINT` variable alone turns the signal on.
fn exporter(
    otlp: &Otlp,
    signal: Signal,
    env_enables: bool,
    env: &dyn Fn(&str) -> Option<String>,
    problem: &mut dyn FnMut(&str, String),
) -> Option<ExporterOptions> {
    let specific = |what: &str| format!("OTEL_EXPORTER_OTLP_{}_{what}", signal.env());
    let env_endpoint = env(&specific("ENDPOINT"))
        .map(|e| (e, false))
        .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|e| (e, true)));
    let configured = otlp.http_enabled().is_some() || otlp.grpc_enabled().is_some();
    let enabled = match otlp.enabled {
        Some(enabled) => enabled,
        None => {
            let disabled_by_env = env("OTEL_SDK_DISABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                || env(&format!("OTEL_{}_EXPORTER", signal.env()))
                    .is_some_and(|v| v.trim() == "none");
            !disabled_by_env && (configured || (env_enables && env_endpoint.is_some()))
        }
    };
    if !enabled {
        return None;
    }

    let protocol = if otlp.grpc_enabled().is_some() {
        Protocol::Grpc
    } else if otlp.http_enabled().is_some() {
        Protocol::HttpProtobuf
    } else {
        let names = [
            specific("PROTOCOL"),
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
        ];
        let (name, value) = names
            .iter()
            .find_map(|name| env(name).map(|v| (name.as_str(), v)))
            .unwrap_or(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()));
        match value.trim() {
            "grpc" => Protocol::Grpc,
            "http/protobuf" => Protocol::HttpProtobuf,
            other => {
                problem(
                    name,
                    format!("{other:?} is not supported; use grpc or http/protobuf"),
                );
                Protocol::HttpProtobuf
            }
        }
    };

    let (config_endpoint, config_headers, config_timeout, config_compression, tls) = match protocol
    {
        Protocol::Grpc => {
            let grpc = otlp.grpc_enabled();
            (
                grpc.and_then(|g| g.endpoint.as_deref())
                    .map(|e| grpc_url(e, grpc.is_some_and(|g| g.insecure))),
                grpc.map(|g| &g.headers),
                grpc.and_then(|g| g.timeout),
                grpc.and_then(|g| g.compression),
                grpc.and_then(|g| g.tls.as_ref()),
            )
        }
        Protocol::HttpProtobuf => {
            let http = otlp.http_enabled();
            (
                http.and_then(|h| h.endpoint.clone()),
                http.map(|h| &h.headers),
                http.and_then(|h| h.timeout),
                http.and_then(|h| h.compression),
                http.and_then(|h| h.tls.as_ref()),
            )
        }
    };
    let endpoint = config_endpoint
        .or_else(|| {
            env_endpoint.map(|(endpoint, is_base)| match protocol {
                // The generic variable is a base URL; the signal path is appended for HTTP.
                Protocol::HttpProtobuf if is_base => {
                    format!("{}{}", endpoint.trim_end_matches('/'), signal.path())
                }
                _ => endpoint,
            })
        })
        .unwrap_or_else(|| match protocol {
            Protocol::Grpc => DEFAULT_GRPC_ENDPOINT.to_owned(),
            Protocol::HttpProtobuf => format!("http://localhost:4318{}", signal.path()),
        });

    let mut headers = BTreeMap::new();
    for name in ["OTEL_EXPORTER_OTLP_HEADERS".to_owned(), specific("HEADERS")] {
        if let Some(value) = env(&name) {
            match parse_key_values(&value) {
                Ok(pairs) => headers.extend(pairs),
                Err(message) => problem(&name, message),
            }
        }
    }
    if let Some(config_headers) = config_headers {
        headers.extend(config_headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    let timeout = config_timeout.unwrap_or_else(|| {
        let names = [specific("TIMEOUT"), "OTEL_EXPORTER_OTLP_TIMEOUT".to_owned()];
        match names.iter().find_map(|name| env(name).map(|v| (name, v))) {
            Some((name, value)) => match value.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    problem(
                        name,
                        format!("{value:?} is not a positive number of milliseconds"),
                    );
                    DEFAULT_TIMEOUT
                }
            },
            None => DEFAULT_TIMEOUT,
        }
    });

    let compression = config_compression.unwrap_or_else(|| {
        let names = [
            specific("COMPRESSION"),
            "OTEL_EXPORTER_OTLP_COMPRESSION".to_owned(),
        ];
        match names.iter().find_map(|name| env(name).map(|v| (name, v))) {
            Some((name, value)) => match value.trim() {
                "gzip" => Compression::Gzip,
                "none" | "" => Compression::None,
                other => {
                    problem(
                        name,
                        format!("{other:?} is not supported; use gzip or none"),
                    );
                    Compression::None
                }
            },
            None => Compression::None,
        }
    });

    Some(ExporterOptions {
        protocol,
        endpoint,
        headers: headers.into_iter().collect(),
        timeout,
        compression,
        tls: tls.map(tls_options).unwrap_or_default(),
    })
}

/// The resource every signal reports: configuration wins over `OTEL_SERVICE_NAME`
/// and `OTEL_RESOURCE_ATTRIBUTES`, which win over the defaults.
fn resource(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    problem: &mut dyn FnMut(&str, String),
) -> Resource {
    let tracing = &config.tracing;
    let mut attributes = BTreeMap::new();
    attributes.insert(semconv::SERVICE_INSTANCE_ID.to_owned(), instance_id());
    attributes.insert(
        semconv::SERVICE_VERSION.to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
    );
    if let Some(value) = env("OTEL_RESOURCE_ATTRIBUTES") {
        match parse_key_values(&value) {
            Ok(pairs) => attributes.extend(pairs),
            Err(message) => problem("OTEL_RESOURCE_ATTRIBUTES", message),
        }
    }
    if let Some(name) = env("OTEL_SERVICE_NAME") {
        attributes.insert(semconv::SERVICE_NAME.to_owned(), name);
    }
    attributes
        .entry(semconv::SERVICE_NAME.to_owned())
        .or_insert_with(|| DEFAULT_SERVICE_NAME.to_owned());
    attributes.insert(
        semconv::K8S_CLUSTER_NAME.to_owned(),
        config.cluster.name.clone(),
    );
    attributes.insert("traverse.role".to_owned(), config.role.as_str().to_owned());
    attributes.extend(tracing.resource_attributes.clone());
    if let Some(name) = &tracing.service_name {
        attributes.insert(semconv::SERVICE_NAME.to_owned(), name.clone());
    }
    Resource::builder_empty()
        .with_attributes(attributes.into_iter().map(|(k, v)| KeyValue::new(k, v)))
        .build()
}

/// The sampler: follow the caller's decision, sample new traces by trace id.
fn parent_based_ratio(rate: f64) -> Sampler {
    Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(rate)))
}

/// `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`; the default is the spec's
/// `parentbased_always_on`.
fn sampler_from_env(
    env: &dyn Fn(&str) -> Option<String>,
    problem: &mut dyn FnMut(&str, String),
) -> Sampler {
    let Some(name) = env("OTEL_TRACES_SAMPLER") else {
        return Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
    };
    let ratio = match env("OTEL_TRACES_SAMPLER_ARG") {
        None => 1.0,
        Some(arg) => match arg.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                if name.trim().ends_with("traceidratio") {
                    problem(
                        "OTEL_TRACES_SAMPLER_ARG",
                        format!("{arg:?} is not a number between 0.0 and 1.0"),
                    );
                }
                1.0
            }
        },
    };
    match name.trim() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatioBased(ratio),
        "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        "parentbased_traceidratio" => parent_based_ratio(ratio),
        other => {
            problem(
                "OTEL_TRACES_SAMPLER",
                format!("{other:?} is not supported; use always_on, always_off, traceidratio or their parentbased_ forms"),
            );
            Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
        }
    }
}

/// The gRPC endpoint as a URL: Traefik-style `host:port` is plaintext when
/// `insecure`, TLS otherwise.
fn grpc_url(endpoint: &str, insecure: bool) -> String {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.to_owned()
    } else if insecure {
        format!("http://{endpoint}")
    } else {
        format!("https://{endpoint}")
    }
}

fn tls_options(tls: &Tls) -> TlsOptions {
    TlsOptions {
        files: tls.files(),
        insecure_skip_verify: tls.insecure_skip_verify,
    }
}

/// A random id per process: several gateways on one host stay distinct.
fn instance_id() -> String {
    let id = fastrand::u128(..);
    let hex = format!("{id:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The W3C Baggage-like `key=value,key=value` list of `OTEL_RESOURCE_ATTRIBUTES`
/// and `OTEL_EXPORTER_OTLP_HEADERS`, values percent-decoded.
pub(crate) fn parse_key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(format!("{item:?} is not key=value"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{item:?} has an empty key"));
        }
        let value =
            percent_decode(value.trim()).ok_or_else(|| format!("{item:?} has a bad %-escape"))?;
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
