//! Full-text search (`/api/v2/q`): a simple pattern whose words match as
//! case-insensitive substrings (`cpu` finds `system.cpu` and `CPU Time`)
//! against context ids, titles, units and families, instance ids and names,
//! dimension names, label keys and values, and node names. A context is a
//! hit when anything of it matched; a node whose name matched makes every
//! visible context of that node a hit (matched as `nodes`).

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::index::SimplePattern;
use crate::meta::Visible;
use crate::model::NodeIdx;

/// One context that matched, and what of it matched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hit {
    pub context: String,
    pub title: String,
    pub units: String,
    pub family: String,
    /// Which kinds of strings matched: `id`, `title`, `units`, `families`,
    /// `instances`, `dimensions`, `labels`, `nodes`.
    pub matched: BTreeSet<&'static str>,
    pub instances: BTreeSet<String>,
    pub dimensions: BTreeSet<String>,
    pub labels: BTreeMap<String, BTreeSet<String>>,
    pub nodes: BTreeSet<NodeIdx>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// Nodes whose hostname, GUID or id matched.
    pub matched_nodes: BTreeSet<NodeIdx>,
    /// Strings compared (Netdata's `searches.strings`).
    pub strings: u64,
}

/// Compiles `q`: words split on `,` and `|`, each (unless it has a `*`)
/// made a substring match, all case-insensitive. `!word` excludes.
pub fn compile(q: &str) -> Result<SimplePattern> {
    let words: Vec<String> = q
        .split([',', '|'])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            let (neg, body) = w.strip_prefix('!').map_or(("", w), |b| ("!", b));
            if body.contains('*') {
                w.to_string()
            } else {
                format!("{neg}*{body}*")
            }
        })
        .collect();
    if words.is_empty() {
        return Err(EngineError::param("q", "'q' (the search string) is required and must not be empty"));
    }
    let p = SimplePattern::parse_list(&words)
        .map_err(|source| EngineError::InvalidPattern { param: "q".into(), source })?;
    Ok(p.case_insensitive())
}

/// Searches the visible metadata.
pub fn search(cat: &Catalog, visible: &Visible, p: &SimplePattern) -> Found {
    let reg = cat.registry();
    let mut found = Found::default();
    let test = |s: &str, strings: &mut u64| {
        *strings += 1;
        p.matches(s)
    };
    for (i, n) in reg.nodes().iter().enumerate() {
        let shown = cat.postings().node(i as u32).is_some_and(|b| !b.is_disjoint(visible));
        if shown && [&n.hostname, &n.machine_guid, &n.id].iter().any(|s| test(s, &mut found.strings)) {
            found.matched_nodes.insert(i as NodeIdx);
        }
    }
    for (ci, c) in reg.contexts().iter().enumerate() {
        let Some(b) = cat.postings().context(ci as u32) else { continue };
        let mine = b & visible;
        if mine.is_empty() {
            continue;
        }
        let mut hit = Hit {
            context: c.id.clone(),
            title: c.title.clone(),
            units: c.units.clone(),
            family: c.family.clone(),
            ..Hit::default()
        };
        for (kind, s) in [("id", &c.id), ("title", &c.title), ("units", &c.units), ("families", &c.family)] {
            if test(s, &mut found.strings) {
                hit.matched.insert(kind);
            }
        }
        // A hit counts on the nodes where something matched, as Netdata
        // searches node by node: the context's own strings on all of its
        // nodes, a dimension on the nodes that have it, an instance, its
        // labels or its node's name on that instance's node.
        let context_wide = !hit.matched.is_empty();
        let mut seen_inst = BTreeSet::new();
        let mut dims: BTreeMap<&str, bool> = BTreeMap::new();
        for m in &mine {
            let metric = reg.metric(m);
            let inst = &reg.instances()[metric.instance as usize];
            let dim_hit = match dims.get(metric.dimension.as_str()) {
                Some(&known) => known,
                None => {
                    let t = test(&metric.dimension, &mut found.strings);
                    if t {
                        hit.matched.insert("dimensions");
                        hit.dimensions.insert(metric.dimension.clone());
                    }
                    dims.insert(metric.dimension.as_str(), t);
                    t
                }
            };
            if context_wide || dim_hit {
                hit.nodes.insert(inst.node);
            }
            if !seen_inst.insert(metric.instance) {
                continue;
            }
            let mut inst_hit = false;
            if found.matched_nodes.contains(&inst.node) {
                hit.matched.insert("nodes");
                inst_hit = true;
            }
            if test(&inst.id, &mut found.strings) || (inst.name != inst.id && test(&inst.name, &mut found.strings)) {
                hit.matched.insert("instances");
                hit.instances.insert(inst.id.clone());
                inst_hit = true;
            }
            for (k, v) in &inst.labels {
                if test(k, &mut found.strings) || test(v, &mut found.strings) {
                    hit.matched.insert("labels");
                    hit.labels.entry(k.clone()).or_default().insert(v.clone());
                    inst_hit = true;
                }
            }
            if inst_hit {
                hit.nodes.insert(inst.node);
            }
        }
        if !hit.matched.is_empty() {
            found.hits.push(hit);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn words_are_case_insensitive_substrings() {
        let p = compile("CPU").expect("ok");
        assert!(p.matches("system.cpu") && p.matches("Core utilization (CPU)"));
        assert!(!p.matches("system.ram"));
        let p = compile("disk*io, !*ram*").expect("ok");
        assert!(p.matches("disk.io") && !p.matches("system.ram"));
        assert!(compile(" , |").is_err());
    }

    proptest! {
        #[test]
        fn q_parser_never_panics(q in ".{0,40}") {
            let _ = compile(&q);
        }
    }
}
