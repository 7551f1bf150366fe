//! Rooms: named slices of the node set, as Netdata Cloud has them. A room
//! is a node pattern (hostname, machine GUID or node id) and/or a host-label
//! filter; a node belongs to the room when it passes both (an absent one
//! passes everything). A query made through a room sees only its nodes:
//! the filter is applied to the selection like the token's allowlist.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::index::{LabelFilter, SimplePattern};
use crate::model::Node;
use crate::query::body::strings;

/// Longest room name accepted.
pub const MAX_NAME: usize = 100;

/// A room as written in the config file or a `POST .../rooms` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomDef {
    pub name: String,
    /// Node patterns, one per element (any of them may match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Host-label filters `key:value` (OR within a key, AND across keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_labels: Vec<String>,
}

/// A compiled room filter.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomFilter {
    pub nodes: Option<SimplePattern>,
    pub host_labels: Option<LabelFilter>,
}

impl RoomDef {
    /// Parses and checks a JSON room definition (`{"name", "nodes"?, "host_labels"?}`).
    pub fn from_json(v: &Value) -> Result<RoomDef> {
        let m = v.as_object().ok_or_else(|| EngineError::param("body", "a room is a JSON object"))?;
        if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "name" | "nodes" | "host_labels")) {
            return Err(EngineError::param(
                k.as_str(),
                format!("unknown room field '{k}' (use name, nodes, host_labels)"),
            ));
        }
        let name = match m.get("name") {
            Some(Value::String(s)) => s.clone(),
            _ => return Err(EngineError::param("name", "a room needs a 'name' string")),
        };
        let def = RoomDef {
            name,
            nodes: strings(m.get("nodes").unwrap_or(&Value::Null), "nodes")?,
            host_labels: strings(m.get("host_labels").unwrap_or(&Value::Null), "host_labels")?,
        };
        def.compile()?;
        Ok(def)
    }

    /// Checks the definition and builds its filter.
    pub fn compile(&self) -> Result<RoomFilter> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(EngineError::param(
                "name",
                format!("a room name is 1 to {MAX_NAME} printable characters, got {:?}", self.name),
            ));
        }
        let nodes: Vec<&String> = self.nodes.iter().filter(|s| !s.trim().is_empty()).collect();
        let nodes = if nodes.is_empty() {
            None
        } else {
            let p = SimplePattern::parse_list(&nodes)
                .map_err(|source| EngineError::InvalidPattern { param: "nodes".into(), source })?;
            (!p.is_match_all()).then_some(p)
        };
        let labels: Vec<&String> = self.host_labels.iter().filter(|s| !s.trim().is_empty()).collect();
        let host_labels = if labels.is_empty() {
            None
        } else {
            let f = LabelFilter::parse_list(&labels)
                .map_err(|source| EngineError::InvalidPattern { param: "host_labels".into(), source })?;
            (!f.is_empty()).then_some(f)
        };
        if nodes.is_none() && host_labels.is_none() {
            return Err(EngineError::param(
                "nodes",
                "a room needs a node pattern ('nodes') or a host-label filter ('host_labels'); the 'All nodes' room already holds everything",
            ));
        }
        Ok(RoomFilter { nodes, host_labels })
    }

    /// The room's id: its name lower-cased, runs of other characters as `-`.
    pub fn slug(&self) -> String {
        slug(&self.name)
    }
}

/// `Production EU` -> `production-eu`; never empty. A name with no ASCII
/// letter or digit (`生产`, `!!!`) gets `room-` and a hash of the name, so
/// that two such rooms do not share an id.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out = format!("room-{:08x}", fnv1a(name.trim()));
    }
    out
}

/// 32-bit FNV-1a: stable across builds and versions (ids are persisted
/// through the rooms' names), unlike the standard library's hasher.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

impl RoomFilter {
    /// Does `node` belong to the room?
    pub fn has_node(&self, node: &Node) -> bool {
        self.nodes.as_ref().is_none_or(|p| p.matches_any(node.pattern_names()))
            && self.host_labels.as_ref().is_none_or(|f| f.matches(|k| node.labels.get(k).map(String::as_str)))
    }

    /// The metrics of the room's nodes.
    pub fn metrics(&self, cat: &Catalog) -> roaring::RoaringBitmap {
        let mut out = roaring::RoaringBitmap::new();
        for (i, n) in cat.registry().nodes().iter().enumerate() {
            if self.has_node(n) {
                if let Some(b) = cat.postings().node(i as u32) {
                    out |= b;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn node(id: &str, host: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            id: id.into(),
            hostname: host.into(),
            machine_guid: crate::model::machine_guid_for(id),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn rooms_match_by_pattern_and_host_labels() {
        let r = RoomDef::from_json(&json!({"name": "Prod web", "nodes": ["web-*"], "host_labels": ["env:prod"]}))
            .expect("ok")
            .compile()
            .expect("ok");
        assert!(r.has_node(&node("web-1", "w1", &[("env", "prod")])));
        assert!(!r.has_node(&node("web-2", "w2", &[("env", "dev")])));
        assert!(!r.has_node(&node("db-1", "d1", &[("env", "prod")])));
        let by_host =
            RoomDef { name: "h".into(), nodes: vec!["w1".into()], host_labels: vec![] }.compile().expect("ok");
        assert!(by_host.has_node(&node("web-1", "w1", &[])));
    }

    #[test]
    fn bad_rooms_name_the_problem() {
        for (body, path) in [
            (json!({"nodes": ["a"]}), "name"),
            (json!({"name": "", "nodes": ["a"]}), "name"),
            (json!({"name": "x"}), "nodes"),
            (json!({"name": "x", "nodes": "*"}), "nodes"),
            (json!({"name": "x", "nodes": [1]}), "nodes[0]"),
            (json!({"name": "x", "nodes": ["!"]}), "nodes"),
            (json!({"name": "x", "host_labels": [":v"]}), "host_labels"),
            (json!({"name": "x", "color": "red", "nodes": ["a"]}), "color"),
            (json!([1]), "body"),
        ] {
            let e = RoomDef::from_json(&body).expect_err(path);
            assert_eq!(e.path(), Some(path), "{body}: {e}");
        }
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Production EU"), "production-eu");
        assert_eq!(slug("  --a__b--  "), "a-b");
        assert_eq!(slug("ünï"), "n");
        // No ASCII letter or digit: distinct names keep distinct ids, the same name the same id.
        assert_eq!(slug("!!!"), "room-2d53a722", "FNV-1a of the trimmed name");
        assert_eq!(slug("  !!! "), slug("!!!"));
        let ids: std::collections::HashSet<String> =
            ["!!!", "😀😀", "生产", "测试", "?"].iter().map(|n| slug(n)).collect();
        assert_eq!(ids.len(), 5, "{ids:?}");
        assert!(ids.iter().all(|id| id.starts_with("room-") && id.len() == 13), "{ids:?}");
    }

    proptest! {
        #[test]
        fn room_parser_never_panics(name in ".{0,120}", nodes in prop::collection::vec(".{0,12}", 0..4),
                                    labels in prop::collection::vec("[a-z:!*]{0,10}", 0..4)) {
            let v = json!({"name": name, "nodes": nodes, "host_labels": labels});
            if let Ok(def) = RoomDef::from_json(&v) {
                prop_assert!(def.compile().is_ok());
                prop_assert!(!def.slug().is_empty());
            }
        }
    }
}
