//! Each section's defaults live in one place: an empty section parses to its `Default`,
//! and the keys without a default still fail when missing.

use std::any::type_name;
use std::fmt::Debug;

use serde::de::DeserializeOwned;

use super::*;

/// The section `T` parsed from `{}`, and `T::default()`, both as `Debug` text.
fn empty_and_default<T: DeserializeOwned + Default + Debug>() -> (&'static str, String, String) {
    let parsed: T = serde_saphyr::from_str("{}")
        .unwrap_or_else(|e| panic!("{}: an empty section: {e}", type_name::<T>()));
    (
        type_name::<T>(),
        format!("{parsed:?}"),
        format!("{:?}", T::default()),
    )
}

#[test]
fn an_empty_section_is_its_default() {
    let sections = [
        empty_and_default::<Config>(),
        empty_and_default::<Cluster>(),
        empty_and_default::<EntryPointTimeouts>(),
        empty_and_default::<ForwardedHeaders>(),
        empty_and_default::<Admin>(),
        empty_and_default::<Providers>(),
        empty_and_default::<KubernetesProvider>(),
        empty_and_default::<LeaderElection>(),
        empty_and_default::<Upstream>(),
        empty_and_default::<Server>(),
        empty_and_default::<Shutdown>(),
        empty_and_default::<Multicluster>(),
        empty_and_default::<ChildHealthCheck>(),
        empty_and_default::<PassiveHealthCheck>(),
        empty_and_default::<ChildTls>(),
        empty_and_default::<Tracing>(),
        empty_and_default::<ExportQueue>(),
        empty_and_default::<Otlp>(),
        empty_and_default::<OtlpHttp>(),
        empty_and_default::<OtlpGrpc>(),
        empty_and_default::<Tls>(),
        empty_and_default::<Metrics>(),
        empty_and_default::<Prometheus>(),
        empty_and_default::<MetricsOtlp>(),
        empty_and_default::<Logs>(),
        empty_and_default::<GeneralLogs>(),
        empty_and_default::<AccessLog>(),
        empty_and_default::<AccessLogFilters>(),
        empty_and_default::<AccessLogFields>(),
        empty_and_default::<FieldSelection>(),
        empty_and_default::<HeaderSelection>(),
    ];
    for (name, parsed, default) in sections {
        assert_eq!(parsed, default, "{name}");
    }
}

#[test]
fn sections_with_a_required_key_default_the_rest_like_their_constructor() {
    let entry_point: EntryPoint = serde_saphyr::from_str("{address: ':1'}").expect("entrypoint");
    assert_eq!(
        format!("{entry_point:?}"),
        format!("{:?}", EntryPoint::new(":1"))
    );
    let file: FileProvider = serde_saphyr::from_str("{directory: d}").expect("file provider");
    assert_eq!(format!("{file:?}"), format!("{:?}", FileProvider::new("d")));
}

#[test]
fn keys_without_a_default_stay_required() {
    let cases = [
        ("entryPoints: {web: {}}", "entryPoints.web", "address"),
        ("providers: {file: {}}", "providers.file", "directory"),
        (
            "multicluster: {children: {a: {}}}",
            "multicluster.children.a",
            "address",
        ),
    ];
    for (text, key, field) in cases {
        match Config::parse(text, "test.yaml") {
            Err(ConfigError::Parse {
                key: got, message, ..
            }) => {
                assert_eq!(got, key, "{text}");
                assert!(
                    message.contains(&format!("missing field `{field}`")),
                    "{text}: {message}"
                );
            }
            other => panic!("{text}: expected a parse error, got {other:?}"),
        }
    }
}

#[test]
fn every_role_names_its_files_alike() {
    let config = Config::parse(
        "
entryPoints:
  web: {address: ':1', tls: {cert: l.crt, key: l.key, clientCA: l-ca.pem}}
multicluster:
  children:
    a: {address: 'a:1', tls: {serverName: a.test, ca: c-ca.pem, cert: c.crt, key: c.key}}
tracing:
  otlp: {grpc: {tls: {ca: o-ca.pem}}}
",
        "test.yaml",
    )
    .expect("parses");
    let files = |cert: Option<&str>, key: Option<&str>, ca: &str| CertificateFiles {
        cert: cert.map(Into::into),
        key: key.map(Into::into),
        ca: Some(ca.into()),
    };
    let listener = config.entry_points["web"].tls.as_ref().expect("tls");
    assert_eq!(
        listener.files(),
        files(Some("l.crt"), Some("l.key"), "l-ca.pem")
    );
    let child = config.multicluster.children["a"].tls.as_ref().expect("tls");
    assert_eq!(
        child.files(),
        files(Some("c.crt"), Some("c.key"), "c-ca.pem")
    );
    let grpc = config.tracing.otlp.grpc.as_ref().expect("grpc");
    let collector = grpc.tls.as_ref().expect("tls");
    assert_eq!(collector.files(), files(None, None, "o-ca.pem"));
}
