use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use traverse_config::MetricFamilies;

use super::prometheus::{base_name, render, Format};
use super::*;
use crate::pipeline::StatsSnapshot;

const ALL: MetricFamilies = MetricFamilies {
    add_entry_points_labels: true,
    add_routers_labels: true,
    add_services_labels: true,
};

fn metrics(families: MetricFamilies) -> Arc<Metrics> {
    let spans: StatsSource = Arc::new(|| StatsSnapshot {
        ended: 10,
        exported: 7,
        dropped: 2,
        rejected: 1,
        ..StatsSnapshot::default()
    });
    Metrics::new(MetricsOptions {
        resource: Resource::builder_empty()
            .with_attributes([KeyValue::new("service.name", "gw")])
            .build(),
        families,
        telemetry: vec![("spans", spans)],
    })
}

fn finish(metrics: &Metrics, entry_point: &Arc<str>, status: u16, millis: u64, sampled: bool) {
    let router: Arc<str> = "default/app#0".into();
    let route: Arc<str> = "/api/*".into();
    let service: Arc<str> = "default/app:80".into();
    metrics.request_started(entry_point);
    let (method, uri, headers) = (
        http::Method::GET,
        http::Uri::from_static("/"),
        http::HeaderMap::new(),
    );
    metrics.request_finished(&RequestRecord {
        entry_point,
        scheme: "http",
        method: &method,
        uri: &uri,
        version: http::Version::HTTP_11,
        host: None,
        port: None,
        tls: None,
        request_headers: &headers,
        response_headers: None,
        client: None,
        router: Some(&router),
        route: Some(&route),
        service: Some(&service),
        status,
        failure: None,
        start: std::time::SystemTime::now(),
        duration: Duration::from_millis(millis),
        request_bytes: 10,
        response_bytes: 100,
        attempts: 1,
        upstream: None,
        span: sampled.then(|| crate::record::SpanIds {
            trace_id: TraceId::from(0xabc_u128),
            span_id: SpanId::from(0xdef_u64),
            sampled: true,
        }),
        client_username: None,
        middleware: None,
    });
}

/// The value of the first sample `name` whose labels include every `k="v"` of `labels`
/// (the SDK does not order attributes, so neither does this).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let (series, _) = line.split_once(' ').unwrap_or((line, ""));
            let (sample, label_text) = series.split_once('{').unwrap_or((series, ""));
            sample == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| {
            line.rsplit_once("} ")
                .map_or(line.split(' ').nth(1), |(_, v)| v.split(' ').next())
        })
        .and_then(|v| v.parse().ok())
}

#[test]
fn requests_are_counted_per_family_with_bounded_labels() {
    let metrics = metrics(ALL);
    let web: Arc<str> = "web".into();
    for _ in 0..3 {
        finish(&metrics, &web, 200, 20, false);
    }
    finish(&metrics, &web, 502, 300, false);
    let text = render(&metrics, &ALL, Format::Text);

    assert_eq!(
        value(
            &text,
            "traverse_entrypoint_requests_total",
            &[
                ("code", "200"),
                ("entrypoint", "web"),
                ("method", "GET"),
                ("protocol", "1.1")
            ]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "traverse_router_requests_total",
            &[
                ("code", "502"),
                ("method", "GET"),
                ("protocol", "1.1"),
                ("router", "default/app#0"),
                ("service", "default/app:80")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "traverse_service_response_size_bytes_total",
            &[("code", "200")]
        ),
        Some(300.0)
    );
    assert_eq!(
        value(
            &text,
            "http_server_request_duration_seconds_count",
            &[
                ("http_request_method", "GET"),
                ("http_response_status_code", "200"),
                ("http_route", "/api/*")
            ]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "traverse_entrypoint_request_duration_seconds_bucket",
            &[
                ("code", "502"),
                ("entrypoint", "web"),
                ("method", "GET"),
                ("protocol", "1.1"),
                ("le", "0.25")
            ]
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "traverse_entrypoint_request_duration_seconds_bucket",
            &[
                ("code", "502"),
                ("entrypoint", "web"),
                ("method", "GET"),
                ("protocol", "1.1"),
                ("le", "0.5")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "http_server_active_requests",
            &[("entrypoint", "web")]
        ),
        Some(0.0)
    );
    assert!(text.contains("# TYPE traverse_entrypoint_requests_total counter"));
    assert!(
        text.contains(r#"target_info{service_name="gw"} 1"#),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "traverse_telemetry_dropped_total",
            &[("signal", "spans")]
        ),
        Some(2.0)
    );
    for (family, expected) in [
        ("traverse_telemetry_ended_total", 10.0),
        ("traverse_telemetry_rejected_total", 1.0),
    ] {
        assert_eq!(
            value(&text, family, &[("signal", "spans")]),
            Some(expected),
            "{family}"
        );
    }
}

#[test]
fn outputs_keep_only_their_families() {
    let metrics = metrics(ALL);
    let web: Arc<str> = "web".into();
    finish(&metrics, &web, 200, 1, false);
    let only_services = MetricFamilies {
        add_entry_points_labels: false,
        add_routers_labels: false,
        add_services_labels: true,
    };
    let text = render(&metrics, &only_services, Format::Text);
    assert!(text.contains("traverse_service_requests_total"));
    assert!(!text.contains("traverse_entrypoint_"));
    assert!(!text.contains("traverse_router_"));
    assert!(text.contains("http_server_request_duration_seconds_count"));
}

#[test]
fn families_no_output_wants_are_not_recorded() {
    let metrics = metrics(MetricFamilies {
        add_entry_points_labels: true,
        add_routers_labels: false,
        add_services_labels: false,
    });
    let web: Arc<str> = "web".into();
    finish(&metrics, &web, 200, 1, false);
    let text = render(&metrics, &ALL, Format::Text);
    assert!(text.contains("traverse_entrypoint_requests_total"));
    assert!(!text.contains("traverse_router_requests_total{"), "{text}");
    assert!(!text.contains("traverse_service_requests_total{"), "{text}");
}

#[test]
fn openmetrics_carries_exemplars_of_sampled_requests() {
    let metrics = metrics(ALL);
    let web: Arc<str> = "web".into();
    finish(&metrics, &web, 200, 30, true);
    finish(&metrics, &web, 200, 3, false);
    let text = render(&metrics, &ALL, Format::OpenMetrics);
    assert!(text.ends_with("# EOF\n"));
    let exemplar = format!(
        r#"# {{trace_id="{}",span_id="{}"}} 0.03 "#,
        TraceId::from(0xabc_u128),
        SpanId::from(0xdef_u64)
    );
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&exemplar)).collect();
    // One per duration histogram (server, entrypoint, router, service), in the 0.05 bucket.
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines.iter().all(|l| l.contains(r#"le="0.05""#)),
        "{lines:?}"
    );
    assert!(text.contains("# TYPE traverse_entrypoint_requests counter"));
    assert!(text.contains("# UNIT http_server_request_duration_seconds seconds"));
    // The classic format has no exemplars.
    assert!(!render(&metrics, &ALL, Format::Text).contains("trace_id"));
}

#[test]
fn reloads_and_trace_context() {
    let metrics = metrics(ALL);
    let web: Arc<str> = "web".into();
    metrics.config_reloaded(true);
    metrics.config_reloaded(false);
    metrics.config_reloaded(true);
    metrics.trace_context_seen(&web, false);
    metrics.trace_context_seen(&web, true);
    metrics.trace_context_seen(&web, false);
    let text = render(&metrics, &ALL, Format::Text);
    assert_eq!(
        value(
            &text,
            "traverse_config_reloads_total",
            &[("result", "success")]
        ),
        Some(2.0)
    );
    assert!(
        value(&text, "traverse_config_last_reload_success_seconds", &[]).is_some_and(|t| t > 1.7e9)
    );
    assert_eq!(
        value(
            &text,
            "traverse_trace_context_requests_total",
            &[("context", "missing"), ("entrypoint", "web")]
        ),
        Some(2.0),
        "{text}"
    );
}

#[test]
fn names_follow_the_otel_to_prometheus_rules() {
    assert_eq!(
        base_name("http.server.request.duration", "s"),
        "http_server_request_duration_seconds"
    );
    assert_eq!(
        base_name("traverse.router.request.size", "By"),
        "traverse_router_request_size_bytes"
    );
    assert_eq!(
        base_name("traverse.router.requests", "{request}"),
        "traverse_router_requests"
    );
    assert_eq!(
        Format::negotiate(Some(
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
        )),
        Format::OpenMetrics
    );
    assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
    assert_eq!(Format::negotiate(None), Format::Text);
}

#[test]
fn bound_series_belong_to_their_instance_and_survive_new_names() {
    // Two instances on one thread: each thread's cache of bound series must not mix them.
    let (a, b) = (metrics(ALL), metrics(ALL));
    for _ in 0..2 {
        // A fresh `Arc` each time, as after a reload: the same text is the same series.
        let web: Arc<str> = "web".into();
        finish(&a, &web, 200, 5, false);
    }
    let web: Arc<str> = "web".into();
    b.request_started(&web);
    finish(&b, &web, 200, 5, false);
    let count = |m: &Metrics| {
        let text = render(m, &ALL, Format::Text);
        value(
            &text,
            "traverse_entrypoint_requests_total",
            &[("code", "200"), ("entrypoint", "web")],
        )
    };
    assert_eq!((count(&a), count(&b)), (Some(2.0), Some(1.0)));
    let active = |m: &Metrics| {
        let text = render(m, &ALL, Format::Text);
        value(
            &text,
            "http_server_active_requests",
            &[("entrypoint", "web")],
        )
    };
    // `finish` starts and ends one request each time; `b` has one more still active.
    assert_eq!((active(&a), active(&b)), (Some(0.0), Some(1.0)));
}
