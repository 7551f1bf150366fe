use proptest::prelude::*;

use super::*;

/// `serde_json`'s reading of `text`, the reference.
fn serde(text: &str) -> Option<IngestBatch> {
    serde_json::from_str::<IngestBatch>(text).ok()
}

/// Equal as batches, and every value equal bit for bit (`-0.0` is not `0.0`).
fn same(a: &IngestBatch, b: &IngestBatch) -> bool {
    let bits = |x: &IngestBatch| -> Vec<Option<u64>> {
        x.series.iter().flat_map(|s| s.points.iter().map(|p| p.value.map(f64::to_bits))).collect()
    };
    a == b && bits(a) == bits(b)
}

/// The invariant: declined, or read exactly as serde reads it.
fn check(text: &str) -> Result<Option<IngestBatch>, TestCaseError> {
    let fast = parse(text.as_bytes());
    if let Some(f) = &fast {
        let reference = serde(text);
        prop_assert!(reference.is_some(), "accepted what serde refuses: {text}");
        prop_assert!(same(f, reference.as_ref().expect("checked")), "read differently from serde: {text}");
    }
    Ok(fast)
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just(""), 2 => Just(" "), 1 => Just("\n  "), 1 => Just("\t"), 1 => Just("\r\n")]
}

/// Number texts: mostly the forms collectors write, some that must be declined.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (-1_000_000i64..1_000_000, 0u32..6).prop_map(|(k, e)| decimal(k, e)),
        2 => (0u64..1_000_000_000_000_000, 0u32..16).prop_map(|(k, e)| decimal(k as i64, e)),
        1 => any::<i32>().prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec![
            "0", "-0", "-0.0", "0.000", "1e3", "1E-2", "-2.5e+1", "12345678901234567", "123456789012345",
            "1.0000000000000001", "0.1", "0.30000000000000004", "01", "1.", ".5", "-", "+1", "1.5x", "9007199254740993",
        ])
        .prop_map(str::to_string),
    ]
}

/// `k / 10^e` written with exactly `e` digits after the point.
fn decimal(k: i64, e: u32) -> String {
    if e == 0 {
        return k.to_string();
    }
    let (sign, a) = if k < 0 { ("-", k.unsigned_abs()) } else { ("", k as u64) };
    let p = 10u64.pow(e);
    format!("{sign}{}.{:0w$}", a / p, a % p, w = e as usize)
}

fn string() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "\"cpu\"",
        "\"a b\"",
        "\"système\"",
        "\"\"",
        "\"q\\\"uote\"",
        "\"\\u0041\"",
        "\"tab\tin\"",
        "null",
        "7",
    ])
    .prop_map(str::to_string)
}

fn point() -> impl Strategy<Value = String> {
    let time = prop_oneof![
        8 => (1_700_000_000i64..1_700_100_000).prop_map(|t| t.to_string()),
        1 => (1_700_000_000i64..1_700_100_000).prop_map(|t| format!("{t}.0")),
        1 => number(),
    ];
    let value = prop_oneof![8 => number(), 1 => Just("null".to_string()), 1 => Just("\"1\"".to_string())];
    let flag = prop::sample::select(vec!["", "", "", ",true", ",false", ",null", ",1", ",true,false"])
        .prop_map(str::to_string);
    (time, value, flag, ws(), ws()).prop_map(|(t, v, f, a, b)| format!("[{a}{t},{b}{v}{f}{a}]"))
}

fn points() -> impl Strategy<Value = String> {
    (prop::collection::vec(point(), 0..40), ws()).prop_map(|(p, w)| format!("[{w}{}{w}]", p.join(&format!(",{w}"))))
}

fn labels() -> impl Strategy<Value = String> {
    prop::collection::vec((string(), string()), 0..3).prop_map(|kv| {
        let items: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", items.join(","))
    })
}

/// An object with some of `fields` (each `(key, value text)`), in a
/// shuffled order, sometimes with a field repeated or an unknown one.
fn object(fields: Vec<(&'static str, BoxedStrategy<String>)>) -> impl Strategy<Value = String> {
    let n = fields.len();
    let parts: Vec<_> = fields
        .into_iter()
        .map(|(k, v)| (prop::bool::weighted(0.8), v).prop_map(move |(on, v)| on.then(|| format!("\"{k}\":{v}"))))
        .collect();
    (parts, prop::collection::vec(any::<u32>(), n), 0u8..20, ws()).prop_map(|(parts, order, odd, w)| {
        let mut items: Vec<(u32, String)> = order.into_iter().zip(parts).filter_map(|(o, p)| Some((o, p?))).collect();
        items.sort();
        let mut items: Vec<String> = items.into_iter().map(|(_, p)| p).collect();
        match odd {
            0 if !items.is_empty() => items.push(items[0].clone()),
            1 => items.push("\"unknown\":1".into()),
            _ => {}
        }
        format!("{{{w}{}{w}}}", items.join(&format!(",{w}")))
    })
}

fn series() -> impl Strategy<Value = String> {
    let update_every = prop_oneof![Just("null".to_string()), (-2i64..120).prop_map(|u| u.to_string()), number()];
    object(vec![
        ("node", string().boxed()),
        ("context", string().boxed()),
        ("instance", string().boxed()),
        ("dimension", string().boxed()),
        ("units", string().boxed()),
        ("title", string().boxed()),
        ("chart_type", string().boxed()),
        ("update_every", update_every.boxed()),
        ("labels", labels().boxed()),
        ("points", points().boxed()),
    ])
}

fn node() -> impl Strategy<Value = String> {
    object(vec![
        ("id", string().boxed()),
        ("hostname", string().boxed()),
        ("machine_guid", string().boxed()),
        ("labels", labels().boxed()),
    ])
}

fn batch_text() -> impl Strategy<Value = String> {
    let list = |s: BoxedStrategy<String>| prop::collection::vec(s, 0..4).prop_map(|v| format!("[{}]", v.join(",")));
    (list(series().boxed()), list(node().boxed()), 0u8..4, ws()).prop_map(|(series, nodes, shape, w)| match shape {
        0 => format!("{w}{{\"series\":{series}}}{w}"),
        1 => format!("{{\"nodes\":{nodes},{w}\"series\":{series}}}"),
        2 => format!("{{{w}\"series\":{series},\"nodes\":{nodes}}}"),
        _ => format!("{{\"nodes\":{nodes}}}"),
    })
}

/// A batch as clients send it: short decimals, canonical serde text.
fn canonical_batch() -> impl Strategy<Value = IngestBatch> {
    let pt = (0i64..100_000, prop::option::weighted(0.9, (-100_000i64..100_000, 0u32..4)), prop::bool::weighted(0.1))
        .prop_map(|(t, v, anomalous)| Point {
            t: 1_700_000_000 + t,
            value: v.map(|(k, e)| decimal(k, e).parse().expect("a decimal")),
            anomalous,
        });
    let s = (prop::collection::vec(pt, 0..50), prop::option::of(1i64..60), "[a-z.]{1,12}").prop_map(
        |(points, update_every, name)| SeriesSpec {
            node: Some("n1".into()),
            context: name.clone(),
            instance: Some(format!("{name}.i")),
            dimension: "user".into(),
            units: Some("%".into()),
            labels: BTreeMap::from([("k".to_string(), name)]),
            update_every,
            points,
            ..SeriesSpec::default()
        },
    );
    prop::collection::vec(s, 0..5).prop_map(|series| IngestBatch {
        nodes: vec![NodeSpec { id: "n1".into(), hostname: Some("h".into()), ..NodeSpec::default() }],
        series,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random texts, well-formed or not, in every number form and spacing.
    #[test]
    fn random_texts_are_declined_or_read_as_serde_reads_them(text in batch_text()) {
        check(&text)?;
    }

    /// A well-formed batch with one byte removed, replaced or added.
    #[test]
    fn damaged_texts_are_declined_or_read_as_serde_reads_them(
        text in batch_text(),
        at in any::<prop::sample::Index>(),
        how in 0u8..3,
        byte in prop::sample::select(b"{}[],:\"\\ 0123456789.-eEnulltrufalse\x01\xff".to_vec()),
    ) {
        let mut bytes = text.into_bytes();
        let i = at.index(bytes.len() + 1);
        match how {
            0 if i < bytes.len() => { bytes.remove(i); }
            1 if i < bytes.len() => bytes[i] = byte,
            _ => bytes.insert(i, byte),
        }
        let fast = parse(&bytes);
        if let Some(f) = fast {
            let reference = serde_json::from_slice::<IngestBatch>(&bytes).ok();
            prop_assert!(reference.as_ref().is_some_and(|r| same(&f, r)), "{:?}", String::from_utf8_lossy(&bytes));
        }
    }

    /// What collectors and the harness send is read here, not declined.
    #[test]
    fn canonical_batches_are_read(batch in canonical_batch(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&batch) } else { serde_json::to_string(&batch) };
        let text = text.expect("json");
        let fast = check(&text)?;
        prop_assert!(fast.is_some_and(|f| same(&f, &batch)), "declined a canonical batch: {text}");
    }
}

#[test]
fn declines_what_serde_must_read_or_refuse() {
    let series = |extra: &str, points: &str| {
        format!(r#"{{"series":[{{"context":"c","dimension":"d"{extra},"points":{points}}}]}}"#)
    };
    let ok = series("", "[[1700000000,1.5]]");
    assert!(parse(ok.as_bytes()).is_some(), "{ok}");
    for text in [
        series(r#","units":"\u0025""#, "[[1700000000,1.5]]"),
        series("", "[[1700000000,1e2]]"),
        // A leading zero is not JSON: neither the compact nor the general point reader takes it.
        series("", "[[01700000000,1.5]]"),
        series("", "[[1700000000,01.5]]"),
        series("", "[[1700000000,1.5]x]"),
        series("", "[[1700000000,1234567890123456]]"),
        series(r#","context":"again""#, "[[1700000000,1.5]]"),
        series(r#","colour":"red""#, "[[1700000000,1.5]]"),
        series(r#","update_every":-0"#, "[[1700000000,1.5]]"),
        series(r#","update_every":2.0"#, "[[1700000000,1.5]]"),
        series(r#","labels":null"#, "[[1700000000,1.5]]"),
        series("", "[[1700000000,1.5],]"),
        series("", "[[1700000000.5,1.5]]"),
        series("", "[[1700000000]]"),
        series("", "[[1700000000,1.5,true,true]]"),
        format!("{ok} x"),
        r#"{"series":[{"context":"c","points":[]}]}"#.to_string(),
        String::new(),
    ] {
        assert!(parse(text.as_bytes()).is_none(), "should decline {text}");
    }
}

#[test]
fn reads_signs_spacing_gaps_and_flags_as_serde() {
    let text = " {\n \"nodes\" : [ { \"id\" : \"n\" , \"hostname\" : null } ] ,\t\"series\":[{\"context\":\"c\",\"dimension\":\"d\",\"update_every\":5,\"points\":[ [1700000000 , -0.0] , [1700000005,null,true],[1700000010,-12.25,false] ]}] }\r\n";
    let fast = parse(text.as_bytes()).expect("read");
    assert!(same(&fast, &serde(text).expect("serde reads it")));
    let p = &fast.series[0].points;
    assert_eq!(p[0].value.map(f64::to_bits), Some((-0.0f64).to_bits()));
    assert_eq!((p[1].value, p[1].anomalous), (None, true));
    assert_eq!(fast.series[0].update_every, Some(5));
}

/// The digit reader one byte at a time: the reference for [`digits`].
fn digits_one_by_one(b: &[u8], mut i: usize, mut acc: u64) -> (u64, usize) {
    while let Some(&c @ b'0'..=b'9') = b.get(i) {
        acc = acc.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        i += 1;
    }
    (acc, i)
}

proptest! {
    /// Eight bytes at a time reads what one at a time reads, from every
    /// start, on texts mixing digits with the bytes just outside '0'-'9',
    /// JSON's punctuation and bytes above 0x7f (where the borrow and carry
    /// tricks could go wrong), ending anywhere in a chunk.
    #[test]
    fn digits_read_eight_at_a_time_as_one_at_a_time(
        text in prop::collection::vec(
            prop_oneof![6 => b'0'..=b'9', 1 => prop::sample::select(vec![b'/', b':', b'.', b',', b']', b'-', b'e', 0u8, 0x7f, 0x80, 0xb0, 0xb9, 0xba, 0xff]), 1 => any::<u8>()],
            0..40,
        ),
        acc in prop_oneof![Just(0u64), any::<u64>()],
    ) {
        for start in 0..=text.len() {
            prop_assert_eq!(digits(&text, start, acc), digits_one_by_one(&text, start, acc), "from {}", start);
        }
    }
}

/// Every form a point can take next to the compact `[t,v]` one, in one
/// series: the compact reader takes some, the general one the rest, and
/// the batch is serde's.
#[test]
fn compact_and_general_points_read_as_serde() {
    let text = r#"{"series":[{"context":"c","dimension":"d","points":[[0,1.5],[7,-0.0],[1700000000,12.25],[1700000001,null],[1700000002,3,true],[1700000003, 4.5],[ 1700000004,5],[1700000005.0,6],[-1,7],[1700000006,8 ],[1700000007,9,false]]}]}"#;
    let fast = parse(text.as_bytes()).expect("read");
    assert!(same(&fast, &serde(text).expect("serde reads it")));
    let p = &fast.series[0].points;
    assert_eq!(p.len(), 11);
    assert_eq!((p[0].t, p[0].value), (0, Some(1.5)));
    assert_eq!(p[1].value.map(f64::to_bits), Some((-0.0f64).to_bits()));
    assert_eq!((p[3].value, p[4].anomalous, p[8].t), (None, true, -1));
}

/// What the ingest route reads: this reader, or serde where it declines.
fn ingest_read(text: &str) -> Option<IngestBatch> {
    parse(text.as_bytes()).or_else(|| serde(text))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every finite double a client writes in its shortest form (as
    /// serde_json, JavaScript and Python print them) is stored bit for bit,
    /// whichever reader takes it: 16 and 17 significant digits included.
    /// Any bit pattern, and doubles drawn where they print as plain
    /// decimals (no exponent), most with 16-17 digits.
    #[test]
    fn every_double_reads_back_bit_for_bit(
        v in prop_oneof![any::<u64>().prop_map(f64::from_bits), 1e-5f64..1e16, -1e3f64..1e3],
        ue in 1u32..3,
    ) {
        prop_assume!(v.is_finite());
        let text = format!(
            r#"{{"series":[{{"context":"c","dimension":"d","update_every":{ue},"points":[[1700000000,{}]]}}]}}"#,
            serde_json::to_string(&v).expect("a finite double")
        );
        let got = ingest_read(&text).and_then(|b| b.series[0].points[0].value);
        prop_assert_eq!(got.map(f64::to_bits), Some(v.to_bits()), "{}", text);
    }
}

#[test]
fn seventeen_digit_values_keep_their_last_bit() {
    for v in [91.00000000000001_f64, 63.00000000000001, 28.000000000000004, 0.1 + 0.2, 1.0 - f64::EPSILON] {
        let text = format!(r#"{{"series":[{{"context":"c","dimension":"d","points":[[1700000000,{v:?}]]}}]}}"#);
        let got = ingest_read(&text).and_then(|b| b.series[0].points[0].value);
        assert_eq!(got.map(f64::to_bits), Some(v.to_bits()), "{text}");
    }
}
