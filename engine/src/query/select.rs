//! Scope and selectors to bitmaps of MetricIds. Each pattern is evaluated
//! once per distinct node, context, instance or dimension name, and the
//! matching postings are unioned; metrics are never string-matched.

use std::borrow::Cow;

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

/// A union of postings that borrows while it has one member, so a selector
/// naming one node, context or instance copies no bitmap.
#[derive(Default)]
enum Union<'a> {
    #[default]
    Empty,
    One(&'a RoaringBitmap),
    Many(RoaringBitmap),
}

impl<'a> Union<'a> {
    fn add(&mut self, b: &'a RoaringBitmap) {
        *self = match std::mem::take(self) {
            Union::Empty => Union::One(b),
            Union::One(a) => Union::Many(a | b),
            Union::Many(mut m) => {
                m |= b;
                Union::Many(m)
            }
        };
    }

    fn into_cow(self) -> Cow<'a, RoaringBitmap> {
        match self {
            Union::Empty => Cow::Owned(RoaringBitmap::new()),
            Union::One(b) => Cow::Borrowed(b),
            Union::Many(m) => Cow::Owned(m),
        }
    }
}

/// Metrics of the nodes matching `p` (hostname, machine GUID, node id).
pub fn nodes(cat: &Catalog, p: &SimplePattern) -> RoaringBitmap {
    node_union(cat, p).into_owned()
}

fn node_union<'a>(cat: &'a Catalog, p: &SimplePattern) -> Cow<'a, RoaringBitmap> {
    let mut out = Union::default();
    for (i, n) in cat.registry().nodes().iter().enumerate() {
        if p.matches_any(n.pattern_names()) {
            if let Some(b) = cat.postings().node(i as u32) {
                out.add(b);
            }
        }
    }
    out.into_cow()
}

/// Metrics of the nodes whose id matches `p` (token allowlists name ids:
/// a hostname is chosen by whoever ingests, so it cannot grant access).
pub fn nodes_by_id(cat: &Catalog, p: &SimplePattern) -> RoaringBitmap {
    let mut out = RoaringBitmap::new();
    for (i, n) in cat.registry().nodes().iter().enumerate() {
        if p.matches(&n.id) {
            if let Some(b) = cat.postings().node(i as u32) {
                out |= b;
            }
        }
    }
    out
}

/// The id of a node that the allowlist entry `entry` names only by its
/// hostname or machine GUID: `None` when `entry` matches some node id, or
/// no node at all (a node that has not reported yet). Allowlists match ids
/// alone, so an entry that only matches a hostname would grant nothing.
pub fn named_by_alias_only<'a>(cat: &'a Catalog, entry: &SimplePattern) -> Option<&'a str> {
    let nodes = cat.registry().nodes();
    if nodes.iter().any(|n| entry.matches(&n.id)) {
        return None;
    }
    nodes.iter().find(|n| entry.matches_any([n.hostname.as_str(), n.machine_guid.as_str()])).map(|n| n.id.as_str())
}

/// A node name a request spells out that `allowed` (node ids) does not
/// cover: neither an allowed id nor the hostname or GUID of an allowed node.
/// Unknown names count as outside, so a 403 does not reveal what exists.
pub fn named_outside<'a>(cat: &Catalog, s: &'a Selectors, allowed: &SimplePattern) -> Option<&'a str> {
    let allowed_alias = |l: &str| {
        cat.registry().nodes().iter().any(|n| allowed.matches(&n.id) && (n.hostname == l || n.machine_guid == l))
    };
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

fn contexts<'a>(cat: &'a Catalog, p: &SimplePattern) -> Cow<'a, RoaringBitmap> {
    let mut out = Union::default();
    if let Some(words) = p.exact_words() {
        for b in words.iter().filter_map(|w| cat.registry().context_idx(w)).filter_map(|i| cat.postings().context(i)) {
            out.add(b);
        }
        return out.into_cow();
    }
    for (i, c) in cat.registry().contexts().iter().enumerate() {
        if p.matches(&c.id) {
            if let Some(b) = cat.postings().context(i as u32) {
                out.add(b);
            }
        }
    }
    out.into_cow()
}

/// Candidates in the API spec's order (2.3): id, name, id@guid, name@host,
/// id@node-id. The `@` forms are built only when a pattern word could match
/// one (it has an `@`, a wildcard or a negation); ids and names are borrowed.
fn instances<'a>(cat: &'a Catalog, p: &SimplePattern, m: Matching) -> Cow<'a, RoaringBitmap> {
    let mut out = Union::default();
    // Exact names without an `@` can only equal an id or a name: looked up,
    // not tested against every instance.
    if let Some(words) = p.exact_words().filter(|w| w.iter().all(|w| !w.contains('@'))) {
        for w in words {
            for &i in cat.registry().instances_named(w) {
                let inst = &cat.registry().instances()[i as usize];
                if (m.ids && inst.id == w) || (m.names && inst.name == w) {
                    if let Some(b) = cat.postings().instance(i) {
                        out.add(b);
                    }
                }
            }
        }
        return out.into_cow();
    }
    let pinned = p.literals().any(|w| w.contains('@')) || p.words() > p.literals().count();
    for (i, inst) in cat.registry().instances().iter().enumerate() {
        let node = &cat.registry().nodes()[inst.node as usize];
        let at = |on: bool, name: &str, host: &str| (pinned && on).then(|| format!("{name}@{host}"));
        let (by_guid, by_host, by_id) = (
            at(m.ids, &inst.id, &node.machine_guid),
            at(m.names, &inst.name, &node.hostname),
            at(m.ids, &inst.id, &node.id),
        );
        let name = (m.names && (inst.name != inst.id || !m.ids)).then_some(inst.name.as_str());
        let cands = [m.ids.then_some(inst.id.as_str()), name, by_guid.as_deref(), by_host.as_deref(), by_id.as_deref()];
        if p.matches_any(cands.into_iter().flatten()) {
            if let Some(b) = cat.postings().instance(i as u32) {
                out.add(b);
            }
        }
    }
    out.into_cow()
}

fn dimensions<'a>(cat: &'a Catalog, p: &SimplePattern) -> Cow<'a, RoaringBitmap> {
    let mut out = Union::default();
    if let Some(words) = p.exact_words() {
        for b in words.iter().filter_map(|w| cat.postings().by_dimension.get(*w)) {
            out.add(b);
        }
        return out.into_cow();
    }
    for (name, b) in &cat.postings().by_dimension {
        if p.matches(name) {
            out.add(b);
        }
    }
    out.into_cow()
}

fn labels<'a>(cat: &'a Catalog, f: &LabelFilter) -> Cow<'a, RoaringBitmap> {
    let mut out = Union::default();
    for (i, inst) in cat.registry().instances().iter().enumerate() {
        if f.matches(|k| inst.labels.get(k).map(String::as_str)) {
            if let Some(b) = cat.postings().instance(i as u32) {
                out.add(b);
            }
        }
    }
    out.into_cow()
}

/// Narrows `base` by every filter present in `s`.
fn narrow(cat: &Catalog, base: &RoaringBitmap, s: &Selectors, m: Matching) -> RoaringBitmap {
    if s.alerts.is_some() {
        // No alert engine yet: an alert selector matches nothing.
        return RoaringBitmap::new();
    }
    let mut filters: Vec<Cow<'_, RoaringBitmap>> = [
        s.nodes.as_ref().map(|p| node_union(cat, p)),
        s.contexts.as_ref().map(|p| contexts(cat, p)),
        s.instances.as_ref().map(|p| instances(cat, p, m)),
        s.dimensions.as_ref().map(|p| dimensions(cat, p)),
        s.labels.as_ref().map(|f| labels(cat, f)),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Only the smallest filter is copied; the others and `base` (often
    // every metric) are intersected into it.
    filters.sort_by_key(|b| b.len());
    let mut filters = filters.into_iter();
    let Some(first) = filters.next() else { return base.clone() };
    let mut out = first.into_owned();
    for b in filters {
        out &= &*b;
    }
    out &= base;
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
    let scope = narrow(cat, &cat.postings().all, scope, m);
    let selected = narrow(cat, &scope, selectors, m);
    Selection { scope, selected }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::model::SeriesMeta;

    const NAMES: [&str; 5] = ["cpu", "disk", "disk.sda", "net", "a@b"];

    /// Instances, contexts and dimensions drawn from a few names, so that
    /// names repeat across nodes and contexts.
    fn catalog(series: &[(u8, u8, u8, u8)]) -> Catalog {
        let mut cat = Catalog::default();
        for &(n, c, i, d) in series {
            let node = format!("node{}", n % 3);
            let context = format!("ctx.{}", NAMES[usize::from(c) % NAMES.len()]);
            let meta = SeriesMeta {
                node: &node,
                context: &context,
                instance: NAMES[usize::from(i) % NAMES.len()],
                dimension: NAMES[usize::from(d) % NAMES.len()],
                update_every: 1,
                ..Default::default()
            };
            cat.register(&meta);
        }
        cat
    }

    fn pattern(words: &[String], generic: bool) -> SimplePattern {
        let mut w = words.to_vec();
        // A negative word that matches nothing changes no answer, but
        // makes the pattern inexact: the generic, test-every-name path.
        if generic {
            w.push("!\u{1}never".into());
        }
        SimplePattern::parse_list(&w).expect("pattern")
    }

    #[test]
    fn allowlist_entries_naming_a_node_by_alias_only() {
        let mut cat = Catalog::default();
        cat.upsert_node("web-1", Some("web-1.example"), None, None);
        cat.upsert_node("db-1", Some("web-1"), None, None);
        let guid = cat.registry().nodes()[0].machine_guid.clone();
        let p = |w: &str| SimplePattern::parse_list(&[w]).expect("pattern");
        assert_eq!(named_by_alias_only(&cat, &p("web-1.example")), Some("web-1"));
        assert_eq!(named_by_alias_only(&cat, &p(&guid)), Some("web-1"));
        assert_eq!(named_by_alias_only(&cat, &p("*.example")), Some("web-1"), "a pattern over hostnames only");
        // An id (even one that is another node's hostname) is an id.
        assert_eq!(named_by_alias_only(&cat, &p("web-1")), None);
        assert_eq!(named_by_alias_only(&cat, &p("db-*")), None);
        // A node that has not reported yet.
        assert_eq!(named_by_alias_only(&cat, &p("web-9")), None);
    }

    proptest! {
        /// Looking exact names up selects exactly what testing every
        /// node, context, instance and dimension selects.
        #[test]
        fn exact_names_select_what_the_generic_path_selects(
            series in prop::collection::vec((0u8..3, 0u8..5, 0u8..5, 0u8..5), 1..40),
            words in prop::collection::vec(
                prop::sample::select(vec!["cpu", "disk", "disk.sda", "net", "a@b", "ctx.cpu", "ctx.net", "node1", "zzz"]),
                1..4,
            ),
            ids in any::<bool>(),
            names in any::<bool>(),
        ) {
            let cat = catalog(&series);
            let words: Vec<String> = words.into_iter().map(String::from).collect();
            let (exact, generic) = (pattern(&words, false), pattern(&words, true));
            prop_assert!(exact.exact_words().is_some());
            prop_assert!(generic.exact_words().is_none());
            let m = Matching::from_options(ids, names);
            for field in 0..4 {
                let sel = |p: &SimplePattern| {
                    let mut s = Selectors::default();
                    match field {
                        0 => s.nodes = Some(p.clone()),
                        1 => s.contexts = Some(p.clone()),
                        2 => s.instances = Some(p.clone()),
                        _ => s.dimensions = Some(p.clone()),
                    }
                    s
                };
                let all = Selectors::default();
                let fast = select(&cat, &sel(&exact), &all, m);
                let slow = select(&cat, &sel(&generic), &all, m);
                prop_assert_eq!(&fast.scope, &slow.scope, "field {}", field);
                let fast = select(&cat, &all, &sel(&exact), m);
                let slow = select(&cat, &all, &sel(&generic), m);
                prop_assert_eq!(fast.selected, slow.selected, "field {}", field);
            }
        }

        /// Several selectors at once intersect, whatever their order.
        #[test]
        fn selectors_intersect(
            series in prop::collection::vec((0u8..3, 0u8..5, 0u8..5, 0u8..5), 1..40),
            ctx in prop::sample::select(vec!["ctx.cpu", "ctx.disk", "ctx.*"]),
            inst in prop::sample::select(vec!["cpu", "disk*", "net"]),
            dim in prop::sample::select(vec!["cpu", "disk", "*"]),
        ) {
            let cat = catalog(&series);
            let p = |w: &str| Some(SimplePattern::parse_list(&[w]).expect("pattern"));
            let s = Selectors { contexts: p(ctx), instances: p(inst), dimensions: p(dim), ..Default::default() };
            let got = select(&cat, &Selectors::default(), &s, Matching::BOTH).selected;
            let want: RoaringBitmap = (0..cat.registry().metrics().len() as u32)
                .filter(|&m| {
                    let (c, i) = (cat.registry().context_of(m), cat.registry().instance_of(m));
                    s.contexts.as_ref().is_some_and(|p| p.matches(&c.id))
                        && s.instances.as_ref().is_some_and(|p| p.matches(&i.id))
                        && s.dimensions.as_ref().is_some_and(|p| p.matches(&cat.registry().metric(m).dimension))
                })
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
