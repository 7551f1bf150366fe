//! Hash maps keyed by [`MetricId`] (or another index the catalog hands
//! out, such as a registry position). Ids are small integers that the
//! catalog hands out in order, never values a client picks, so they need no
//! flood-resistant hash: a multiply spreads them over the table (its low
//! bits place the entry, its high bits tag it). SipHash here was about 6 %
//! of an automatic-tier query's CPU (one lookup per metric and segment) and
//! over 1 % of a bulk load's (one per metric and open span).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::model::MetricId;

/// A map from metric id.
pub type IdMap<V> = HashMap<MetricId, V, BuildHasherDefault<IdHasher>>;

/// An empty [`IdMap`].
pub fn new<V>() -> IdMap<V> {
    IdMap::default()
}

/// An empty [`IdMap`] with room for `n` entries (no regrowth up to them).
pub fn with_capacity<V>(n: usize) -> IdMap<V> {
    IdMap::with_capacity_and_hasher(n, Default::default())
}

/// Fibonacci hashing of one integer.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

/// 2^64 / golden ratio, odd: multiplying by it permutes the integers.
const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only for keys other than a plain id (none today): still a hash.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(K);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(K);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_order_spread_over_the_table() {
        let hash = |m: MetricId| {
            let mut h = IdHasher::default();
            h.write_u32(m);
            h.finish()
        };
        // Low bits place an entry: consecutive ids land in distinct slots of
        // a 1,024-slot table; high bits tag it: they vary too.
        let slots: std::collections::HashSet<u64> = (0..1024).map(|m| hash(m) & 1023).collect();
        assert_eq!(slots.len(), 1024);
        let tags: std::collections::HashSet<u64> = (0..1024).map(|m| hash(m) >> 57).collect();
        assert!(tags.len() > 100, "{} distinct tags", tags.len());
        let mut map = new();
        for m in 0..10_000u32 {
            map.insert(m * 7, m);
        }
        assert!((0..10_000u32).all(|m| map.get(&(m * 7)) == Some(&m)));
        assert_eq!(map.get(&1), None);
    }
}
