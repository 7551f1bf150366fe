//! Property tests: the request parsers never panic, whatever they are fed;
//! they answer Ok or a 400-kind error that names a parameter.

use proptest::prelude::*;
use serde_json::Value;

use crate::error::ErrorKind;
use crate::query::body::parse_body;
use crate::query::params::parse_params;
use crate::query::request::ApiVersion;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "[a-z_*!|,:\\\\ ]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "average",
            "median",
            "node",
            "dimension",
            "percentage",
            "-600",
            "flip",
            "tier",
            "99999999999"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "scope",
                    "selectors",
                    "window",
                    "aggregations",
                    "metrics",
                    "time",
                    "format",
                    "options",
                    "timeout",
                    "limit",
                    "nodes",
                    "contexts",
                    "dimensions",
                    "labels",
                    "after",
                    "before",
                    "points",
                    "tier",
                    "group_by",
                    "groupBy",
                    "aggregation",
                    "time_group",
                    "time_group_options",
                    "time_resampling",
                    "duration",
                    "cardinality_limit",
                ]),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn post_bodies_never_panic(v in json_value()) {
        if let Err(e) = parse_body(ApiVersion::V3, &v) {
            prop_assert!(matches!(e.kind(), ErrorKind::BadInput | ErrorKind::LimitExceeded));
            prop_assert!(e.path().is_some(), "error without a parameter: {e}");
        }
    }

    #[test]
    fn get_parameters_never_panic(pairs in prop::collection::vec((
        prop::sample::select(vec!["after", "before", "points", "group_by", "group_by[1]", "group_by[7]", "aggregation",
            "time_group", "group_options", "tier", "format", "options", "nodes", "contexts", "dimensions", "labels",
            "timeout", "limit", "gtime", "dimension", "chart"]),
        "[-a-z0-9_*!|,:\\\\ ]{0,16}",
    ), 0..8)) {
        let pairs: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        for api in [ApiVersion::V1, ApiVersion::V3] {
            if let Err(e) = parse_params(api, &pairs) {
                prop_assert!(e.path().is_some(), "error without a parameter: {e}");
            }
        }
    }
}
