//! Option `long-json-keys` (`long-keys`): the json2 document with
//! descriptive key names instead of Netdata's two- and three-letter ones
//! (API spec 4.9). Applied to the finished metadata trees, so the writers
//! keep one key set and `result.data` (no keys) is never touched.

use serde_json::{Map, Value};

/// The long name of a short key, given the key of the object or array it
/// sits in (`nm` is a hostname among nodes; `vl` lists a label's values).
fn long_name(key: &str, parent: &str) -> Option<&'static str> {
    Some(match key {
        "sl" => "selected",
        "ex" => "excluded",
        "qr" => "queried",
        "fl" => "failed",
        "ds" => "dimensions",
        "is" => "instances",
        "al" => "alerts",
        "sts" => "statistics",
        "nm" if parent == "nodes" => "hostname",
        "nm" => "name",
        "nd" => "node_id",
        "mg" => "machine_guid",
        "ni" => "nodes_array_index",
        "ai" => "agents_array_index",
        "st" => "status",
        "vl" if parent == "labels" => "label_values",
        "vl" => "value",
        "cl" => "clear",
        "wr" => "warning",
        "cr" => "critical",
        "ot" => "other",
        "cnt" => "count",
        "vol" => "volume",
        "arp" => "anomaly_rate_percent",
        "arc" => "anomalous_points_count",
        "con" => "contribution_percent",
        "pa" => "point_annotations_bitmap",
        "point" => "point_schema",
        "pri" => "priority",
        "ue" => "update_every",
        "fe" => "first_entry",
        "le" => "last_entry",
        _ => return None,
    })
}

/// Renames every short key in `v`, in place and in order. Objects under a
/// `labels` key map label names (caller data) and keep their keys.
pub fn lengthen(v: &mut Value, parent: &str) {
    rename(v, parent, &["labels"]);
}

/// Like [`lengthen`] for the `detailed` tree, whose `nodes`, `contexts`,
/// `instances`, `dimensions` and `alerts` objects are keyed by ids.
pub fn lengthen_detailed(v: &mut Value) {
    rename(v, "", &["labels", "nodes", "contexts", "instances", "dimensions", "alerts"]);
}

/// `id_maps`: keys whose object values are keyed by caller data; those keys
/// are kept and each entry's value is renamed as a child of the map.
fn rename(v: &mut Value, parent: &str, id_maps: &[&str]) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(|x| rename(x, parent, id_maps)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            let mut out = Map::with_capacity(old.len());
            for (k, mut x) in old {
                match &mut x {
                    Value::Object(entries) if id_maps.contains(&k.as_str()) => {
                        if k != "labels" {
                            entries.values_mut().for_each(|e| rename(e, &k, id_maps));
                        }
                    }
                    _ => rename(&mut x, &k, id_maps),
                }
                let name = long_name(&k, parent).map_or(k, str::to_string);
                out.insert(name, x);
            }
            *map = out;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn detailed_keeps_id_keys() {
        let mut v = json!({"nodes": {"g1": {"nd": "n1", "ni": 0, "nm": "web", "contexts": {"sl": {
            "instances": {"nm": {"nm": "nm", "ue": 1, "labels": {"ds": "x"},
                                 "dimensions": {"qr": {"nm": "qr", "qr": 1, "fe": 1, "le": 2, "as": "qr"}}}},
            "alerts": {}}}}}});
        lengthen_detailed(&mut v);
        assert_eq!(
            v,
            json!({"nodes": {"g1": {"node_id": "n1", "nodes_array_index": 0, "hostname": "web", "contexts": {"sl": {
                "instances": {"nm": {"name": "nm", "update_every": 1, "labels": {"ds": "x"},
                                     "dimensions": {"qr": {"name": "qr", "queried": 1, "first_entry": 1, "last_entry": 2, "as": "qr"}}}},
                "alerts": {}}}}}})
        );
    }

    #[test]
    fn renames_by_context_and_leaves_caller_keys_alone() {
        let mut v = json!({
            "nodes": [{"mg": "g", "nd": "n", "nm": "web-1", "ni": 0, "st": {"ai": 0, "code": 200}, "sts": {"min": 1, "arp": 0.5, "con": 100}}],
            "labels": [{"id": "zone", "ds": {"sl": 1, "qr": 1}, "vl": [{"id": "eu", "ds": {"sl": 1}}]}],
            "alerts": [{"nm": "cpu", "cl": 1, "wr": 0, "cr": 0, "ot": 0}],
            "dimensions": {"ids": ["a"], "sts": {"avg": [1.0]}, "labels": {"nm": [["kept"]], "sl": null}},
            "point": {"value": 0, "arp": 1, "pa": 2},
        });
        lengthen(&mut v, "");
        assert_eq!(
            v,
            json!({
                "nodes": [{"machine_guid": "g", "node_id": "n", "hostname": "web-1", "nodes_array_index": 0,
                           "status": {"agents_array_index": 0, "code": 200},
                           "statistics": {"min": 1, "anomaly_rate_percent": 0.5, "contribution_percent": 100}}],
                "labels": [{"id": "zone", "dimensions": {"selected": 1, "queried": 1},
                            "label_values": [{"id": "eu", "dimensions": {"selected": 1}}]}],
                "alerts": [{"name": "cpu", "clear": 1, "warning": 0, "critical": 0, "other": 0}],
                "dimensions": {"ids": ["a"], "statistics": {"avg": [1.0]}, "labels": {"nm": [["kept"]], "sl": null}},
                "point_schema": {"value": 0, "anomaly_rate_percent": 1, "point_annotations_bitmap": 2},
            })
        );
    }
}
