//! The Prometheus parser harness against hand-written expositions: what is valid comes
//! back as written, what is not is rejected. This also pins the naming and strictness of
//! the installed `prometheus_client`.

use std::collections::BTreeMap;

use traverse_e2e::prometheus::{self, Exemplar, Format, Kind};

const TEXT: &str = r#"# HELP traverse_requests_total Requests answered.
# TYPE traverse_requests_total counter
traverse_requests_total{entrypoint="web",code="200"} 3
traverse_requests_total{entrypoint="web",code="502"} 1
traverse_requests_total{entrypoint="admin",code="200"} 5
# HELP traverse_request_duration_seconds Time to answer, "quoted" and \\ escaped.
# TYPE traverse_request_duration_seconds histogram
traverse_request_duration_seconds_bucket{entrypoint="web",le="0.1"} 2
traverse_request_duration_seconds_bucket{entrypoint="web",le="1"} 4
traverse_request_duration_seconds_bucket{entrypoint="web",le="+Inf"} 4
traverse_request_duration_seconds_sum{entrypoint="web"} 1.25
traverse_request_duration_seconds_count{entrypoint="web"} 4
# HELP traverse_open_connections Connections open now.
# TYPE traverse_open_connections gauge
traverse_open_connections 7
traverse_open_connections{entrypoint="web"} NaN
"#;

const OPENMETRICS: &str = r#"# HELP traverse_requests Requests answered.
# TYPE traverse_requests counter
traverse_requests_total{code="200"} 3.0
traverse_requests_created{code="200"} 1700000000.0
# HELP traverse_request_duration_seconds Time to answer.
# TYPE traverse_request_duration_seconds histogram
# UNIT traverse_request_duration_seconds seconds
traverse_request_duration_seconds_bucket{le="0.1"} 0
traverse_request_duration_seconds_bucket{le="0.25"} 1 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.12 1700000000.000
traverse_request_duration_seconds_bucket{le="+Inf"} 2 # {trace_id="0af7651916cd43dd8448eb211c80319c"} 3
traverse_request_duration_seconds_sum 3.12
traverse_request_duration_seconds_count 2
# EOF
"#;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn text_format_families_and_samples() {
    let families = prometheus::parse(TEXT, Format::Text).expect("valid 0.0.4");
    let names: Vec<_> = families.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "traverse_requests",
            "traverse_request_duration_seconds",
            "traverse_open_connections"
        ]
    );

    // A counter family loses `_total`; its samples keep it.
    let requests = prometheus::family(&families, "traverse_requests").expect("counter");
    assert_eq!(requests.kind, Kind::Counter);
    assert_eq!(requests.help, "Requests answered.");
    assert_eq!(requests.samples.len(), 3);
    assert!(requests
        .samples
        .iter()
        .all(|s| s.name == "traverse_requests_total"));
    assert_eq!(
        requests.samples[1].labels,
        labels(&[("entrypoint", "web"), ("code", "502")])
    );
    assert!(prometheus::family(&families, "traverse_requests_total").is_none());

    assert_eq!(
        prometheus::sum(&families, "traverse_requests_total", &[]),
        9.0
    );
    assert_eq!(
        prometheus::sum(
            &families,
            "traverse_requests_total",
            &[("entrypoint", "web")]
        ),
        4.0
    );
    assert_eq!(
        prometheus::sum(
            &families,
            "traverse_requests_total",
            &[("entrypoint", "web"), ("code", "200")]
        ),
        3.0
    );
    assert_eq!(
        prometheus::sum(&families, "traverse_requests_total", &[("code", "404")]),
        0.0
    );

    let duration =
        prometheus::family(&families, "traverse_request_duration_seconds").expect("histogram");
    assert_eq!(duration.kind, Kind::Histogram);
    assert_eq!(duration.help, r#"Time to answer, "quoted" and \ escaped."#);
    let buckets: Vec<_> = prometheus::samples(
        &families,
        "traverse_request_duration_seconds_bucket",
        &[("entrypoint", "web")],
    )
    .map(|s| (s.label("le").unwrap_or_default(), s.value))
    .collect();
    assert_eq!(buckets, [("0.1", 2.0), ("1", 4.0), ("+Inf", 4.0)]);
    assert_eq!(
        prometheus::sum(&families, "traverse_request_duration_seconds_sum", &[]),
        1.25
    );
    assert_eq!(
        prometheus::sum(&families, "traverse_request_duration_seconds_count", &[]),
        4.0
    );

    let open = prometheus::family(&families, "traverse_open_connections").expect("gauge");
    assert_eq!(open.kind, Kind::Gauge);
    assert_eq!(open.samples[0].value, 7.0);
    assert!(open.samples[1].value.is_nan());
    assert_eq!(prometheus::exemplars(&families).count(), 0);
}

#[test]
fn openmetrics_families_samples_and_exemplars() {
    let families = prometheus::parse(OPENMETRICS, Format::OpenMetrics).expect("valid OpenMetrics");

    let requests = prometheus::family(&families, "traverse_requests").expect("counter");
    assert_eq!(requests.kind, Kind::Counter);
    let names: Vec<_> = requests.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["traverse_requests_total", "traverse_requests_created"]
    );
    assert_eq!(
        prometheus::sum(&families, "traverse_requests_total", &[("code", "200")]),
        3.0
    );

    let duration =
        prometheus::family(&families, "traverse_request_duration_seconds").expect("histogram");
    assert_eq!(duration.kind, Kind::Histogram);
    assert_eq!(duration.unit, "seconds");

    let exemplars: Vec<_> = prometheus::exemplars(&families)
        .map(|(family, sample, exemplar)| {
            (
                family.name.as_str(),
                sample.label("le").unwrap_or_default(),
                exemplar.clone(),
            )
        })
        .collect();
    assert_eq!(
        exemplars,
        [
            (
                "traverse_request_duration_seconds",
                "0.25",
                Exemplar {
                    labels: labels(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]),
                    value: 0.12,
                    timestamp: Some(1_700_000_000.0),
                }
            ),
            (
                "traverse_request_duration_seconds",
                "+Inf",
                Exemplar {
                    labels: labels(&[("trace_id", "0af7651916cd43dd8448eb211c80319c")]),
                    value: 3.0,
                    timestamp: None,
                }
            ),
        ]
    );
}

#[test]
fn invalid_expositions_are_rejected() {
    let rejected = |text: &str, format: Format, expected: &str| {
        let error = prometheus::parse(text, format)
            .expect_err(&format!("must be rejected as {format:?}:\n{text}"));
        assert!(
            error.contains(expected),
            "the error for\n{text}\nshould mention {expected:?}: {error}"
        );
    };
    rejected(
        "# TYPE up gauge\nup 1\n",
        Format::OpenMetrics,
        "Missing # EOF",
    );
    rejected(
        "# TYPE up gauge\nup 1\n# EOF\nup 2\n",
        Format::OpenMetrics,
        "after # EOF",
    );
    rejected("up{job=\"x\" 1\n# EOF\n", Format::OpenMetrics, "ValueError");
    rejected("up{job=\"x\" 1\n", Format::Text, "ValueError");
    rejected("up{job=x} 1\n", Format::Text, "Invalid labels");
    rejected("up\n", Format::Text, "ValueError");
    rejected(
        "# TYPE c counter\nc_total -1\n# EOF\n",
        Format::OpenMetrics,
        "cannot be negative",
    );
    rejected(
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\nh_sum 1\n# EOF\n",
        Format::OpenMetrics,
        "+Inf bucket missing",
    );
    rejected(
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\na{x=\"1\"} 2\n# EOF\n",
        Format::OpenMetrics,
        "Clashing name",
    );
    // Lenient in the 0.0.4 parser, rejected by the harness.
    rejected(
        "# TYPE a gauge\na{x=\"1\"} 1\n# TYPE b gauge\nb 1\na{x=\"2\"} 2\n",
        Format::Text,
        "family a occurs twice",
    );
    rejected("a 1\na 2\n", Format::Text, "occurs twice");
    rejected(
        "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
        Format::Text,
        "series a",
    );
}

#[test]
fn empty_expositions() {
    assert_eq!(prometheus::parse("", Format::Text), Ok(Vec::new()));
    assert_eq!(
        prometheus::parse("# EOF\n", Format::OpenMetrics),
        Ok(Vec::new())
    );
}
