//! What strata holds, counted: the visible nodes, contexts, instances and
//! metrics, and how many of each are still collected. This is the summary
//! `/api/v2/info` gives, where a Netdata agent reports the same counts.
//!
//! "Collected" uses the liveness rule of the listings ([`Span::live`]): a
//! metric is collected while its newest point is at most two collection
//! intervals (and 10 s) old; a node, context or instance is collected while
//! any of its visible metrics is. Contexts count once per node (a context
//! on three nodes is three available contexts and one unique one), as
//! Netdata counts them. Per tier: how many visible metrics hold data there
//! and the first and last sample time it holds of them.

use std::collections::BTreeSet;

use crate::catalog::Catalog;
use crate::meta::{Span, Visible};
use crate::query::plan::retention::tier_ranges;
use crate::storage::Store;

/// How many things are visible, and how many of them are still collected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub collected: u64,
    pub available: u64,
}

/// The counts of one visible set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub nodes: Count,
    /// Per node: (node, context) pairs.
    pub contexts: Count,
    /// Distinct context ids.
    pub unique_contexts: u64,
    pub instances: Count,
    pub metrics: Count,
    /// One entry per tier in use, tier 0 first.
    pub tiers: Vec<TierHoldings>,
}

/// What one tier holds of the visible metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierHoldings {
    /// Visible metrics with data in this tier.
    pub metrics: u64,
    /// First and last sample time over them (`None` when it holds none).
    pub range: Option<(i64, i64)>,
}

/// Counts `visible`, with liveness judged at `now`.
pub fn count(cat: &Catalog, store: &Store, visible: &Visible, tiers: usize, now: i64) -> Inventory {
    let reg = cat.registry();
    // Each set holds what is available; the `live_*` sets what is collected.
    let (mut nodes, mut live_nodes) = (BTreeSet::new(), BTreeSet::new());
    let (mut contexts, mut live_contexts) = (BTreeSet::new(), BTreeSet::new());
    let (mut instances, mut live_instances) = (BTreeSet::new(), BTreeSet::new());
    let mut unique = BTreeSet::new();
    let mut live_metrics = 0;
    let mut held = vec![TierHoldings::default(); tiers.clamp(1, crate::storage::TIERS)];
    let ntiers = held.len();
    for m in visible {
        let i = reg.metric(m).instance;
        let inst = &reg.instances()[i as usize];
        let node_context = (inst.node, inst.context);
        nodes.insert(inst.node);
        contexts.insert(node_context);
        instances.insert(i);
        unique.insert(inst.context);
        if Span::of(store, [m], tiers).live(now) {
            live_metrics += 1;
            live_nodes.insert(inst.node);
            live_contexts.insert(node_context);
            live_instances.insert(i);
        }
        for (h, r) in held.iter_mut().zip(tier_ranges(store, m, ntiers)) {
            if let Some((first, last)) = r {
                h.metrics += 1;
                h.range = Some(h.range.map_or((first, last), |(f, l)| (f.min(first), l.max(last))));
            }
        }
    }
    let count = |live: usize, all: usize| Count { collected: live as u64, available: all as u64 };
    Inventory {
        nodes: count(live_nodes.len(), nodes.len()),
        contexts: count(live_contexts.len(), contexts.len()),
        unique_contexts: unique.len() as u64,
        instances: count(live_instances.len(), instances.len()),
        metrics: Count { collected: live_metrics, available: visible.len() },
        tiers: held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SeriesMeta;
    use crate::storage::StorageConfig;

    #[test]
    fn counts_what_is_visible_and_what_is_still_collected() {
        let mut cat = Catalog::default();
        let mut store = Store::new(StorageConfig::default());
        let now = 10_000;
        // (node, context, instance, dimension, newest sample), oldest
        // first: the store refuses samples far behind what it has.
        let series = [
            ("n1", "cpu", "cpu", "system", now - 3600),
            ("n1", "disk", "disk.sda", "reads", now - 3600),
            ("n2", "cpu", "cpu", "user", now - 3600),
            ("n1", "cpu", "cpu", "user", now - 1),
            ("n2", "net", "net.eth0", "in", now - 5),
        ];
        let mut visible = Visible::new();
        for (node, context, instance, dimension, t) in series {
            let meta = SeriesMeta { node, context, instance, dimension, update_every: 1, ..Default::default() };
            let m = cat.register(&meta);
            let written = store.write(m, 1, t, Some(1.0), false).expect("write");
            assert_eq!(written, crate::storage::WriteOutcome::Written, "{node} {dimension} at {t}");
            visible.insert(m);
        }
        let all = count(&cat, &store, &visible, 3, now);
        assert_eq!(all.nodes, Count { collected: 2, available: 2 });
        assert_eq!(all.contexts, Count { collected: 2, available: 4 }, "n1 cpu and n2 net are live");
        assert_eq!(all.unique_contexts, 3);
        assert_eq!(all.instances, Count { collected: 2, available: 4 });
        assert_eq!(all.metrics, Count { collected: 2, available: 5 });
        assert_eq!(all.tiers.len(), 3);
        assert_eq!(all.tiers[0], TierHoldings { metrics: 5, range: Some((now - 3600, now - 1)) });
        assert_eq!(all.tiers[1].metrics, 5, "every sample is in an open minute too");
        // Only what is visible counts: n2's metrics hidden.
        let n1: Visible = [0, 1, 3].into_iter().collect();
        let mine = count(&cat, &store, &n1, 3, now);
        assert_eq!((mine.nodes.available, mine.unique_contexts, mine.metrics.available), (1, 2, 3));
        let none = count(&cat, &store, &Visible::new(), 3, now);
        assert_eq!((none.nodes, none.metrics, none.unique_contexts), (Count::default(), Count::default(), 0));
        assert!(none.tiers.iter().all(|t| *t == TierHoldings::default()), "{none:?}");
    }
}
