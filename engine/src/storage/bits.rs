//! A read-only view of a bit-packed validity or anomaly bitmap (LSB first,
//! the Arrow layout), shared by head buffers and sealed Arrow columns so
//! the query path has one code path for both.

#[derive(Debug, Clone, Copy)]
pub struct BitSlice<'a> {
    bytes: &'a [u8],
    /// Bit offset of element 0 inside `bytes`.
    offset: usize,
}

impl<'a> BitSlice<'a> {
    pub fn new(bytes: &'a [u8], offset: usize) -> Self {
        BitSlice { bytes, offset }
    }

    #[inline]
    pub fn get(&self, i: usize) -> bool {
        let b = self.offset + i;
        (self.bytes[b >> 3] >> (b & 7)) & 1 == 1
    }

    /// The same bitmap starting `start` elements later.
    #[inline]
    pub fn advance(&self, start: usize) -> Self {
        BitSlice { bytes: self.bytes, offset: self.offset + start }
    }
}

#[inline]
pub fn set_bit(bytes: &mut [u8], i: usize, v: bool) {
    if v {
        bytes[i >> 3] |= 1 << (i & 7);
    } else {
        bytes[i >> 3] &= !(1 << (i & 7));
    }
}

#[inline]
pub fn get_bit(bytes: &[u8], i: usize) -> bool {
    (bytes[i >> 3] >> (i & 7)) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_offsets() {
        let mut b = vec![0u8; 3];
        for i in [0, 3, 9, 17, 23] {
            set_bit(&mut b, i, true);
        }
        set_bit(&mut b, 3, false);
        let s = BitSlice::new(&b, 0);
        assert!(s.get(0) && !s.get(3) && s.get(9) && s.get(17) && s.get(23));
        let t = s.advance(9);
        assert!(t.get(0) && t.get(8) && !t.get(1));
        assert!(get_bit(&b, 17));
    }
}
