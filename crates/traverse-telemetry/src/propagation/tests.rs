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
                // Only the sampled and random bits survive.
                assert_eq!(ctx.trace_flags().to_u8() & !3, 0, "{case}");
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
        VALID.replace("-01", "-02"),
        "undefined flag bits are never sent, random is"
    );
}

#[test]
fn flags_table() {
    // (flags received, flags kept and forwarded): Level 2 accepts any byte, keeps
    // sampled (0x01) and random (0x02).
    let cases = [
        ("00", "00"),
        ("01", "01"),
        ("02", "02"),
        ("03", "03"),
        ("09", "01"),
        ("fe", "02"),
        ("ff", "03"),
    ];
    for (received, forwarded) in cases {
        let ctx = parse_traceparent(&VALID.replace("-01", &format!("-{received}"))).unwrap();
        assert_eq!(
            format_traceparent(&ctx),
            VALID.replace("-01", &format!("-{forwarded}")),
            "{received}"
        );
        assert_eq!(
            ctx.is_sampled(),
            forwarded.ends_with('1') || forwarded.ends_with('3')
        );
        let random = ctx.trace_flags() & RANDOM == RANDOM;
        assert_eq!(random, forwarded == "02" || forwarded == "03", "{received}");
    }
}

// ----------------------------------------------------------------- tracestate

/// What `values` forward as: the list, `""` for none, or [`DISCARDED`].
fn ts(values: &[&str]) -> String {
    match parse_tracestate(values) {
        Ok(list) => list.map(Cow::into_owned).unwrap_or_default(),
        Err(_) => DISCARDED.to_owned(),
    }
}

const DISCARDED: &str = "<discarded>";

fn member(key: &str, len: usize) -> String {
    format!("{key}={}", "v".repeat(len - key.len() - 1))
}

#[test]
fn tracestate_table() {
    let key_256 = "k".repeat(256);
    let key_257 = "k".repeat(257);
    let value_256 = "v".repeat(256);
    let value_257 = "v".repeat(257);
    let (key_ok, key_over) = (format!("{key_256}=1"), format!("a=1,{key_257}=2"));
    let (value_ok, value_over) = (format!("a={value_256}"), format!("a=1,b={value_257}"));

    // (spec rule, header lines, what is forwarded)
    let cases: Vec<(&str, Vec<&str>, String)> = vec![
        (
            "spec example",
            vec!["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
            "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
        ),
        ("absent", vec![], String::new()),
        ("empty header", vec![""], String::new()),
        ("only empty members", vec![" , ,\t"], String::new()),
        (
            "OWS and empty members allowed, forwarded unchanged",
            vec!["foo=1 ,\t,bar=2,, baz=3"],
            "foo=1 ,\t,bar=2,, baz=3".into(),
        ),
        (
            "lines combined in order",
            vec!["foo=1", "bar=2,baz=3", "", "qux=4"],
            "foo=1,bar=2,baz=3,qux=4".into(),
        ),
        (
            "duplicate key: the first wins",
            vec!["foo=1,bar=2,foo=3"],
            "foo=1,bar=2".into(),
        ),
        (
            "duplicate across lines",
            vec!["foo=1", "foo=2, bar=3"],
            "foo=1,bar=3".into(),
        ),
        ("key of 256 characters", vec![&key_ok], key_ok.clone()),
        ("key over 256 characters", vec![&key_over], DISCARDED.into()),
        ("value of 256 characters", vec![&value_ok], value_ok.clone()),
        (
            "value over 256 characters",
            vec![&value_over],
            DISCARDED.into(),
        ),
        (
            "one bad member discards the whole list",
            vec!["a=1,B=2,c=3"],
            DISCARDED.into(),
        ),
        (
            "a bad member on another line discards every line",
            vec!["a=1", "c=3,@foo=1"],
            DISCARDED.into(),
        ),
        ("member without '='", vec!["a=1,e"], DISCARDED.into()),
        (
            "Level 2 keys OpenTelemetry refuses",
            vec!["t@abcdefghijklmnop=1,foo@@bar=2,foo@=3"],
            "t@abcdefghijklmnop=1,foo@@bar=2,foo@=3".into(),
        ),
    ];
    for (case, input, expected) in cases {
        assert_eq!(ts(&input), expected, "{case}");
    }
}

#[test]
fn tracestate_member_grammar() {
    // (list-member, valid): a list holding it is forwarded whole, or discarded whole.
    let cases = [
        ("simple=1", true),
        ("a-b_c*d/e=1", true),
        ("t@sys=1", true),
        ("1tenant@sys=1", true),
        ("1digit=1", true),
        ("t@1sys=1", true),
        ("t@s-y_s*/9=1", true),
        ("foo@=1", true),
        ("foo@@bar=1", true),
        ("a@b@c=1", true),
        ("t@abcdefghijklmno=1", true),
        ("k= leading spaces kept", true),
        ("k=~!\"#$%&'()*+-./:;<>?@[\\]^_`{|}", true),
        ("Upper=1", false),
        ("a.b=1", false),
        ("a+b=1", false),
        ("@sys=1", false),
        ("@foo=1", false),
        ("_k=1", false),
        ("k y=1", false),
        ("k =1", false),
        ("caf\u{e9}=1", false),
        ("nokey", false),
        ("=1", false),
        ("foo=", false),
        ("foo=bar=baz", false),
        ("k=a\tb", false),
        ("k=caf\u{e9}", false),
    ];
    for (member, valid) in cases {
        let expected = if valid {
            format!("first=1,{member},last=1")
        } else {
            DISCARDED.to_string()
        };
        assert_eq!(ts(&["first=1", member, "last=1"]), expected, "{member:?}");
    }
    // Trailing OWS is not part of the value: allowed, and forwarded as received.
    assert_eq!(ts(&["a=x ,b=y\t"]), "a=x ,b=y\t");
}

#[test]
fn tracestate_32_members_and_33() {
    let list = |n: usize| -> Vec<String> { (0..n).map(|i| format!("k{i}={i}")).collect() };
    let (m32, m33) = (list(32), list(33));
    // (case, header lines, forwarded whole)
    let across = |members: &[String], lines: usize| -> Vec<String> {
        members
            .chunks(members.len().div_ceil(lines))
            .map(|c| c.join(","))
            .collect()
    };
    let cases: Vec<(&str, Vec<String>, bool)> = vec![
        ("32 on one line", across(&m32, 1), true),
        ("32 across 3 lines", across(&m32, 3), true),
        (
            "32 with empty members",
            vec![format!(",{},,", m32.join(",,"))],
            true,
        ),
        ("33 on one line", across(&m33, 1), false),
        ("33 across 4 lines", across(&m33, 4), false),
        (
            "33 where one is a duplicate",
            vec![m32.join(","), "k0=again".into()],
            false,
        ),
    ];
    for (case, lines, whole) in cases {
        let values: Vec<&str> = lines.iter().map(String::as_str).collect();
        let got = parse_tracestate(&values);
        if whole {
            let got = got.unwrap().unwrap();
            let members: Vec<&str> = got.split(',').filter(|m| !m.is_empty()).collect();
            assert_eq!(members, m32, "{case}");
        } else {
            assert_eq!(got, Err(InvalidTraceState::TooManyMembers), "{case}");
        }
    }
}

#[test]
fn tracestate_errors_say_which_member() {
    assert_eq!(
        parse_tracestate(&["a=1", ",b=2,C=3"]),
        Err(InvalidTraceState::Member(3))
    );
    assert_eq!(
        InvalidTraceState::Member(3).to_string(),
        "tracestate list-member 3 is malformed"
    );
}

#[test]
fn tracestate_forwarding_copies_nothing_when_it_can() {
    let line = "rojo=00f067aa0ba902b7";
    assert!(matches!(parse_tracestate(&[line]), Ok(Some(Cow::Borrowed(l))) if l == line));
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

#[test]
fn export_form_keeps_what_opentelemetry_represents() {
    let value = HeaderValue::from_static("a=1, t@abcdefghijklmnop=2,b=3");
    assert_eq!(export_trace_state(&value).header(), "a=1,b=3");
}

// -------------------------------------------------------------------- extract

#[test]
fn extract_valid_with_tracestate() {
    let map = headers(&[
        ("traceparent", VALID.as_bytes()),
        ("tracestate", b"rojo=00f067aa0ba902b7"),
        ("tracestate", b"congo=t61rcWkgMzE"),
    ]);
    let got = extract(&map);
    assert_eq!(got.invalid, None);
    assert!(!got.duplicates);
    let context = got.context.unwrap();
    assert!(context.is_remote() && context.is_sampled());
    assert_eq!(format_traceparent(&context), VALID);
    assert_eq!(
        got.tracestate.unwrap(),
        "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    );
    assert_eq!(got.tracestate_invalid, None);
}

#[test]
fn extract_tracestate_table() {
    /// (case, tracestate lines, forwarded, why discarded)
    type Case<'a> = (
        &'a str,
        Vec<&'a [u8]>,
        Option<&'a str>,
        Option<InvalidTraceState>,
    );
    let cases: Vec<Case> = vec![
        ("absent", vec![], None, None),
        (
            "one line, as received",
            vec![b"a=1 , b=2"],
            Some("a=1 , b=2"),
            None,
        ),
        (
            "two lines joined",
            vec![b"a=1", b"b=2"],
            Some("a=1,b=2"),
            None,
        ),
        (
            "one bad line discards all",
            vec![b"a=1", b"BAD=2"],
            None,
            Some(InvalidTraceState::Member(2)),
        ),
        (
            "not UTF-8",
            vec![b"a=1", b"b=\xff"],
            None,
            Some(InvalidTraceState::NotUtf8),
        ),
    ];
    for (case, lines, forwarded, invalid) in cases {
        let mut pairs: Vec<(&str, &[u8])> = vec![("traceparent", VALID.as_bytes())];
        pairs.extend(lines.iter().map(|l| ("tracestate", *l)));
        let got = extract(&headers(&pairs));
        assert!(got.context.is_some(), "{case}");
        assert_eq!(
            got.tracestate.as_ref().map(|v| v.to_str().unwrap()),
            forwarded,
            "{case}"
        );
        assert_eq!(got.tracestate_invalid, invalid, "{case}");
    }
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
    let with_state = extract(&headers(&[
        ("traceparent", VALID.as_bytes()),
        ("tracestate", b"a=1"),
    ]));
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
            tracestate: None,
            link,
            inbound_missing_or_invalid: flag,
        };
        assert_eq!(
            decide(policy, extracted),
            want,
            "{policy:?} / {extracted:?}"
        );
    }
    // The caller's tracestate goes with its context, and only when it is continued.
    let continued = decide(Continue, &with_state);
    assert_eq!(continued.tracestate.unwrap(), "a=1");
    assert_eq!(decide(NewAndLink, &with_state).tracestate, None);
    assert_eq!(decide(Ignore, &with_state).tracestate, None);
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
fn inject(map: &mut HeaderMap, ctx: &SpanContext, tracestate: Option<&HeaderValue>) {
    map.remove(TRACEPARENT);
    map.remove(TRACESTATE);
    let headers = outbound(ctx, tracestate);
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
        TraceState::NONE,
    );
    let state = HeaderValue::from_static("traverse=abc,congo=t61rcWkgMzE");
    inject(&mut map, &context, Some(&state));
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
fn inject_forwards_the_validated_tracestate_unchanged() {
    let mut map = headers(&[("tracestate", b"client=1"), ("tracestate", b"client=2")]);
    inject(&mut map, &ctx(""), None);
    assert_eq!(values(&map, &TRACEPARENT), [VALID]);
    assert!(
        map.get(TRACESTATE).is_none(),
        "stale inbound tracestate removed"
    );

    // Valid Level 2 keys that OpenTelemetry's TraceState refuses pass through as sent.
    let inbound = headers(&[
        ("traceparent", VALID.as_bytes()),
        ("tracestate", b"foo@@bar=1, t@abcdefghijklmnop=2,,z=3"),
    ]);
    let extracted = extract(&inbound);
    let context = extracted.context.clone().unwrap();
    inject(&mut map, &context, extracted.tracestate.as_ref());
    assert_eq!(
        values(&map, &TRACESTATE),
        ["foo@@bar=1, t@abcdefghijklmnop=2,,z=3"]
    );
}

#[test]
fn inject_refuses_invalid_context() {
    let mut map = headers(&[("traceparent", VALID.as_bytes()), ("tracestate", b"a=1")]);
    inject(
        &mut map,
        &SpanContext::NONE,
        Some(&HeaderValue::from_static("a=1")),
    );
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

        if let Ok(Some(list)) = parse_tracestate(&[&sa, &sb]) {
            assert!(list.len() <= 512, "{list:?}");
            assert!(list.split(',').filter(|m| !trim_ows(m).is_empty()).count() <= 32);
            assert_eq!(ts(&[&list]), list, "forwarded output is stable");
        }

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
            inject(&mut map, &ctx, extracted.tracestate.as_ref());
            assert_eq!(map.get_all(TRACEPARENT).iter().count(), 1);
        }
    }
    assert!(accepted > 0, "the generator should reach valid inputs too");
}
