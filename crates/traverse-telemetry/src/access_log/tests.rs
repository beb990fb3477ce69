use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Version};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::Value;
use traverse_config::{
    AccessLog, AccessLogFilters, AccessLogFormat, FieldMode, FieldSelection, HeaderMode,
    HeaderSelection,
};

use super::format::{rfc3339, Civil};
use super::{AccessLogPolicy, AccessLogger, AccessRecord, CapturedValue};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn config() -> AccessLog {
    AccessLog {
        enabled: true,
        ..AccessLog::default()
    }
}

fn policy() -> AccessLogPolicy {
    AccessLogPolicy::new(&config())
}

fn with_filters(filters: AccessLogFilters) -> AccessLogPolicy {
    let mut config = config();
    config.filters = filters;
    AccessLogPolicy::new(&config)
}

fn with_fields(default_mode: FieldMode, names: &[(&str, FieldMode)]) -> AccessLogPolicy {
    let mut config = config();
    config.fields.general = FieldSelection {
        default_mode,
        names: names.iter().map(|(n, m)| ((*n).to_owned(), *m)).collect(),
    };
    AccessLogPolicy::new(&config)
}

fn with_headers(default_mode: HeaderMode, names: &[(&str, HeaderMode)]) -> AccessLogPolicy {
    let mut config = config();
    config.fields.headers = HeaderSelection {
        default_mode,
        names: names.iter().map(|(n, m)| ((*n).to_owned(), *m)).collect(),
    };
    AccessLogPolicy::new(&config)
}

fn header(name: &'static str, value: &'static str) -> (HeaderName, CapturedValue) {
    (
        HeaderName::from_static(name),
        CapturedValue::Value(HeaderValue::from_static(value)),
    )
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)
}

/// A proxied request with every field set.
fn record() -> AccessRecord {
    AccessRecord {
        start: start(),
        duration: Duration::from_micros(12_500),
        origin_duration: Some(Duration::from_millis(10)),
        client_addr: Some(SocketAddr::from(([192, 0, 2, 10], 54321))),
        client_username: None,
        method: Method::GET,
        path: "/api/items?page=2".to_owned(),
        protocol: Version::HTTP_11,
        host: "example.com".to_owned(),
        scheme: "https",
        tls_version: Some("1.3"),
        tls_server_name: Some("example.com".to_owned()),
        request_content_size: 0,
        entry_point: Some(Arc::from("websecure")),
        router: Some(Arc::from("web-api@file")),
        route: Some(Arc::from("/api/*")),
        middleware: None,
        service: Some(Arc::from("api@file")),
        service_addr: Some(Arc::from("10.0.0.5:8080")),
        service_url: Some(Arc::from("http://10.0.0.5:8080")),
        origin_status: Some(200),
        origin_content_size: Some(512),
        downstream_status: 200,
        downstream_content_size: 512,
        retry_attempts: 0,
        request_count: Some(7),
        trace_id: TraceId::from_hex(TRACE).ok(),
        span_id: SpanId::from_hex(SPAN).ok(),
        sampled: true,
        request_headers: vec![
            header("referer", "https://example.com/"),
            header("user-agent", "curl/8.5.0"),
        ],
        response_headers: vec![header("content-type", "application/json")],
    }
}

fn json(policy: &AccessLogPolicy, record: &AccessRecord) -> serde_json::Map<String, Value> {
    match serde_json::from_str(&policy.json(record)) {
        Ok(Value::Object(object)) => object,
        other => panic!("not a JSON object: {other:?}"),
    }
}

// --- filters ---

#[test]
fn without_filters_every_request_is_kept() {
    let policy = policy();
    assert!(policy.keeps(200, Duration::ZERO, 0));
    assert!(policy.keeps(503, Duration::from_secs(9), 3));
}

#[test]
fn status_filter_keeps_codes_in_any_range() {
    let policy = with_filters(AccessLogFilters {
        status_codes: vec!["400-499".into(), "302".into()],
        ..AccessLogFilters::default()
    });
    for status in [302, 400, 404, 499] {
        assert!(policy.keeps(status, Duration::ZERO, 0), "{status}");
    }
    for status in [200, 301, 303, 500] {
        assert!(!policy.keeps(status, Duration::ZERO, 0), "{status}");
    }
}

#[test]
fn min_duration_filter_keeps_slow_requests() {
    let policy = with_filters(AccessLogFilters {
        min_duration: Some(Duration::from_secs(1)),
        ..AccessLogFilters::default()
    });
    assert!(!policy.keeps(200, Duration::from_millis(999), 0));
    assert!(policy.keeps(200, Duration::from_secs(1), 0));
    assert!(policy.keeps(200, Duration::from_secs(2), 0));
}

#[test]
fn retry_filter_keeps_retried_requests() {
    let policy = with_filters(AccessLogFilters {
        retry_attempts: true,
        ..AccessLogFilters::default()
    });
    assert!(!policy.keeps(500, Duration::from_secs(5), 0));
    assert!(policy.keeps(200, Duration::ZERO, 1));
}

#[test]
fn a_request_matching_any_filter_is_kept() {
    let policy = with_filters(AccessLogFilters {
        status_codes: vec!["500-599".into()],
        retry_attempts: true,
        min_duration: Some(Duration::from_secs(1)),
    });
    let fast = Duration::from_millis(5);
    assert!(!policy.keeps(200, fast, 0));
    assert!(policy.keeps(503, fast, 0));
    assert!(policy.keeps(200, Duration::from_secs(2), 0));
    assert!(policy.keeps(200, fast, 2));
}

// --- headers ---

fn request_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("curl/8.5.0"));
    headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
    headers.insert("cookie", HeaderValue::from_static("session=1"));
    headers.insert("accept", HeaderValue::from_static("*/*"));
    headers
}

fn find<'a>(captured: &'a [(HeaderName, CapturedValue)], name: &str) -> Option<&'a CapturedValue> {
    captured
        .iter()
        .find(|(captured, _)| captured == name)
        .map(|(_, value)| value)
}

#[test]
fn headers_are_not_captured_by_default_and_nothing_is_allocated() {
    let captured = policy().capture_headers(&request_headers());
    assert!(captured.is_empty());
    assert_eq!(captured.capacity(), 0);
}

#[test]
fn default_drop_captures_only_named_headers_case_insensitively() {
    let policy = with_headers(
        HeaderMode::Drop,
        &[
            ("User-Agent", HeaderMode::Keep),
            ("AUTHORIZATION", HeaderMode::Redact),
            ("Cookie", HeaderMode::Drop),
            ("X-Missing", HeaderMode::Keep),
        ],
    );
    let captured = policy.capture_headers(&request_headers());
    assert_eq!(captured.len(), 2, "{captured:?}");
    assert_eq!(
        find(&captured, "user-agent"),
        Some(&CapturedValue::Value(HeaderValue::from_static(
            "curl/8.5.0"
        )))
    );
    assert_eq!(
        find(&captured, "authorization"),
        Some(&CapturedValue::Redacted)
    );
}

#[test]
fn default_keep_logs_every_header_except_overrides() {
    let policy = with_headers(
        HeaderMode::Keep,
        &[
            ("Cookie", HeaderMode::Drop),
            ("authorization", HeaderMode::Redact),
        ],
    );
    let captured = policy.capture_headers(&request_headers());
    assert_eq!(captured.len(), 3, "{captured:?}");
    assert!(find(&captured, "cookie").is_none());
    assert_eq!(
        find(&captured, "authorization"),
        Some(&CapturedValue::Redacted)
    );
    assert_eq!(
        find(&captured, "accept"),
        Some(&CapturedValue::Value(HeaderValue::from_static("*/*")))
    );
}

#[test]
fn default_redact_hides_values_unless_kept() {
    let policy = with_headers(HeaderMode::Redact, &[("Accept", HeaderMode::Keep)]);
    let captured = policy.capture_headers(&request_headers());
    assert_eq!(captured.len(), 4);
    assert_eq!(
        find(&captured, "accept"),
        Some(&CapturedValue::Value(HeaderValue::from_static("*/*")))
    );
    assert_eq!(find(&captured, "cookie"), Some(&CapturedValue::Redacted));
    assert_eq!(
        find(&captured, "user-agent"),
        Some(&CapturedValue::Redacted)
    );
}

#[test]
fn every_value_of_a_repeated_header_is_captured() {
    let mut headers = HeaderMap::new();
    headers.append("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
    headers.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
    for policy in [
        with_headers(HeaderMode::Drop, &[("X-Forwarded-For", HeaderMode::Keep)]),
        with_headers(HeaderMode::Keep, &[]),
    ] {
        assert_eq!(policy.capture_headers(&headers).len(), 2);
    }
}

// --- JSON ---

#[test]
fn json_has_traefik_names_and_typed_values() {
    let object = json(&policy(), &record());
    assert_eq!(object["StartUTC"], "2023-11-14T22:13:20.123456789Z");
    assert_eq!(object["Duration"], 12_500_000);
    assert_eq!(object["OriginDuration"], 10_000_000);
    assert_eq!(object["ClientAddr"], "192.0.2.10:54321");
    assert_eq!(object["ClientHost"], "192.0.2.10");
    assert_eq!(object["ClientPort"], "54321");
    assert_eq!(object["RequestMethod"], "GET");
    assert_eq!(object["RequestPath"], "/api/items?page=2");
    assert_eq!(object["RequestProtocol"], "HTTP/1.1");
    assert_eq!(object["RequestHost"], "example.com");
    assert_eq!(object["RequestScheme"], "https");
    assert_eq!(object["TLSVersion"], "1.3");
    assert_eq!(object["TLSServerName"], "example.com");
    assert_eq!(object["RequestContentSize"], 0);
    assert_eq!(object["entryPointName"], "websecure");
    assert_eq!(object["RouterName"], "web-api@file");
    assert_eq!(object["http.route"], "/api/*");
    assert_eq!(object["ServiceName"], "api@file");
    assert_eq!(object["ServiceAddr"], "10.0.0.5:8080");
    assert_eq!(object["ServiceURL"], "http://10.0.0.5:8080");
    assert_eq!(object["OriginStatus"], 200);
    assert_eq!(object["OriginContentSize"], 512);
    assert_eq!(object["DownstreamStatus"], 200);
    assert_eq!(object["DownstreamContentSize"], 512);
    assert_eq!(object["RetryAttempts"], 0);
    assert_eq!(object["RequestCount"], 7);
    assert_eq!(object["trace_id"], TRACE);
    assert_eq!(object["span_id"], SPAN);
    assert_eq!(object["request_Referer"], "https://example.com/");
    assert_eq!(object["request_User-Agent"], "curl/8.5.0");
    assert_eq!(object["downstream_Content-Type"], "application/json");
    assert!(!object.contains_key("ClientUsername"));
}

#[test]
fn json_leaves_out_what_is_unknown() {
    let object = json(&policy(), &AccessRecord::default());
    for absent in [
        "OriginDuration",
        "TLSVersion",
        "TLSServerName",
        "ClientAddr",
        "ClientHost",
        "ClientPort",
        "entryPointName",
        "RouterName",
        "http.route",
        "traverse.middleware",
        "ServiceName",
        "ServiceAddr",
        "ServiceURL",
        "OriginStatus",
        "OriginContentSize",
        "RequestCount",
        "trace_id",
        "span_id",
    ] {
        assert!(!object.contains_key(absent), "{absent}");
    }
    assert_eq!(object["DownstreamStatus"], 0);
    assert_eq!(object["StartUTC"], "1970-01-01T00:00:00.000000000Z");
}

#[test]
fn json_is_one_line_without_newline() {
    let mut record = record();
    record.path = "/a\nb\"c".to_owned();
    let line = policy().json(&record);
    assert!(!line.contains('\n'));
    assert!(!line.ends_with('\n'));
}

#[test]
fn json_omits_dropped_fields() {
    let policy = with_fields(
        FieldMode::Keep,
        &[
            ("ClientAddr", FieldMode::Drop),
            ("requestpath", FieldMode::Drop),
        ],
    );
    let object = json(&policy, &record());
    assert!(!object.contains_key("ClientAddr"));
    assert!(!object.contains_key("RequestPath"));
    assert!(object.contains_key("ClientHost"));

    let policy = with_fields(
        FieldMode::Drop,
        &[
            ("DownstreamStatus", FieldMode::Keep),
            ("trace_id", FieldMode::Keep),
        ],
    );
    let mut record = record();
    record.request_headers.clear();
    record.response_headers.clear();
    let object = json(&policy, &record);
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(object["DownstreamStatus"], 200);
    assert_eq!(object["trace_id"], TRACE);
}

#[test]
fn json_joins_the_values_of_a_repeated_header() {
    let mut record = record();
    record.response_headers = vec![
        header("set-cookie", "a=1"),
        header("x-cache", "HIT"),
        header("set-cookie", "b=2"),
    ];
    let object = json(&policy(), &record);
    assert_eq!(object["downstream_Set-Cookie"], "a=1, b=2");
    assert_eq!(object["downstream_X-Cache"], "HIT");
}

#[test]
fn redacted_headers_are_logged_as_redacted() {
    let mut record = record();
    record.request_headers = vec![(
        HeaderName::from_static("authorization"),
        CapturedValue::Redacted,
    )];
    let object = json(&policy(), &record);
    assert_eq!(object["request_Authorization"], "REDACTED");
}

// --- common log format ---

#[test]
fn common_line_matches_traefiks_shape() {
    assert_eq!(
        policy().common(&record()),
        "192.0.2.10 - - [14/Nov/2023:22:13:20 +0000] \"GET /api/items?page=2 HTTP/1.1\" \
         200 512 \"https://example.com/\" \"curl/8.5.0\" 7 \"web-api@file\" \
         \"http://10.0.0.5:8080\" 12ms"
    );
}

#[test]
fn common_line_shows_unknown_values_as_dashes() {
    let record = AccessRecord {
        client_username: Some("alice".to_owned()),
        protocol: Version::HTTP_2,
        ..AccessRecord::default()
    };
    assert_eq!(
        policy().common(&record),
        "- - alice [01/Jan/1970:00:00:00 +0000] \"GET - HTTP/2.0\" 0 0 \"-\" \"-\" - \"-\" \"-\" 0ms"
    );
}

#[test]
fn common_line_shows_dropped_fields_as_dashes() {
    let policy = with_fields(
        FieldMode::Keep,
        &[
            ("ClientHost", FieldMode::Drop),
            ("RouterName", FieldMode::Drop),
            ("StartUTC", FieldMode::Drop),
            ("Duration", FieldMode::Drop),
        ],
    );
    assert_eq!(
        policy.common(&record()),
        "- - - [-] \"GET /api/items?page=2 HTTP/1.1\" 200 512 \"https://example.com/\" \
         \"curl/8.5.0\" 7 \"-\" \"http://10.0.0.5:8080\" -"
    );
}

#[test]
fn common_line_escapes_what_could_forge_fields_or_lines() {
    let mut record = record();
    record.request_headers = vec![(
        HeaderName::from_static("user-agent"),
        CapturedValue::Value(HeaderValue::from_static("evil\" 200 \\ x\t")),
    )];
    let line = policy().common(&record);
    assert!(line.contains(r#""evil\" 200 \\ x\t""#), "{line}");
    assert!(!line.contains('\t'));
}

// --- time ---

#[test]
fn rfc3339_has_nanoseconds_and_utc() {
    assert_eq!(rfc3339(start()), "2023-11-14T22:13:20.123456789Z");
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "2000-02-29T00:00:00.000000000Z"
    );
    // Before the epoch is clamped rather than wrapped.
    assert_eq!(
        rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
        "1970-01-01T00:00:00.000000000Z"
    );
}

#[test]
fn calendar_conversion_agrees_with_httpdate() {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Every third day for 300 years, at a different time of day each.
    for day in (0..365 * 300u64).step_by(3) {
        let secs = day * 86_400 + (day * 7_919) % 86_400;
        let time = UNIX_EPOCH + Duration::from_secs(secs);
        let t = Civil::from(time);
        let mine = format!(
            "{:02} {} {:04} {:02}:{:02}:{:02}",
            t.day,
            MONTHS[(t.month - 1) as usize],
            t.year,
            t.hour,
            t.minute,
            t.second
        );
        // "Tue, 14 Nov 2023 22:13:20 GMT"
        let reference = httpdate::fmt_http_date(time);
        assert_eq!(&reference[5..25], mine, "{secs}");
    }
}

// --- OTLP ---

fn attribute<'a>(log: &'a LogRecord, key: &str) -> Option<&'a AnyValueKind> {
    log.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

#[test]
fn otlp_record_carries_trace_context_time_and_body() {
    let policy = policy();
    let record = record();
    let log = policy.otlp(&record);
    assert_eq!(log.trace_id.len(), 16);
    assert_eq!(log.span_id.len(), 8);
    assert_eq!(log.trace_id.first(), Some(&0x4b));
    assert_eq!(log.span_id.last(), Some(&0xb7));
    assert_eq!(log.flags, 1);
    assert_eq!(log.time_unix_nano, 1_700_000_000_123_456_789);
    assert!(log.observed_time_unix_nano >= log.time_unix_nano);
    let body = log.body.as_ref().and_then(|body| body.value.as_ref());
    assert_eq!(body, Some(&AnyValueKind::StringValue(policy.json(&record))));
}

#[test]
fn otlp_record_without_trace_or_unsampled() {
    let mut record = record();
    record.sampled = false;
    assert_eq!(policy().otlp(&record).flags, 0);
    record.trace_id = None;
    record.span_id = None;
    record.sampled = true;
    let log = policy().otlp(&record);
    assert!(log.trace_id.is_empty());
    assert!(log.span_id.is_empty());
    assert_eq!(log.flags, 0);
}

#[test]
fn otlp_severity_follows_the_downstream_status() {
    for (status, number, text) in [
        (200, 9, "INFO"),
        (302, 9, "INFO"),
        (404, 13, "WARN"),
        (499, 13, "WARN"),
        (500, 17, "ERROR"),
        (503, 17, "ERROR"),
    ] {
        let mut record = record();
        record.downstream_status = status;
        let log = policy().otlp(&record);
        assert_eq!(log.severity_number, number, "{status}");
        assert_eq!(log.severity_text, text, "{status}");
    }
}

#[test]
fn otlp_attributes_are_typed_and_follow_the_selection() {
    let mut config = config();
    config.fields.general.names = BTreeMap::from([
        ("ClientAddr".to_owned(), FieldMode::Drop),
        ("trace_id".to_owned(), FieldMode::Drop),
    ]);
    let policy = AccessLogPolicy::new(&config);
    let mut record = record();
    record.request_headers.push((
        HeaderName::from_static("authorization"),
        CapturedValue::Redacted,
    ));
    let log = policy.otlp(&record);

    assert_eq!(
        attribute(&log, "Duration"),
        Some(&AnyValueKind::IntValue(12_500_000))
    );
    assert_eq!(
        attribute(&log, "DownstreamStatus"),
        Some(&AnyValueKind::IntValue(200))
    );
    assert_eq!(
        attribute(&log, "RequestMethod"),
        Some(&AnyValueKind::StringValue("GET".into()))
    );
    assert_eq!(
        attribute(&log, "request_Authorization"),
        Some(&AnyValueKind::StringValue("REDACTED".into()))
    );
    // Carried by the record's own fields, not as attributes.
    for native in ["StartUTC", "trace_id", "span_id"] {
        assert!(attribute(&log, native).is_none(), "{native}");
    }
    assert!(attribute(&log, "ClientAddr").is_none());
    // A dropped trace_id leaves the record's field empty too.
    assert!(log.trace_id.is_empty());
    assert_eq!(log.span_id.len(), 8);
}

// --- writer ---

fn file_config(path: &std::path::Path, format: AccessLogFormat) -> AccessLog {
    AccessLog {
        format,
        file_path: Some(path.to_owned()),
        buffer_size: 1024,
        ..config()
    }
}

#[test]
fn writer_appends_one_json_line_per_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The directory is created when missing.
    let path = dir.path().join("logs").join("access.log");
    let (logger, writer) =
        AccessLogger::start(&file_config(&path, AccessLogFormat::Json), None).expect("start");
    const N: u64 = 200;
    for _ in 0..N {
        logger.log(record());
    }
    assert!(writer.shutdown(Duration::from_secs(5)));

    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, N);
    for (index, line) in lines.iter().enumerate() {
        let value: Value = serde_json::from_str(line).expect("valid JSON");
        assert_eq!(value["RequestCount"], index as u64 + 1);
        assert_eq!(value["RouterName"], "web-api@file");
    }
    let stats = logger.stats();
    assert_eq!(stats.logged, N);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.write_errors, 0);
}

#[test]
fn writer_keeps_existing_lines_and_writes_common_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    std::fs::write(&path, "earlier line\n").expect("write");
    let (logger, writer) =
        AccessLogger::start(&file_config(&path, AccessLogFormat::Common), None).expect("start");
    logger.log(record());
    logger.log(record());
    assert!(writer.shutdown(Duration::from_secs(5)));

    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "earlier line");
    assert!(lines[1].starts_with("192.0.2.10 - - [14/Nov/2023:22:13:20 +0000]"));
    assert!(lines[2].contains("\" 2 \"web-api@file\""), "{}", lines[2]);
}

#[test]
fn writer_flushes_lines_while_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let (logger, writer) =
        AccessLogger::start(&file_config(&path, AccessLogFormat::Json), None).expect("start");
    logger.log(record());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&path).map_or(true, |text| text.lines().count() < 1) {
        assert!(std::time::Instant::now() < deadline, "line never flushed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(writer.shutdown(Duration::from_secs(5)));
}

#[test]
fn a_file_that_cannot_be_opened_fails_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory is not a file.
    let config = file_config(dir.path(), AccessLogFormat::Json);
    assert!(AccessLogger::start(&config, None).is_err());
}

#[test]
fn a_full_queue_drops_and_counts() {
    // No thread drains this logger.
    let logger = AccessLogger::new(policy(), 1);
    logger.log(record());
    logger.log(record());
    logger.log(record());
    let stats = logger.stats();
    assert_eq!(stats.dropped, 2);
    assert_eq!(stats.logged, 0);
}

#[test]
fn stats_serialize_in_camel_case() {
    let logger = AccessLogger::new(policy(), 1);
    let value = serde_json::to_value(logger.stats()).expect("serialize");
    assert_eq!(
        value,
        serde_json::json!({"logged": 0, "dropped": 0, "writeErrors": 0})
    );
}
