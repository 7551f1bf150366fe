//! The live snapshot of a set of nodes: for each node the caller may see,
//! whether it is online (age of its newest sample) and the latest value of
//! every dimension of the subscribed contexts. Streams call this once per
//! tick per connection; it reads one short run per metric (see
//! [`crate::meta::latest`]), never a query plan.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use crate::catalog::Catalog;
use crate::index::SimplePattern;
use crate::meta::{latest, Span};
use crate::storage::Store;

/// Contexts a stream carries when neither the server nor the subscriber
/// names others: CPU, memory, load, network and disk I/O.
pub const DEFAULT_CONTEXTS: [&str; 5] = ["system.cpu", "system.ram", "system.load", "net.net", "disk.io"];

/// What one subscriber watches.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// Context ids (simple pattern).
    pub contexts: SimplePattern,
    /// Node id, hostname or machine GUID (simple pattern); `None` = all.
    pub nodes: Option<SimplePattern>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription { contexts: default_contexts(), nodes: None }
    }
}

/// The pattern of [`DEFAULT_CONTEXTS`].
pub fn default_contexts() -> SimplePattern {
    SimplePattern::parse_list(&DEFAULT_CONTEXTS).unwrap_or_else(|_| SimplePattern::match_all())
}

/// Latest values of one instance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InstanceValues {
    /// End time of the newest point among its dimensions.
    pub t: i64,
    /// Dimension name -> value.
    pub values: BTreeMap<String, f64>,
}

/// One context on one node.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContextValues {
    pub units: String,
    /// Instance id -> values.
    pub instances: BTreeMap<String, InstanceValues>,
}

/// One node of a snapshot.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeSnapshot {
    pub id: String,
    pub hostname: String,
    pub machine_guid: String,
    /// Newest per-second (tier 0) sample of any of the node's metrics
    /// (epoch seconds); `None` when only rollups remain.
    pub last_seen: Option<i64>,
    /// `now - last_seen`.
    pub age_s: Option<i64>,
    /// Still being collected (the rule of `/api/v2/nodes`: newest sample at
    /// most two collection intervals, and never less than 10 s, old).
    pub online: bool,
    /// Context id -> latest values (only subscribed contexts with data).
    pub contexts: BTreeMap<String, ContextValues>,
}

/// The nodes `allowed` (node ids) and `sub` let through, in registration
/// order, with the latest values of the subscribed contexts.
pub fn snapshot(
    cat: &Catalog,
    store: &Store,
    sub: &Subscription,
    allowed: Option<&SimplePattern>,
    now: i64,
    tiers: usize,
) -> Vec<NodeSnapshot> {
    let reg = cat.registry();
    let mut in_contexts = RoaringBitmap::new();
    for (i, c) in reg.contexts().iter().enumerate() {
        if sub.contexts.matches(&c.id) {
            if let Some(b) = cat.postings().context(i as u32) {
                in_contexts |= b;
            }
        }
    }
    let mut out = Vec::new();
    for (i, n) in reg.nodes().iter().enumerate() {
        if allowed.is_some_and(|p| !p.matches(&n.id)) {
            continue;
        }
        if sub.nodes.as_ref().is_some_and(|p| !p.matches_any(n.pattern_names())) {
            continue;
        }
        let Some(all) = cat.postings().node(i as u32) else { continue };
        if Span::of(store, all.iter(), tiers).last.is_none() {
            continue;
        }
        // The newest per-second sample: rollup points end at the end of their
        // (still open) minute or hour, which says nothing about freshness.
        let span = all.iter().fold(Span::default(), |s, m| {
            let last = store.extent(m, 0).map(|e| e.last);
            s.merge(Span { first: last, last, update_every: store.update_every(m) })
        });
        let mut contexts: BTreeMap<String, ContextValues> = BTreeMap::new();
        for l in latest::latest(store, &(all & &in_contexts), tiers) {
            let inst = reg.instance_of(l.metric);
            let ctx = &reg.contexts()[inst.context as usize];
            let c = contexts
                .entry(ctx.id.clone())
                .or_insert_with(|| ContextValues { units: ctx.units.clone(), instances: BTreeMap::new() });
            let iv = c.instances.entry(inst.id.clone()).or_insert(InstanceValues { t: l.t, values: BTreeMap::new() });
            iv.t = iv.t.max(l.t);
            iv.values.insert(reg.metric(l.metric).dimension.clone(), l.value);
        }
        out.push(NodeSnapshot {
            id: n.id.clone(),
            hostname: n.hostname.clone(),
            machine_guid: n.machine_guid.clone(),
            last_seen: span.last,
            age_s: span.last.map(|l| (now - l).max(0)),
            online: span.live(now),
            contexts,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Clock, Engine, EngineConfig};
    use crate::ingest::{IngestBatch, NodeSpec, Point, SeriesSpec};

    fn series(node: &str, context: &str, instance: &str, dim: &str, points: &[(i64, f64)]) -> SeriesSpec {
        SeriesSpec {
            node: Some(node.into()),
            context: context.into(),
            instance: Some(instance.into()),
            dimension: dim.into(),
            units: Some("u".into()),
            title: None,
            chart_type: None,
            update_every: Some(1),
            labels: Default::default(),
            points: points.iter().map(|&(t, v)| Point { t, value: Some(v), anomalous: false }).collect(),
        }
    }

    #[test]
    fn latest_values_per_node_filtered_by_subscription_and_allowlist() {
        let now = 1_800_000_000;
        let e = Engine::new(EngineConfig::default(), Clock::Fixed(now.into()));
        let batch = IngestBatch {
            nodes: vec![NodeSpec {
                id: "a".into(),
                hostname: Some("host-a".into()),
                machine_guid: None,
                labels: Default::default(),
            }],
            series: vec![
                series("a", "system.cpu", "system.cpu", "user", &[(now - 2, 1.0), (now - 1, 2.0)]),
                series("a", "net.net", "net.eth0", "received", &[(now - 1, 5.0)]),
                series("a", "apps.cpu", "apps.cpu", "x", &[(now - 1, 9.0)]),
                series("b", "system.cpu", "system.cpu", "user", &[(now - 100, 7.0)]),
            ],
        };
        e.ingest(&batch).expect("ingest");
        let st = e.read().expect("read");
        let all = snapshot(&st.catalog, &st.store, &Subscription::default(), None, now, 3);
        assert_eq!(all.len(), 2);
        let a = &all[0];
        assert_eq!((a.id.as_str(), a.hostname.as_str(), a.online, a.age_s), ("a", "host-a", true, Some(1)));
        assert_eq!(a.contexts["system.cpu"].instances["system.cpu"].values["user"], 2.0);
        assert_eq!(a.contexts["net.net"].instances["net.eth0"].values["received"], 5.0);
        assert!(!a.contexts.contains_key("apps.cpu"), "not a default context");
        assert!(!all[1].online && all[1].age_s == Some(100));
        let only_b = SimplePattern::parse_list(&["b"]).expect("pattern");
        let mine = snapshot(&st.catalog, &st.store, &Subscription::default(), Some(&only_b), now, 3);
        assert_eq!(mine.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["b"]);
        let sub = Subscription {
            contexts: SimplePattern::parse_list(&["apps.*"]).expect("pattern"),
            nodes: Some(SimplePattern::parse_list(&["host-a"]).expect("pattern")),
        };
        let narrowed = snapshot(&st.catalog, &st.store, &sub, None, now, 3);
        assert_eq!(narrowed.len(), 1);
        assert_eq!(narrowed[0].contexts.keys().collect::<Vec<_>>(), ["apps.cpu"]);
        // A node pattern picks the same nodes here as in queries: names
        // tried hostname, GUID, id, the first decisive one deciding (a
        // stream tried the id first, so `!a,*` and `!host-a,*` swapped).
        let guid = st.catalog.registry().nodes()[0].machine_guid.clone();
        for p in ["!a,*", "!host-a,*", &format!("!{guid},*"), "a", "host-*", "!b,*"] {
            let nodes = Some(SimplePattern::parse_list(&[p]).expect("pattern"));
            let sub = Subscription { contexts: SimplePattern::match_all(), nodes };
            let streamed: Vec<String> =
                snapshot(&st.catalog, &st.store, &sub, None, now, 3).into_iter().map(|n| n.id).collect();
            let queried = crate::query::select::nodes(&st.catalog, sub.nodes.as_ref().expect("pattern"));
            let queried: Vec<String> = st
                .catalog
                .registry()
                .nodes()
                .iter()
                .enumerate()
                .filter(|(i, _)| st.catalog.postings().node(*i as u32).is_some_and(|b| !(b & &queried).is_empty()))
                .map(|(_, n)| n.id.clone())
                .collect();
            assert_eq!(streamed, queried, "{p}");
        }
    }
}
