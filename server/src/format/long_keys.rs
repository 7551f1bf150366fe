//! Option `long-json-keys` (`long-keys`): the json2 document with
//! descriptive key names instead of Netdata's two- and three-letter ones
//! (API spec 4.9). The json2 writer renames each key as it writes it, so
//! the document code keeps one key set; keys that are caller data (ids,
//! label names) are never renamed.

/// The long name of a short key, given the key of the object or array it
/// sits in (`nm` is a hostname among nodes; `vl` lists a label's values).
pub fn long_name(key: &str, parent: &str) -> Option<&'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_depend_on_the_enclosing_key() {
        assert_eq!(long_name("nm", "nodes"), Some("hostname"));
        assert_eq!(long_name("nm", "instances"), Some("name"));
        assert_eq!(long_name("vl", "labels"), Some("label_values"));
        assert_eq!(long_name("vl", "alerts"), Some("value"));
        assert_eq!(long_name("sts", ""), Some("statistics"));
        assert_eq!(long_name("ids", "dimensions"), None);
    }
}
