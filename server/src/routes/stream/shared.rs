//! Snapshots shared by the connections that tick in the same second with
//! the same subscription and node allowlist: a tick of every context of a
//! large fleet takes a core a tenth of a second or more to build, and
//! twenty dashboards on the same view built it twenty times a second.
//!
//! Invariant: a connection's tick in wall-clock tick period `p` (the
//! stream interval, a second by default) carries the snapshot, and the
//! engine time `t` it was taken at, that the first of them built in `p`
//! (after a turn of the server's build permits,
//! [`crate::StreamConfig::builds`]); an ingest later in that period shows
//! from the next tick on. The key is the wall clock's period, not the
//! engine's second: a pinned engine clock (tests) still gets a fresh
//! snapshot every period. A lookup drops the entries of every other
//! period (a clock stepped back must not meet them again). The list lock is held only to find or add
//! an entry, never while building: a connection that finds a build under
//! way waits on that entry's cell alone.

use std::sync::{Arc, Mutex};

use strata_engine::index::SimplePattern;
use strata_engine::views::snapshot::Subscription;
use tokio::sync::OnceCell;

/// Distinct (subscription, allowlist) pairs kept for one period; past
/// that, a connection builds its own tick.
const MAX_SHARED: usize = 256;

/// A period's snapshot: the engine time it was taken at, and the `nodes`
/// array as JSON.
pub type Nodes = Arc<OnceCell<(i64, Arc<str>)>>;

struct Entry {
    /// The wall clock's tick period.
    s: u64,
    sub: Subscription,
    allow: Option<SimplePattern>,
    nodes: Nodes,
}

/// The snapshots of the current tick period.
#[derive(Default)]
pub struct SharedTicks {
    entries: Mutex<Vec<Entry>>,
}

impl std::fmt::Debug for SharedTicks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTicks").finish_non_exhaustive()
    }
}

impl SharedTicks {
    /// The cell of wall-clock tick period `s`'s snapshot for `sub` seen
    /// through `allow`: built already, being built, or to be built by the
    /// caller. A new cell, shared with no one, where the list is full (or
    /// its lock was poisoned).
    pub fn cell(&self, s: u64, sub: &Subscription, allow: Option<&SimplePattern>) -> Nodes {
        let Ok(mut entries) = self.entries.lock() else { return Nodes::default() };
        entries.retain(|e| e.s == s);
        if let Some(e) = entries.iter().find(|e| e.s == s && e.sub == *sub && e.allow.as_ref() == allow) {
            return e.nodes.clone();
        }
        let nodes = Nodes::default();
        if entries.len() < MAX_SHARED {
            entries.push(Entry { s, sub: sub.clone(), allow: allow.cloned(), nodes: nodes.clone() });
        }
        nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(contexts: &str) -> Subscription {
        Subscription { contexts: SimplePattern::parse_list(&[contexts]).expect("pattern"), nodes: None }
    }

    #[test]
    fn one_cell_per_second_subscription_and_allowlist() {
        let s = SharedTicks::default();
        let a = s.cell(10, &sub("system.*"), None);
        assert!(Arc::ptr_eq(&a, &s.cell(10, &sub("system.*"), None)), "same second and view: shared");
        let allow = SimplePattern::parse_list(&["n1"]).expect("pattern");
        assert!(!Arc::ptr_eq(&a, &s.cell(10, &sub("system.*"), Some(&allow))), "another allowlist");
        assert!(!Arc::ptr_eq(&a, &s.cell(10, &sub("disk.*"), None)), "another subscription");
        let next = s.cell(11, &sub("system.*"), None);
        assert!(!Arc::ptr_eq(&a, &next), "the next period builds anew");
        assert_eq!(s.entries.lock().expect("lock").len(), 1, "earlier periods dropped");
        // A clock stepped back does not meet the later period's snapshot again.
        s.cell(10, &sub("system.*"), None);
        assert!(!Arc::ptr_eq(&next, &s.cell(11, &sub("system.*"), None)), "other periods dropped");
    }

    #[test]
    fn a_full_list_hands_out_unshared_cells() {
        let s = SharedTicks::default();
        for i in 0..MAX_SHARED {
            s.cell(5, &sub(&format!("c{i}")), None);
        }
        let extra = s.cell(5, &sub("extra"), None);
        assert!(!Arc::ptr_eq(&extra, &s.cell(5, &sub("extra"), None)));
        assert!(Arc::ptr_eq(&s.cell(5, &sub("c0"), None), &s.cell(5, &sub("c0"), None)), "kept ones still shared");
    }
}
