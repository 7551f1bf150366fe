//! Blocks of one metric's points inside an open span, shared copy-on-write,
//! that hold only the slots written.
//!
//! An open span divides each metric's points into blocks of [`RAW_BLOCK`]
//! (tier 0) or [`AGG_BLOCK`] (tiers 1-2) slots. A block is created when the
//! first point in its range is written, and holds the window of slots
//! `first..first + len` that covers what was written, growing at either
//! end: so a series with one sample costs a few bytes, and a dense series
//! gets few, large blocks.
//!
//! Invariants: `first` and `len` are multiples of 8 (bitmaps stay whole
//! bytes); a slot outside the window holds no point; slots inside it that
//! were never written are zero with their validity bits clear (tier 0) or
//! have `count == 0` (tiers 1-2), which both read as gaps.
//!
//! Blocks sit behind an `Arc`: a query takes a consistent view of the head
//! by cloning the `Arc`s of the blocks it needs, under a short lock, and the
//! writer copies a block only when it writes to one a reader still holds
//! (`Arc::make_mut`), so readers never wait for writers and writers never
//! wait for readers.

use std::sync::Arc;

use super::row::AggColumns;

// Block size trades a query's per-block costs (one `Arc` clone and drop
// when the view is taken and released, one run for the scan to step
// through) against the bytes a writer copies when a reader shares its
// newest block. Memory is not part of the trade since blocks hold only the
// slots written. Measured on the criterion query bench (1,000 metrics x
// 24 h, head spans open): blocks of 512/128 points instead of 64/16 took
// the view's take and release from about 19.5 to 9 ms.

/// Slots per tier-0 block (a multiple of 8).
pub const RAW_BLOCK: usize = 512;
/// Slots per tier-1/2 block (a multiple of 8).
pub const AGG_BLOCK: usize = 128;

/// The column buffers of a block; every column has one entry per slot of
/// the window (bitmaps one bit).
pub trait Columns: Clone + Default {
    /// Slots in a whole block.
    const PER: usize;
    /// Slots the window holds.
    fn slots(&self) -> usize;
    /// Adds `front` and `back` empty slots (multiples of 8).
    fn grow(&mut self, front: usize, back: usize);
    /// Heap bytes held.
    fn heap_bytes(&self) -> usize;
}

/// Tier-0 samples of the window: values with validity and anomaly bits
/// (LSB first).
#[derive(Debug, Clone, Default)]
pub struct RawCols {
    pub values: Vec<f64>,
    pub valid: Vec<u8>,
    pub anomaly: Vec<u8>,
}

/// A block: its window's first slot and the columns from there.
#[derive(Debug, Clone, Default)]
pub struct Block<C> {
    first: u32,
    pub cols: C,
}

pub type RawBlock = Block<RawCols>;
pub type AggBlock = Block<AggColumns>;

impl<C: Columns> Block<C> {
    /// The block's first held slot.
    pub fn first(&self) -> usize {
        self.first as usize
    }

    /// The column index of slot `k`, if the window holds it.
    #[inline]
    pub fn index(&self, k: usize) -> Option<usize> {
        k.checked_sub(self.first as usize).filter(|&i| i < self.cols.slots())
    }

    /// The column index of slot `k`, growing the window to hold it.
    #[inline]
    pub fn index_mut(&mut self, k: usize) -> usize {
        debug_assert!(k < C::PER);
        let (first, len) = (self.first as usize, self.cols.slots());
        if len == 0 {
            self.first = (k & !7) as u32;
            self.cols.grow(0, 8);
        } else if k < first {
            self.first = (k & !7) as u32;
            self.cols.grow(first - (k & !7), 0);
        } else if k >= first + len {
            self.cols.grow(0, (k & !7) + 8 - first - len);
        }
        k - self.first as usize
    }

    /// Grows the window at once to hold slots `lo..=hi`, as writing both
    /// would: a writer that knows a run's range reallocates once, not once
    /// per eight slots (growing slot by slot was 7 % of a bulk load's CPU).
    pub fn cover(&mut self, lo: usize, hi: usize) {
        debug_assert!(lo <= hi && hi < C::PER);
        let (lo, hi) = (lo & !7, (hi & !7) + 8);
        let (first, len) = (self.first as usize, self.cols.slots());
        if len == 0 {
            self.first = lo as u32;
            self.cols.grow(0, hi - lo);
            return;
        }
        let (new_lo, new_hi) = (lo.min(first), hi.max(first + len));
        if (new_lo, new_hi) != (first, first + len) {
            self.first = new_lo as u32;
            self.cols.grow(first - new_lo, new_hi - first - len);
        }
    }

    /// Bytes this block holds, its own and its columns'.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.cols.heap_bytes()
    }
}

/// Grows `v` by `front` and `back` default entries. Capacity at least
/// doubles, up to `max` entries, so a series written slot by slot
/// reallocates a logarithmic number of times and a whole block holds no
/// spare capacity. A window past an eighth of the block takes the whole
/// block at once: such a series is dense and fills it, and each
/// reallocation of a server's fragmented heap searched its free lists (the
/// doubling's reallocations were 5 % of a bulk load's CPU, in `malloc`).
fn grow_vec<T: Copy + Default>(v: &mut Vec<T>, front: usize, back: usize, max: usize) {
    let need = v.len() + front + back;
    if need > v.capacity() {
        let want = if need * 8 >= max { max.max(need) } else { need.max((v.capacity() * 2).min(max)) };
        v.reserve_exact(want - v.len());
    }
    if front > 0 {
        v.splice(0..0, std::iter::repeat_n(T::default(), front));
    }
    v.resize(v.len() + back, T::default());
}

impl Columns for RawCols {
    const PER: usize = RAW_BLOCK;

    fn slots(&self) -> usize {
        self.values.len()
    }

    fn grow(&mut self, front: usize, back: usize) {
        grow_vec(&mut self.values, front, back, Self::PER);
        grow_vec(&mut self.valid, front / 8, back / 8, Self::PER / 8);
        grow_vec(&mut self.anomaly, front / 8, back / 8, Self::PER / 8);
    }

    fn heap_bytes(&self) -> usize {
        self.values.capacity() * 8 + self.valid.capacity() + self.anomaly.capacity()
    }
}

impl Columns for AggColumns {
    const PER: usize = AGG_BLOCK;

    fn slots(&self) -> usize {
        self.count.len()
    }

    fn grow(&mut self, front: usize, back: usize) {
        for v in [&mut self.sum, &mut self.min, &mut self.max] {
            grow_vec(v, front, back, Self::PER);
        }
        grow_vec(&mut self.count, front, back, Self::PER);
        grow_vec(&mut self.anomaly_count, front, back, Self::PER);
    }

    fn heap_bytes(&self) -> usize {
        (self.sum.capacity() + self.min.capacity() + self.max.capacity()) * 8
            + (self.count.capacity() + self.anomaly_count.capacity()) * 4
    }
}

/// One metric's blocks in a span: `(block index, block)`, sorted by index.
pub type Blocks<B> = Vec<(u32, Arc<B>)>;

/// The block `bi` of `blocks`, created empty when missing, writable (a
/// copy if a reader shares it). Writes mostly go to the newest block, so
/// that one is found first.
#[inline]
pub fn block_mut<B: Clone + Default>(blocks: &mut Blocks<B>, bi: u32) -> &mut B {
    let at = match blocks.last() {
        Some((last, _)) if *last == bi => blocks.len() - 1,
        Some((last, _)) if *last < bi => {
            blocks.push((bi, Arc::new(B::default())));
            blocks.len() - 1
        }
        None => {
            blocks.push((bi, Arc::new(B::default())));
            0
        }
        Some(_) => match blocks.binary_search_by_key(&bi, |(i, _)| *i) {
            Ok(at) => at,
            Err(at) => {
                blocks.insert(at, (bi, Arc::new(B::default())));
                at
            }
        },
    };
    Arc::make_mut(&mut blocks[at].1)
}

/// The block `bi`, if it exists.
#[inline]
pub fn block<B>(blocks: &Blocks<B>, bi: u32) -> Option<&B> {
    match blocks.last() {
        Some((last, b)) if *last == bi => Some(b),
        _ => blocks.binary_search_by_key(&bi, |(i, _)| *i).ok().map(|at| &*blocks[at].1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_created_in_order_and_copied_on_shared_write() {
        let mut b: Blocks<AggBlock> = Vec::new();
        let set = |b: &mut Blocks<AggBlock>, bi: u32, v: u32| {
            let blk = block_mut(b, bi);
            let i = blk.index_mut(0);
            blk.cols.count[i] = v;
        };
        set(&mut b, 3, 1);
        set(&mut b, 1, 2);
        set(&mut b, 7, 3);
        assert_eq!(b.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![1, 3, 7]);
        let reader = b[1].1.clone();
        set(&mut b, 3, 9);
        assert_eq!(reader.cols.count[0], 1, "the reader keeps its version");
        assert_eq!(block(&b, 3).map(|x| x.cols.count[0]), Some(9));
        assert!(block(&b, 2).is_none());
    }

    proptest::proptest! {
        /// Covering a range first, then writing slots inside it, leaves the
        /// block that writing those slots and the range's ends one by one
        /// leaves: same window, same capacity bound.
        #[test]
        fn cover_is_writing_the_range_ends(
            before in proptest::collection::vec(0usize..RAW_BLOCK, 0..6),
            a in 0usize..RAW_BLOCK,
            b in 0usize..RAW_BLOCK,
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            let (mut covered, mut written) = (RawBlock::default(), RawBlock::default());
            for &k in &before {
                covered.index_mut(k);
                written.index_mut(k);
            }
            covered.cover(lo, hi);
            written.index_mut(lo);
            written.index_mut(hi);
            let window = |b: &RawBlock| (b.first(), b.cols.values.len(), b.cols.valid.len(), b.cols.anomaly.len());
            proptest::prop_assert_eq!(window(&covered), window(&written));
            proptest::prop_assert!(covered.cols.values.capacity() <= RAW_BLOCK);
            for k in lo..=hi {
                proptest::prop_assert!(covered.index(k).is_some());
            }
        }

        /// Whatever the order of writes, the window is the smallest run of
        /// whole bytes of slots that covers every slot written, each slot
        /// keeps its value, and the rest of the window reads as gaps.
        #[test]
        fn the_window_covers_exactly_the_bytes_written(slots in proptest::collection::vec(0usize..RAW_BLOCK, 1..40)) {
            let mut b = RawBlock::default();
            for &k in &slots {
                let i = b.index_mut(k);
                b.cols.values[i] = k as f64 + 1.0;
                b.cols.valid[i / 8] |= 1 << (i % 8);
            }
            let lo = slots.iter().min().copied().unwrap_or(0) & !7;
            let hi = (slots.iter().max().copied().unwrap_or(0) & !7) + 8;
            proptest::prop_assert_eq!((b.first(), b.cols.values.len(), b.cols.valid.len() * 8), (lo, hi - lo, hi - lo));
            proptest::prop_assert!(b.cols.values.capacity() <= RAW_BLOCK);
            for k in 0..RAW_BLOCK {
                let held = b.index(k).map(|i| (b.cols.values[i], b.cols.valid[i / 8] >> (i % 8) & 1 == 1));
                if slots.contains(&k) {
                    proptest::prop_assert_eq!(held, Some((k as f64 + 1.0, true)));
                } else {
                    proptest::prop_assert!(matches!(held, None | Some((0.0, false))));
                    proptest::prop_assert_eq!(held.is_some(), (lo..hi).contains(&k));
                }
            }
        }
    }
}
