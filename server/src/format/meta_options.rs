//! Options `rfc3339` and `long-json-keys` (`long-keys`) on the metadata
//! listings (`/api/v2/info`, `nodes`, `contexts`, `q`), as Netdata's
//! contexts family applies them: epoch-second times become RFC 3339 text
//! (`2026-11-23T16:40:00Z`), and the short node and agent keys (`mg`, `nd`,
//! `nm`, `ni`, `ai`, `st`, ...) their long names, by the same table the
//! json2 writer uses ([`super::long_keys`]).
//!
//! Invariant: keys that are caller data are never renamed or converted:
//! the keys of the `contexts` object (context ids) and of every `labels`
//! object (label names), so a context named `nm` or a label named `now`
//! reads as it was written.

use serde_json::{json, Value};

use super::long_keys::long_name;
use super::rfc3339;

/// Keys whose values are epoch seconds in the metadata documents.
const TIME_KEYS: &[&str] = &["now", "first_entry", "last_entry", "from", "to"];

/// Objects keyed by caller data.
const DATA_KEYED: &[&str] = &["contexts", "labels"];

/// Which of the two options a request gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaShape {
    pub rfc3339: bool,
    pub long_keys: bool,
}

impl MetaShape {
    /// The options among `options` (a metadata request's list).
    pub fn of(options: &[String]) -> MetaShape {
        let has = |name: &str| options.iter().any(|o| o == name);
        MetaShape { rfc3339: has("rfc3339"), long_keys: has("long-json-keys") || has("long-keys") }
    }

    /// `doc` as the options ask (unchanged without either).
    pub fn apply(self, doc: &mut Value) {
        if self.rfc3339 || self.long_keys {
            self.reshape(doc, "");
        }
    }

    /// Reshapes `v`, which sits under key `parent`.
    fn reshape(self, v: &mut Value, parent: &str) {
        match v {
            Value::Array(items) => items.iter_mut().for_each(|x| self.reshape(x, parent)),
            Value::Object(map) => {
                let data_keyed = DATA_KEYED.contains(&parent);
                for (k, mut x) in std::mem::take(map) {
                    if data_keyed {
                        // A context's facts are shaped as any object's; a label's values are data.
                        self.reshape(&mut x, "");
                        map.insert(k, x);
                        continue;
                    }
                    if self.rfc3339 && TIME_KEYS.contains(&k.as_str()) {
                        if let Some(t) = x.as_i64() {
                            x = json!(rfc3339(t));
                        }
                    }
                    self.reshape(&mut x, &k);
                    let key = match long_name(&k, parent).filter(|_| self.long_keys) {
                        Some(long) => long.to_string(),
                        None => k,
                    };
                    map.insert(key, x);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(options: &[&str], mut doc: Value) -> Value {
        MetaShape::of(&options.iter().map(|s| s.to_string()).collect::<Vec<_>>()).apply(&mut doc);
        doc
    }

    fn listing() -> Value {
        json!({
            "api": 2,
            "nodes": [{"mg": "g", "nd": "n1", "nm": "host-1", "ni": 0, "labels": {"nm": "x", "now": 5},
                       "retention": {"first_entry": 1_800_000_000, "last_entry": null}}],
            "contexts": {"nm": {"family": "f", "first_entry": 1_800_000_060, "last_entry": 1_800_000_120,
                                "labels": {"st": ["a"]}}},
            "agents": [{"mg": "g", "nm": "strata", "now": 1_800_000_000, "ai": 0}],
        })
    }

    #[test]
    fn without_the_options_nothing_changes() {
        assert_eq!(shape(&["titles", "minify"], listing()), listing());
    }

    #[test]
    fn rfc3339_writes_times_as_text_and_nothing_else() {
        let d = shape(&["rfc3339"], listing());
        assert_eq!(d["agents"][0]["now"], "2027-01-15T08:00:00Z");
        assert_eq!(d["nodes"][0]["retention"]["first_entry"], "2027-01-15T08:00:00Z");
        assert_eq!(d["nodes"][0]["retention"]["last_entry"], Value::Null, "no time stays null");
        assert_eq!(d["contexts"]["nm"]["last_entry"], "2027-01-15T08:02:00Z");
        assert_eq!(d["nodes"][0]["labels"]["now"], 5, "a label named now is data");
        assert_eq!(d["nodes"][0]["ni"], 0);
    }

    #[test]
    fn long_keys_rename_node_and_agent_keys_but_never_data() {
        let d = shape(&["long-keys"], listing());
        let node = &d["nodes"][0];
        assert_eq!(node["machine_guid"], "g");
        assert_eq!(node["node_id"], "n1");
        assert_eq!(node["hostname"], "host-1");
        assert_eq!(node["nodes_array_index"], 0);
        assert!(node.get("mg").is_none() && node.get("nm").is_none());
        assert_eq!(node["labels"]["nm"], "x", "a label named nm is data");
        assert_eq!(d["agents"][0]["name"], "strata");
        assert_eq!(d["agents"][0]["agents_array_index"], 0);
        assert_eq!(d["contexts"]["nm"]["family"], "f", "a context named nm keeps its id");
        assert_eq!(d["contexts"]["nm"]["labels"]["st"], json!(["a"]));
        assert_eq!(shape(&["long-json-keys"], listing()), d, "both spellings");
    }
}
