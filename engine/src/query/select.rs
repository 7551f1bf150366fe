//! Scope and selectors to bitmaps of MetricIds. Each pattern is evaluated
//! once per distinct node, context, instance or dimension name, and the
//! matching postings are unioned; metrics are never string-matched.

use roaring::RoaringBitmap;

use crate::catalog::Catalog;
use crate::error::{EngineError, Result};
use crate::index::{LabelFilter, SimplePattern};
use crate::query::request::{QueryRequest, Selectors};

/// The outcome of selection.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Everything in scope (the query's universe).
    pub scope: RoaringBitmap,
    /// Metrics to query and return.
    pub selected: RoaringBitmap,
}

/// Which instance identifiers a pattern is tried against (options
/// `match-ids` / `match-names`; neither or both means both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matching {
    pub ids: bool,
    pub names: bool,
}

impl Matching {
    pub const BOTH: Matching = Matching { ids: true, names: true };

    pub fn from_options(match_ids: bool, match_names: bool) -> Matching {
        if match_ids == match_names {
            Matching::BOTH
        } else {
            Matching { ids: match_ids, names: match_names }
        }
    }
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

/// Narrows `sel` to the nodes of `room` (a query made through a room sees
/// only them, in scope and selection alike).
pub fn narrow_to_room(cat: &Catalog, sel: &mut Selection, room: Option<&crate::meta::RoomFilter>) {
    if let Some(r) = room {
        let members = r.metrics(cat);
        sel.scope &= &members;
        sel.selected &= &members;
    }
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

/// Candidates in the API spec's order (2.3): id, name, id@guid, name@host,
/// id@node-id. The `@` forms are built only when a pattern word could match
/// one (it has an `@`, a wildcard or a negation); ids and names are borrowed.
fn instances(cat: &Catalog, p: &SimplePattern, m: Matching) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    let pinned = p.literals().any(|w| w.contains('@')) || p.words() > p.literals().count();
    for (i, inst) in cat.registry.instances.iter().enumerate() {
        let node = &cat.registry.nodes[inst.node as usize];
        let at = |on: bool, name: &str, host: &str| (pinned && on).then(|| format!("{name}@{host}"));
        let (by_guid, by_host, by_id) = (
            at(m.ids, &inst.id, &node.machine_guid),
            at(m.names, &inst.name, &node.hostname),
            at(m.ids, &inst.id, &node.id),
        );
        let name = (m.names && (inst.name != inst.id || !m.ids)).then_some(inst.name.as_str());
        let cands = [m.ids.then_some(inst.id.as_str()), name, by_guid.as_deref(), by_host.as_deref(), by_id.as_deref()];
        if p.matches_any(cands.into_iter().flatten()) {
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
fn narrow(cat: &Catalog, base: &RoaringBitmap, s: &Selectors, m: Matching) -> RoaringBitmap {
    let mut out = base.clone();
    if let Some(p) = &s.nodes {
        out &= nodes(cat, p);
    }
    if let Some(p) = &s.contexts {
        out &= contexts(cat, p);
    }
    if let Some(p) = &s.instances {
        out &= instances(cat, p, m);
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

/// Stage 1 of the query path: the request's scope and selectors, narrowed
/// to the caller's node allowlist. Naming a node outside the allowlist is
/// `Forbidden`, so the answer never depends on what the caller cannot see.
pub fn resolve(cat: &Catalog, req: &QueryRequest) -> Result<Selection> {
    let matching = Matching::from_options(req.options.match_ids, req.options.match_names);
    let mut sel = select(cat, &req.scope, &req.selectors, matching);
    if let Some(allowed) = &req.allowed_nodes {
        for s in [&req.scope, &req.selectors] {
            if let Some(n) = named_outside(cat, s, allowed) {
                return Err(EngineError::Forbidden(format!("node '{n}' is outside this token's allowlist")));
            }
        }
        let visible = nodes_by_id(cat, allowed);
        sel.scope &= &visible;
        sel.selected &= &visible;
    }
    narrow_to_room(cat, &mut sel, req.room.as_ref());
    Ok(sel)
}

/// Resolves scope and selectors.
pub fn select(cat: &Catalog, scope: &Selectors, selectors: &Selectors, m: Matching) -> Selection {
    let scope = narrow(cat, &cat.postings.all, scope, m);
    let selected = narrow(cat, &scope, selectors, m);
    Selection { scope, selected }
}
