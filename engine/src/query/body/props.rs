//! Property test of the module's invariant: whenever the strict read takes
//! a body, its request (or validation error) equals the lenient read's.
//! Bodies are written as text, field by field, so they carry what a
//! `Value` cannot: duplicate keys, escaped strings, numbers past `i64`.

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::Value;

use super::{parse_body, parse_body_json};
use crate::query::request::ApiVersion;

fn pick(v: &[&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(v.to_vec()).prop_map(str::to_string).boxed()
}

/// A list field: mostly the strict form, sometimes a lenient or wrong one.
fn words() -> BoxedStrategy<String> {
    let word = pick(&[
        "\"system.cpu\"",
        "\"*\"",
        "\"node0\"",
        "\"!a* *\"",
        "\"user|system\"",
        "\"\"",
        "\"node\"",
        "\"dimension,instance\"",
        "\"label\"",
        "\"nodez\"",
        "\"sys\\u0074em.cpu\"",
        "\"flip\"",
        "\" ms \"",
        "\"minimal-stats\"",
        "\"jsonwrap\"",
        "\"nope\"",
        "\"k:v\"",
        "\"[bad\"",
    ]);
    prop_oneof![
        6 => prop::collection::vec(word.clone(), 0..4).prop_map(|w| format!("[{}]", w.join(","))),
        1 => word,
        1 => pick(&["[\"a\", null]", "5", "null", "{}", "[1]", "true"]),
    ]
    .boxed()
}

fn int() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (-5000i64..5000).prop_map(|n| n.to_string()),
        2 => pick(&["600", "-600", "0", "-0", "1764143600", "270", "3", "1", "9223372036854775807"]),
        1 => pick(&["600.0", "600.5", "\"600\"", "\"\"", "null", "true", "18446744073709551615", "1e3", "[1]"]),
    ]
    .boxed()
}

fn string(good: &[&'static str]) -> BoxedStrategy<String> {
    prop_oneof![4 => pick(good), 1 => pick(&["\"\"", "5", "null", "[\"a\"]", "\"\\u0061verage\"", "\"nope\""])].boxed()
}

fn field(k: &'static str, v: BoxedStrategy<String>) -> BoxedStrategy<String> {
    v.prop_map(move |v| format!("\"{k}\":{v}")).boxed()
}

/// An object of some of `fields` (any may repeat), or now and then not an
/// object at all.
fn object(fields: Vec<BoxedStrategy<String>>) -> BoxedStrategy<String> {
    let fields = Union::new(fields);
    prop_oneof![
        8 => prop::collection::vec(fields, 0..6).prop_map(|f| format!("{{{}}}", f.join(","))),
        1 => pick(&["null", "[1, 2]", "\"x\"", "{}"]),
        // Arrays as long as a struct's field list: serde alone reads them.
        1 => (2usize..=9).prop_map(|n| format!("[{}]", vec!["null"; n].join(","))),
    ]
    .boxed()
}

fn selectors() -> BoxedStrategy<String> {
    object(
        ["nodes", "contexts", "instances", "dimensions", "labels", "alerts"]
            .into_iter()
            .map(|k| field(k, words()))
            .collect(),
    )
}

fn body() -> BoxedStrategy<String> {
    let window =
        object(["after", "before", "duration", "points", "tier"].into_iter().map(|k| field(k, int())).collect());
    let time = object(vec![
        field("time_group", string(&["\"average\"", "\"median\"", "\"percentile\"", "\"max\"", "\"avg2\""])),
        field("time_group_options", string(&["\"95\"", "\"x\"", "95"])),
        field("time_resampling", int()),
    ]);
    let pass = object(vec![
        field("group_by", words()),
        field("groupBy", words()),
        field("group_by_label", words()),
        field("aggregation", string(&["\"sum\"", "\"avg\"", "\"max\"", "\"median\"", "\"bogus\""])),
    ]);
    let metrics = prop_oneof![
        4 => prop::collection::vec(pass, 0..5).prop_map(|p| format!("[{}]", p.join(","))),
        1 => pick(&["null", "{}", "\"node\""]),
    ]
    .boxed();
    let aggregations = object(vec![field("time", time), field("metrics", metrics)]);
    object(vec![
        field("scope", selectors()),
        field("selectors", selectors()),
        field("window", window),
        field("aggregations", aggregations),
        field("format", string(&["\"json2\"", "\"json\"", "\"csv\"", "\"jsonx\""])),
        field("options", prop_oneof![4 => words(), 1 => pick(&["\"flip|ms\"", "\"\""])].boxed()),
        field("timeout", int()),
        field("cardinality_limit", int()),
        field("limit", int()),
        field(
            "extra",
            prop_oneof![
                4 => pick(&["1", "{\"a\": [1, {}]}", "\"x\"", "null", "\"\\ud800\"", "1e400", "-1e999"]),
                1 => (100usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
            ]
            .boxed(),
        ),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_strict_read_agrees_with_the_lenient_one(text in body()) {
        let Some(strict) = parse_body_json(ApiVersion::V3, text.as_bytes()) else { return Ok(()) };
        // An unknown field's content is not checked by the strict read (see
        // the module doc): nothing to compare when only that is wrong.
        let Ok(value) = serde_json::from_str::<Value>(&text) else { return Ok(()) };
        match (strict, parse_body(ApiVersion::V3, &value)) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", text),
            (Err(a), Err(b)) => {
                prop_assert_eq!(a.to_string(), b.to_string(), "{}", text);
                prop_assert_eq!(a.path(), b.path());
            }
            (a, b) => prop_assert!(false, "{text}: strict {a:?}, lenient {b:?}"),
        }
    }
}

/// Strings without escapes are borrowed from the body, in lists and
/// optional fields alike; escaped ones are copied.
#[test]
fn strings_borrow_from_the_body_unless_escaped() {
    use std::borrow::Cow;
    let text = br#"{"format":"json2","options":["flip","\u006ds"],"scope":{"contexts":["system.cpu"]}}"#;
    let raw: super::map_only::MapOnly<super::raw::RawBody<'_>> = serde_json::from_slice(text).expect("strict");
    let raw = raw.0;
    assert!(matches!(raw.format.as_ref().map(|t| &t.0), Some(Cow::Borrowed("json2"))));
    let options: Vec<&Cow<'_, str>> = raw.options.iter().flatten().map(|t| &t.0).collect();
    assert!(matches!(options[..], [Cow::Borrowed("flip"), Cow::Owned(_)]), "{options:?}");
    assert_eq!(options[1].as_ref(), "ms");
    let contexts = raw.scope.as_ref().and_then(|s| s.0.contexts.as_ref()).expect("contexts");
    assert!(matches!(contexts[0].0, Cow::Borrowed("system.cpu")));
}

/// The fast read must take what clients send: otherwise every body would
/// pay for both reads.
#[test]
fn common_bodies_take_the_strict_read() {
    for text in [
        // The bench's small query.
        r#"{"scope":{"contexts":["cpu"],"nodes":["n0"],"instances":["cpu0"]},"window":{"after":1,"before":600,"points":60},
           "aggregations":{"metrics":[{"group_by":["selected"],"aggregation":"average"}],"time":{"time_group":"average"}},
           "format":"json2","options":["minimal-stats"]}"#,
        // The Grafana plugin's.
        r#"{"format":"json2","options":["jsonwrap","flip","ms"],
           "scope":{"contexts":["system.cpu"],"nodes":[],"dimensions":[],"labels":[]},
           "selectors":{"contexts":["*"],"nodes":["*"],"instances":["*"],"dimensions":["*"],"labels":["*"]},
           "aggregations":{"metrics":[{"groupBy":["node"],"group_by_label":[],"aggregation":"avg"}],
                           "time":{"time_group":"average","time_resampling":0}},
           "window":{"after":1764140000,"before":1764143600,"points":269},"timeout":30000}"#,
        // Netdata Cloud's, with fields strata does not read.
        r#"{"scope":{"nodes":["a"],"contexts":["system.load"]},"selectors":{"nodes":["*"]},
           "aggregations":{"metrics":[{"group_by":["dimension"],"group_by_label":[],"aggregation":"sum"}],
                           "time":{"time_group":"average","time_group_options":"","time_resampling":0}},
           "window":{"after":-600,"before":0,"points":60,"tier":0},"format":"json2","options":["jsonwrap"],
           "timeout":20000,"limit":10,"cardinality_limit":100,"with_metadata":true}"#,
    ] {
        let strict =
            parse_body_json(ApiVersion::V3, text.as_bytes()).unwrap_or_else(|| panic!("not read strictly: {text}"));
        let lenient = parse_body(ApiVersion::V3, &serde_json::from_str(text).expect("JSON"));
        assert_eq!(strict.expect("valid"), lenient.expect("valid"));
    }
}

/// The generator reaches both outcomes of the strict read often enough for
/// the property above to say something: valid requests, validation errors,
/// and bodies left to the lenient read.
#[test]
fn the_generated_bodies_cover_every_outcome() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut ok, mut err, mut lenient) = (0, 0, 0);
    for _ in 0..2000 {
        let text = body().new_tree(&mut runner).expect("a body").current();
        match parse_body_json(ApiVersion::V3, text.as_bytes()) {
            Some(Ok(_)) => ok += 1,
            Some(Err(_)) => err += 1,
            None => lenient += 1,
        }
    }
    eprintln!("strict ok {ok}, strict error {err}, lenient {lenient}");
    assert!(ok >= 100 && err >= 100 && lenient >= 100, "ok {ok}, error {err}, lenient {lenient}");
}
