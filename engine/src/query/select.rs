//! Scope and selectors to bitmaps of MetricIds. Each pattern is evaluated
//! once per distinct node, context, instance or dimension name, and the
//! matching postings are unioned; metrics are never string-matched.

use roaring::RoaringBitmap;

use crate::catalog::Catalog;
use crate::index::{LabelFilter, SimplePattern};
use crate::query::request::Selectors;

/// The outcome of selection.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Everything in scope (the query's universe).
    pub scope: RoaringBitmap,
    /// Metrics to query and return.
    pub selected: RoaringBitmap,
}

impl Selection {
    /// In scope but filtered out by the selectors.
    pub fn excluded(&self) -> RoaringBitmap {
        &self.scope - &self.selected
    }
}

/// Metrics of the nodes matching `p` (hostname, machine GUID, node id).
pub fn nodes(cat: &Catalog, p: &SimplePattern) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for (i, n) in cat.registry.nodes.iter().enumerate() {
        if p.matches_any([n.hostname.as_str(), n.machine_guid.as_str(), n.id.as_str()]) {
            if let Some(b) = cat.postings.node(i as u32) {
                out |= b;
            }
        }
    }
    out
}

/// Metrics of the nodes whose id matches `p` (token allowlists name ids:
/// a hostname is chosen by whoever ingests, so it cannot grant access).
pub fn nodes_by_id(cat: &Catalog, p: &SimplePattern) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for (i, n) in cat.registry.nodes.iter().enumerate() {
        if p.matches(&n.id) {
            if let Some(b) = cat.postings.node(i as u32) {
                out |= b;
            }
        }
    }
    out
}

/// A node name a request spells out that `allowed` (node ids) does not
/// cover: neither an allowed id nor the hostname or GUID of an allowed node.
/// Unknown names count as outside, so a 403 does not reveal what exists.
pub fn named_outside<'a>(cat: &Catalog, s: &'a Selectors, allowed: &SimplePattern) -> Option<&'a str> {
    let allowed_alias =
        |l: &str| cat.registry.nodes.iter().any(|n| allowed.matches(&n.id) && (n.hostname == l || n.machine_guid == l));
    s.nodes.iter().flat_map(|p| p.literals()).find(|l| !allowed.matches(l) && !allowed_alias(l))
}

fn contexts(cat: &Catalog, p: &SimplePattern) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for (i, c) in cat.registry.contexts.iter().enumerate() {
        if p.matches(&c.id) {
            if let Some(b) = cat.postings.context(i as u32) {
                out |= b;
            }
        }
    }
    out
}

fn instances(cat: &Catalog, p: &SimplePattern) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for (i, inst) in cat.registry.instances.iter().enumerate() {
        let node = &cat.registry.nodes[inst.node as usize];
        let by_guid = format!("{}@{}", inst.id, node.machine_guid);
        let by_host = format!("{}@{}", inst.name, node.hostname);
        let by_id = format!("{}@{}", inst.id, node.id);
        if p.matches_any([inst.id.as_str(), inst.name.as_str(), &by_guid, &by_host, &by_id]) {
            if let Some(b) = cat.postings.instance(i as u32) {
                out |= b;
            }
        }
    }
    out
}

fn dimensions(cat: &Catalog, p: &SimplePattern) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for (name, b) in &cat.postings.by_dimension {
        if p.matches(name) {
            out |= b;
        }
    }
    out
}

fn labels(cat: &Catalog, f: &LabelFilter) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for (i, inst) in cat.registry.instances.iter().enumerate() {
        if f.matches(|k| inst.labels.get(k).map(String::as_str)) {
            if let Some(b) = cat.postings.instance(i as u32) {
                out |= b;
            }
        }
    }
    out
}

/// Narrows `base` by every filter present in `s`.
fn narrow(cat: &Catalog, base: &RoaringBitmap, s: &Selectors) -> RoaringBitmap {
    let mut out = base.clone();
    if let Some(p) = &s.nodes {
        out &= nodes(cat, p);
    }
    if let Some(p) = &s.contexts {
        out &= contexts(cat, p);
    }
    if let Some(p) = &s.instances {
        out &= instances(cat, p);
    }
    if let Some(p) = &s.dimensions {
        out &= dimensions(cat, p);
    }
    if let Some(f) = &s.labels {
        out &= labels(cat, f);
    }
    if s.alerts.is_some() {
        // No alert engine yet: an alert selector matches nothing.
        out.clear();
    }
    out
}

/// Resolves scope and selectors.
pub fn select(cat: &Catalog, scope: &Selectors, selectors: &Selectors) -> Selection {
    let scope = narrow(cat, &cat.postings.all, scope);
    let selected = narrow(cat, &scope, selectors);
    Selection { scope, selected }
}
