#![allow(clippy::unwrap_used)] // panicking on a broken fixture is what a test should do

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn ctx(trace_state: &str) -> SpanContext {
    SpanContext::new(
        TraceId::from_hex(TRACE).unwrap(),
        SpanId::from_hex(PARENT).unwrap(),
        TraceFlags::SAMPLED,
        true,
        trace_state.parse().unwrap(),
    )
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

fn values<'a>(map: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
    map.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------- traceparent

#[test]
fn traceparent_table() {
    use InvalidContext::*;
    let upper_trace = VALID.replace("4bf92f", "4BF92F");
    let upper_parent = VALID.replace("00f067aa", "00F067AA");
    let zero_trace = format!("00-{}-{PARENT}-01", "0".repeat(32));
    let zero_parent = format!("00-{TRACE}-{}-01", "0".repeat(16));
    let zero_both = format!("00-{}-{}-01", "0".repeat(32), "0".repeat(16));
    let non_ascii = VALID.replace("4736", "47é");
    let long_00 = format!("{VALID}-{}", "a".repeat(10_000));
    let long_future = format!("cc{}-{}", &VALID[2..], "x".repeat(10_000));

    // (case, input, Ok(sampled) or the rejection)
    let cases: Vec<(&str, String, Result<bool, InvalidContext>)> = vec![
        ("sampled", VALID.into(), Ok(true)),
        ("not sampled", VALID.replace("-01", "-00"), Ok(false)),
        (
            "unknown flag bits dropped",
            VALID.replace("-01", "-09"),
            Ok(true),
        ),
        ("all flags set", VALID.replace("-01", "-ff"), Ok(true)),
        (
            "random-trace-id flag only",
            VALID.replace("-01", "-02"),
            Ok(false),
        ),
        ("future version", VALID.replace("00-4b", "cc-4b"), Ok(true)),
        (
            "future version, extra fields",
            format!("cc{}-what-the-future-will-be-like", &VALID[2..]),
            Ok(true),
        ),
        ("future version, very long", long_future, Ok(true)),
        (
            "future version, no '-' before extra",
            format!("cc{}.future", &VALID[2..]),
            Err(MissingDelimiter("trace-flags")),
        ),
        (
            "future version, long trace-id",
            format!("cc-{TRACE}a-{PARENT}-01"),
            Err(MissingDelimiter("trace-id")),
        ),
        (
            "version 00 with extra field",
            format!("{VALID}-extra"),
            Err(Version00Length(61)),
        ),
        (
            "version 00 with trailing dot",
            format!("{VALID}."),
            Err(Version00Length(56)),
        ),
        (
            "version 00 very long",
            long_00,
            Err(Version00Length(55 + 1 + 10_000)),
        ),
        (
            "version ff",
            VALID.replace("00-4b", "ff-4b"),
            Err(ForbiddenVersion),
        ),
        (
            "uppercase version",
            VALID.replace("00-4b", "0A-4b"),
            Err(NotLowercaseHex("version")),
        ),
        (
            "non-hex version",
            VALID.replace("00-4b", ".0-4b"),
            Err(NotLowercaseHex("version")),
        ),
        (
            "three-digit version",
            format!("0{VALID}"),
            Err(MissingDelimiter("version")),
        ),
        (
            "wrong delimiter",
            VALID.replacen('-', "_", 1),
            Err(MissingDelimiter("version")),
        ),
        (
            "uppercase trace-id",
            upper_trace,
            Err(NotLowercaseHex("trace-id")),
        ),
        (
            "uppercase parent-id",
            upper_parent,
            Err(NotLowercaseHex("parent-id")),
        ),
        (
            "uppercase flags",
            VALID.replace("-01", "-0A"),
            Err(NotLowercaseHex("trace-flags")),
        ),
        (
            "non-hex trace-id",
            VALID.replace("4bf9", "4bg9"),
            Err(NotLowercaseHex("trace-id")),
        ),
        (
            "non-hex parent-id",
            VALID.replace("00f0", "00z0"),
            Err(NotLowercaseHex("parent-id")),
        ),
        (
            "non-hex flags",
            VALID.replace("-01", "-0."),
            Err(NotLowercaseHex("trace-flags")),
        ),
        (
            "non-ASCII in trace-id",
            non_ascii,
            Err(NotLowercaseHex("trace-id")),
        ),
        ("zero trace-id", zero_trace, Err(ZeroTraceId)),
        ("zero parent-id", zero_parent, Err(ZeroParentId)),
        ("both ids zero", zero_both, Err(ZeroTraceId)),
        (
            "short trace-id",
            VALID.replace("4bf9", "4bf"),
            Err(TooShort(54)),
        ),
        (
            "long trace-id",
            VALID.replace("4bf9", "4bf90"),
            Err(Version00Length(56)),
        ),
        (
            "short parent-id",
            VALID.replace("00f0", "00f"),
            Err(TooShort(54)),
        ),
        (
            "one-digit flags",
            VALID.replace("-01", "-1"),
            Err(TooShort(54)),
        ),
        (
            "three-digit flags",
            VALID.replace("-01", "-001"),
            Err(Version00Length(56)),
        ),
        ("empty", "".into(), Err(Empty)),
        ("one char", "0".into(), Err(TooShort(1))),
        ("version only", "00".into(), Err(TooShort(2))),
        ("version and dash", "00-".into(), Err(TooShort(3))),
        // OWS is HTTP framing, not part of the value: extract() trims it, the parser does not.
        (
            "leading space",
            format!(" {VALID}"),
            Err(NotLowercaseHex("version")),
        ),
        (
            "trailing space",
            format!("{VALID} "),
            Err(Version00Length(56)),
        ),
        (
            "tab inside",
            VALID.replace("-01", "\t01"),
            Err(MissingDelimiter("parent-id")),
        ),
    ];

    for (case, input, expected) in cases {
        let got = parse_traceparent(&input);
        match (&got, &expected) {
            (Ok(ctx), Ok(_)) => {
                assert!(ctx.is_valid() && ctx.is_remote(), "{case}");
                assert_eq!(ctx.trace_id().to_string(), TRACE, "{case}");
                assert_eq!(ctx.span_id().to_string(), PARENT, "{case}");
                // Only the sampled bit survives.
                assert_eq!(ctx.trace_flags().to_u8() & !1, 0, "{case}");
                assert_eq!(Ok(ctx.is_sampled()), expected, "{case}");
            }
            (Err(err), Err(want)) => assert_eq!(err, want, "{case}: {err}"),
            _ => panic!("{case}: input {input:?} gave {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn invalid_context_explains_in_words() {
    let err = parse_traceparent(&VALID.replace("4bf9", "4BF9")).unwrap_err();
    assert_eq!(err.to_string(), "traceparent trace-id is not lowercase hex");
}

#[test]
fn format_roundtrips_and_masks_flags() {
    let sampled = ctx("");
    assert_eq!(format_traceparent(&sampled), VALID);
    assert_eq!(parse_traceparent(VALID).unwrap(), sampled);

    let odd_flags = SpanContext::new(
        sampled.trace_id(),
        sampled.span_id(),
        TraceFlags::new(0xfe),
        false,
        TraceState::NONE,
    );
    assert_eq!(
        format_traceparent(&odd_flags),
        VALID.replace("-01", "-00"),
        "undefined flag bits are never sent"
    );
}

// ----------------------------------------------------------------- tracestate

fn ts(values: &[&str]) -> String {
    parse_tracestate(values).header()
}

fn member(key: &str, len: usize) -> String {
    format!("{key}={}", "v".repeat(len - key.len() - 1))
}

#[test]
fn tracestate_table() {
    let key_256 = "k".repeat(256);
    let key_257 = "k".repeat(257);
    let value_256 = "v".repeat(256);
    let value_257 = "v".repeat(257);
    let tenant_241 = format!("{}@sys", "t".repeat(241));
    let tenant_242 = format!("{}@sys", "t".repeat(242));

    let (key_limit, value_limit, tenant_limit) = (
        format!("{key_256}=1,{key_257}=2"),
        format!("a={value_256},b={value_257}"),
        format!("{tenant_241}=1,{tenant_242}=2"),
    );
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "spec example",
            vec!["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
        ),
        ("absent", vec![], String::new()),
        ("empty header", vec![""], String::new()),
        (
            "OWS and empty members",
            vec![" \t, foo=1 ,\t,bar=2,,"],
            "foo=1,bar=2".into(),
        ),
        (
            "multiple headers combined in order",
            vec!["foo=1", "bar=2,foo=3", "", "baz=4"],
            "foo=1,bar=2,baz=4".into(),
        ),
        (
            "duplicate keeps first",
            vec!["foo=1,bar=2,foo=3"],
            "foo=1,bar=2".into(),
        ),
        (
            "invalid members dropped one by one",
            vec!["a=1,B=2,c=3", "d=x,e", "f=4"],
            "a=1,c=3,d=x,f=4".into(),
        ),
        ("key length limit", vec![&key_limit], format!("{key_256}=1")),
        (
            "value length limit",
            vec![&value_limit],
            format!("a={value_256}"),
        ),
        (
            "tenant length limit",
            vec![&tenant_limit],
            format!("{tenant_241}=1"),
        ),
        // 14 characters is valid W3C, but OpenTelemetry's TraceState refuses it:
        // only that member is lost, not the whole list.
        (
            "14-char system-id",
            vec!["t@abcdefghijklmn=1,foo=2"],
            "foo=2".into(),
        ),
    ];

    for (case, input, expected) in cases {
        assert_eq!(ts(&input), expected, "{case}");
    }
}

#[test]
fn tracestate_member_grammar() {
    // (list-member, valid): each is tried between two valid members.
    let cases = [
        ("simple=1", true),
        ("a-b_c*d/e=1", true),
        ("t@sys=1", true),
        ("1tenant@sys=1", true),
        ("t@s-y_s*/9=1", true),
        ("k= leading spaces kept", true),
        ("k=~!\"#$%&'()*+-./:;<>?@[\\]^_`{|}", true),
        ("Upper=1", false),
        ("1digit=1", false),
        ("a.b=1", false),
        ("a+b=1", false),
        ("t@1sys=1", false),
        ("@sys=1", false),
        ("t@=1", false),
        ("a@b@c=1", false),
        ("t@abcdefghijklmno=1", false),
        ("k y=1", false),
        ("k =1", false),
        ("caf\u{e9}=1", false),
        ("nokey", false),
        ("=1", false),
        ("empty=", false),
        ("k=v=w", false),
        ("k=a\tb", false),
        ("k=caf\u{e9}", false),
    ];
    for (member, valid) in cases {
        let expected = if valid {
            format!("first=1,{member},last=1")
        } else {
            "first=1,last=1".to_string()
        };
        assert_eq!(ts(&["first=1", member, "last=1"]), expected, "{member:?}");
    }
    // Trailing OWS is not part of the value.
    assert_eq!(ts(&["a=x ,b=y\t"]), "a=x,b=y");
}

#[test]
fn tracestate_keeps_at_most_32_members() {
    let many: Vec<String> = (0..40).map(|i| format!("k{i}={i}")).collect();
    let parsed = parse_tracestate(&[&many.join(",")]);
    let keys: Vec<&str> = parsed.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 32);
    assert_eq!(keys.first(), Some(&"k0"));
    assert_eq!(keys.last(), Some(&"k31"));

    // Invalid and duplicate members do not use up the 32 slots.
    let mut noisy = vec!["BAD=1".to_string(), "k0=dup".to_string()];
    noisy.extend(many.iter().take(32).cloned());
    noisy.insert(5, "k1=dup".into());
    let parsed = parse_tracestate(&[&noisy.join(",")]);
    assert_eq!(parsed.into_iter().count(), 32);
    assert_eq!(parsed.get("k0"), Some("dup"), "first occurrence wins");
    assert_eq!(parsed.get("k1"), Some("1"));
    assert_eq!(parsed.get("k31"), Some("31"));
}

#[test]
fn tracestate_truncation_order() {
    let small: Vec<String> = (0..14).map(|i| member(&format!("s{i}"), 43)).collect();
    let large = |i: usize, len: usize| member(&format!("l{i}"), len);

    // Over 512: the large entries go first, last one first.
    let input = [
        small[0].clone(),
        large(0, 203),
        small[1..5].join(","),
        large(1, 203),
        small[5..10].join(","),
    ];
    assert_eq!(ts(&[&input.join(",")]), small[..10].join(","));

    // Only as many large entries as needed are removed.
    let input = [
        large(0, 140),
        small[..2].join(","),
        large(1, 140),
        small[2..5].join(","),
        large(2, 140),
    ];
    let expected = [
        large(0, 140),
        small[..2].join(","),
        large(1, 140),
        small[2..5].join(","),
    ]
    .join(",");
    assert_eq!(expected.len(), 501);
    assert_eq!(ts(&[&input.join(",")]), expected);

    // No large entries left: drop from the end until it fits.
    let all = small.join(",");
    assert_eq!(all.len(), 615);
    assert_eq!(ts(&[&all]), small[..11].join(","));

    // Exactly 512 is kept whole, 513 is not.
    let fits = [member("a", 200), member("b", 200), member("c", 110)].join(",");
    assert_eq!(fits.len(), 512);
    assert_eq!(ts(&[&fits]), fits);
    let over = [member("a", 200), member("b", 200), member("c", 111)].join(",");
    assert_eq!(ts(&[&over]), [member("a", 200), member("c", 111)].join(","));

    // Lengths are counted on the combined value, across headers.
    let halves = [small[..7].join(","), small[7..].join(",")];
    let split: Vec<&str> = halves.iter().map(String::as_str).collect();
    assert_eq!(ts(&split), small[..11].join(","));
}

// -------------------------------------------------------------------- extract

#[test]
fn extract_valid_with_tracestate() {
    let map = headers(&[
        ("traceparent", VALID.as_bytes()),
        ("tracestate", b"rojo=00f067aa0ba902b7"),
        ("tracestate", b"congo=t61rcWkgMzE,BAD=1"),
    ]);
    let got = extract(&map);
    assert_eq!(got.invalid, None);
    assert!(!got.duplicates);
    let context = got.context.unwrap();
    assert!(context.is_remote() && context.is_sampled());
    assert_eq!(format_traceparent(&context), VALID);
    assert_eq!(
        context.trace_state().header(),
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    );
}

#[test]
fn extract_table() {
    use InvalidContext::*;
    let comma = format!("{VALID},{VALID}");
    let padded = format!(" \t{VALID}\t ");
    let bad_utf8 = [&VALID.as_bytes()[..20], b"\xff", &VALID.as_bytes()[21..]].concat();

    // (case, headers, context is valid, invalid, duplicates)
    let cases: Vec<(&str, HeaderMap, bool, Option<InvalidContext>, bool)> = vec![
        ("missing", headers(&[]), false, None, false),
        (
            "tracestate alone",
            headers(&[("tracestate", b"foo=1")]),
            false,
            None,
            false,
        ),
        (
            "valid",
            headers(&[("traceparent", VALID.as_bytes())]),
            true,
            None,
            false,
        ),
        (
            "header name in any case",
            headers(&[("TraceParent", VALID.as_bytes())]),
            true,
            None,
            false,
        ),
        (
            "OWS around the value",
            headers(&[("traceparent", padded.as_bytes())]),
            true,
            None,
            false,
        ),
        (
            "two identical headers",
            headers(&[
                ("traceparent", VALID.as_bytes()),
                ("traceparent", VALID.as_bytes()),
            ]),
            false,
            Some(Multiple),
            true,
        ),
        (
            "two different headers",
            headers(&[
                ("traceparent", VALID.as_bytes()),
                ("traceparent", VALID.replace("-01", "-00").as_bytes()),
            ]),
            false,
            Some(Multiple),
            true,
        ),
        (
            "comma-joined",
            headers(&[("traceparent", comma.as_bytes())]),
            false,
            Some(Multiple),
            true,
        ),
        (
            "not UTF-8",
            headers(&[("traceparent", &bad_utf8)]),
            false,
            Some(NotUtf8),
            false,
        ),
        (
            "empty",
            headers(&[("traceparent", b"")]),
            false,
            Some(Empty),
            false,
        ),
        (
            "malformed with tracestate",
            headers(&[("traceparent", b"00-xyz"), ("tracestate", b"foo=1")]),
            false,
            Some(TooShort(6)),
            false,
        ),
    ];

    for (case, map, valid, invalid, duplicates) in cases {
        let got = extract(&map);
        assert_eq!(got.context.is_some(), valid, "{case}");
        assert_eq!(got.invalid, invalid, "{case}");
        assert_eq!(got.duplicates, duplicates, "{case}");
    }
}

// --------------------------------------------------------------------- decide

#[test]
fn decide_table() {
    use TrustPolicy::*;
    let valid = extract(&headers(&[("traceparent", VALID.as_bytes())]));
    let invalid = extract(&headers(&[("traceparent", b"garbage")]));
    let missing = extract(&headers(&[]));
    let inbound = valid.context.clone();

    // (policy, extracted, parent, link, inbound_missing_or_invalid)
    let cases = [
        (Continue, &valid, inbound.clone(), None, false),
        (Continue, &invalid, None, None, true),
        (Continue, &missing, None, None, true),
        (NewAndLink, &valid, None, inbound.clone(), false),
        (NewAndLink, &invalid, None, None, true),
        (NewAndLink, &missing, None, None, true),
        (Ignore, &valid, None, None, false),
        (Ignore, &invalid, None, None, true),
        (Ignore, &missing, None, None, true),
    ];
    for (policy, extracted, parent, link, flag) in cases {
        let want = Decision {
            parent,
            link,
            inbound_missing_or_invalid: flag,
        };
        assert_eq!(
            decide(policy, extracted),
            want,
            "{policy:?} / {extracted:?}"
        );
    }
}

#[test]
fn trust_policy_config_names() {
    use serde::de::value::{Error, StrDeserializer};
    use serde::Deserialize;
    let parse = |s: &'static str| TrustPolicy::deserialize(StrDeserializer::<Error>::new(s));
    assert_eq!(TrustPolicy::default(), TrustPolicy::Continue);
    assert_eq!(parse("continue").unwrap(), TrustPolicy::Continue);
    assert_eq!(parse("new-and-link").unwrap(), TrustPolicy::NewAndLink);
    assert_eq!(parse("ignore").unwrap(), TrustPolicy::Ignore);
    assert!(parse("NewAndLink").is_err());
    assert!(parse("new_and_link").is_err());
}

// --------------------------------------------------------------------- inject

/// What a caller of [`outbound`] does to an outbound header map.
fn inject(map: &mut HeaderMap, ctx: &SpanContext) {
    map.remove(TRACEPARENT);
    map.remove(TRACESTATE);
    let headers = outbound(ctx);
    if let Some(value) = headers.traceparent {
        map.insert(TRACEPARENT, value);
    }
    if let Some(value) = headers.tracestate {
        map.insert(TRACESTATE, value);
    }
}

/// What a caller of [`baggage_is_valid`] does.
fn sanitize_baggage(map: &mut HeaderMap) {
    if !baggage_is_valid(map) {
        map.remove(BAGGAGE);
    }
}

#[test]
fn inject_leaves_exactly_one_traceparent() {
    let mut map = headers(&[
        ("traceparent", VALID.as_bytes()),
        (
            "traceparent",
            b"00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-00",
        ),
        ("tracestate", b"client=spoofed"),
        ("x-other", b"kept"),
    ]);
    let context = SpanContext::new(
        TraceId::from(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
        SpanId::from(0x0011_2233_4455_6677),
        TraceFlags::NOT_SAMPLED,
        false,
        "traverse=abc,congo=t61rcWkgMzE".parse().unwrap(),
    );
    inject(&mut map, &context);
    assert_eq!(values(&map, &TRACEPARENT), [format_traceparent(&context)]);
    assert_eq!(
        values(&map, &TRACEPARENT),
        ["00-0123456789abcdef0123456789abcdef-0011223344556677-00"]
    );
    assert_eq!(
        values(&map, &TRACESTATE),
        ["traverse=abc,congo=t61rcWkgMzE"]
    );
    assert_eq!(values(&map, &HeaderName::from_static("x-other")), ["kept"]);
}

#[test]
fn inject_tracestate_only_when_non_empty_and_valid() {
    let mut map = headers(&[("tracestate", b"client=1"), ("tracestate", b"client=2")]);
    inject(&mut map, &ctx(""));
    assert_eq!(values(&map, &TRACEPARENT), [VALID]);
    assert!(
        map.get(TRACESTATE).is_none(),
        "stale inbound tracestate removed"
    );

    // OpenTelemetry accepts a tab in a value; W3C does not, so it is not sent.
    let lenient = TraceState::from_key_value([("ok", "1"), ("bad", "a\tb")]).unwrap();
    let context = SpanContext::new(
        TraceId::from(1),
        SpanId::from(1),
        TraceFlags::SAMPLED,
        false,
        lenient,
    );
    inject(&mut map, &context);
    assert_eq!(values(&map, &TRACESTATE), ["ok=1"]);
}

#[test]
fn inject_refuses_invalid_context() {
    let mut map = headers(&[("traceparent", VALID.as_bytes()), ("tracestate", b"a=1")]);
    inject(&mut map, &SpanContext::NONE);
    assert!(map.get(TRACEPARENT).is_none());
    assert!(map.get(TRACESTATE).is_none());
}

// -------------------------------------------------------------------- baggage

#[test]
fn baggage_table() {
    let at_size = format!("k={}", "v".repeat(8190));
    let over_size = format!("k={}", "v".repeat(8191));
    let half = format!("k={}", "v".repeat(4094));
    let members = |n: usize| -> String {
        (0..n)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (m64, m65, m40, m25) = (members(64), members(65), members(40), members(25));

    // (case, header values, kept)
    let cases: Vec<(&str, Vec<&[u8]>, bool)> = vec![
        ("spec example", vec![b"userId=alice,serverNode=DF%2028,isProduction=false"], true),
        ("properties and OWS", vec![b"key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"], true),
        ("split across headers", vec![b"userId=alice", b"serverNode=DF%2028,isProduction=false"], true),
        ("'=' inside value", vec![b"k=a=b"], true),
        ("empty value", vec![b"k="], true),
        ("empty list elements ignored", vec![b"a=1,,b=2, ,"], true),
        ("64 members", vec![m64.as_bytes()], true),
        ("8192 bytes", vec![at_size.as_bytes()], true),
        ("no '='", vec![b"justakey"], false),
        ("empty key", vec![b"=v"], false),
        ("space in key", vec![b"k y=1"], false),
        ("space in value", vec![b"k=a b"], false),
        ("quote in value", vec![b"k=\"q\""], false),
        ("backslash in value", vec![b"k=a\\b"], false),
        ("empty property", vec![b"k=v;"], false),
        ("bad property key", vec![b"k=v;p q"], false),
        ("non-UTF-8", vec![b"k=\xff"], false),
        ("one bad header drops all", vec![b"good=1", b"bad"], false),
        ("65 members", vec![m65.as_bytes()], false),
        ("65 members across headers", vec![m40.as_bytes(), m25.as_bytes()], false),
        ("8193 bytes", vec![over_size.as_bytes()], false),
        ("8193 bytes with the joining comma", vec![half.as_bytes(), half.as_bytes()], false),
    ];

    for (case, input, kept) in cases {
        let mut map = HeaderMap::new();
        for value in &input {
            map.append(BAGGAGE, HeaderValue::from_bytes(value).unwrap());
        }
        map.insert("x-other", HeaderValue::from_static("kept"));
        let before = map.clone();
        sanitize_baggage(&mut map);
        if kept {
            assert_eq!(map, before, "{case}");
        } else {
            assert!(map.get(BAGGAGE).is_none(), "{case}");
            assert_eq!(map.len(), 1, "{case}: other headers untouched");
        }
    }

    let mut empty = HeaderMap::new();
    sanitize_baggage(&mut empty);
    assert!(empty.is_empty());
}

// ----------------------------------------------------------------------- fuzz

/// Deterministic xorshift64 so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Mostly bytes that matter to the grammars, so inputs get past the first check.
    fn bytes(&mut self) -> Vec<u8> {
        const INTERESTING: &[u8] = b"0123456789abcdefABCDEF-=,;@ \t*/_xyz%\"\\";
        let mut out = if self.below(2) == 0 {
            VALID.as_bytes().to_vec()
        } else {
            Vec::new()
        };
        let len = if self.below(10) == 0 {
            self.below(2000)
        } else {
            self.below(80)
        };
        for _ in 0..len {
            let byte = if self.below(4) == 0 {
                self.next() as u8
            } else {
                INTERESTING[self.below(INTERESTING.len())]
            };
            if !out.is_empty() && self.below(3) == 0 {
                let at = self.below(out.len());
                out[at] = byte;
            } else {
                out.push(byte);
            }
        }
        out
    }
}

#[test]
fn fuzz_never_panics() {
    let mut rng = XorShift(0x5eed_cafe_f00d_d00d);
    let mut accepted = 0;
    for _ in 0..10_000 {
        let (a, b) = (rng.bytes(), rng.bytes());
        let (sa, sb) = (String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));

        if let Ok(ctx) = parse_traceparent(&sa) {
            accepted += 1;
            assert!(ctx.is_valid());
            assert_eq!(parse_traceparent(&format_traceparent(&ctx)), Ok(ctx));
        }

        let state = parse_tracestate(&[&sa, &sb]);
        let header = state.header();
        assert!(header.len() <= 512, "{header:?}");
        assert!(state.into_iter().count() <= 32);
        assert_eq!(ts(&[&header]), header, "normalised output is stable");

        let mut map = HeaderMap::new();
        for (name, raw) in [(TRACEPARENT, &a), (TRACESTATE, &b), (BAGGAGE, &a)] {
            // Control characters cannot be in a HeaderValue; those inputs stop at the parsers above.
            if let Ok(value) = HeaderValue::from_bytes(raw) {
                map.append(name, value);
            }
        }
        let extracted = extract(&map);
        assert!(extracted.context.is_none() || extracted.invalid.is_none());
        sanitize_baggage(&mut map);
        if let Some(ctx) = decide(TrustPolicy::Continue, &extracted).parent {
            inject(&mut map, &ctx);
            assert_eq!(map.get_all(TRACEPARENT).iter().count(), 1);
        }
    }
    assert!(accepted > 0, "the generator should reach valid inputs too");
}
