//! The on-disk format: an 8-byte segment header, then records of
//! `[len: u32 LE][crc32c: u32 LE][lsn: u64 LE][payload: len bytes]`, where
//! the crc covers the lsn bytes followed by the payload. The length is left
//! out of the crc on purpose: a damaged length either points past the end of
//! the file (a torn record) or makes the crc cover the wrong bytes, so it is
//! caught either way without a second checksum.

use std::fmt;

use super::Lsn;

/// The largest payload `append` accepts. Bounds the allocation recovery makes
/// for one record, so a damaged length can never ask for gigabytes.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// Magic and two-digit format version at the start of every segment file.
pub(super) const SEGMENT_MAGIC: &[u8; 8] = b"STRWAL01";
pub(super) const SEGMENT_HEADER_LEN: u64 = SEGMENT_MAGIC.len() as u64;
/// The part of the magic that says "this is a strata WAL", before the version.
const MAGIC_PREFIX: &[u8] = b"STRWAL";
pub(super) const SUPPORTED_VERSION: &str = "01";

/// Bytes before the payload: len, crc, lsn.
pub(super) const RECORD_HEADER_LEN: usize = 16;

/// Size of a record with a payload of `payload_len` bytes, as written.
pub(super) fn encoded_len(payload_len: usize) -> u64 {
    (RECORD_HEADER_LEN + payload_len) as u64
}

/// Appends the encoded record to `out`. The caller has checked the payload
/// against [`MAX_RECORD_BYTES`], so the length fits a u32.
pub(super) fn encode(lsn: Lsn, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!(payload.len() <= MAX_RECORD_BYTES);
    out.reserve(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(lsn, payload).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(payload);
}

fn checksum(lsn: Lsn, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&lsn.to_le_bytes()), payload)
}

/// One decoded record, borrowing its payload from the segment buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record<'a> {
    pub lsn: Lsn,
    pub payload: &'a [u8],
}

/// Why decoding stopped before the end of a segment. Recovery truncates
/// there; the reason only goes into the log message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Damage {
    /// Fewer bytes left than the record header or its length claims: the
    /// usual result of a crash in the middle of a write.
    Torn,
    /// A length over [`MAX_RECORD_BYTES`], which `append` never writes.
    TooLarge(u32),
    /// The crc does not match the lsn and payload.
    Checksum,
    /// A good record whose lsn is not the one expected next.
    OutOfSequence { expected: Lsn, found: Lsn },
    /// The segment header is missing, short or not ours.
    BadHeader,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Torn => f.write_str("torn record"),
            Damage::TooLarge(len) => write!(f, "impossible record length {len}"),
            Damage::Checksum => f.write_str("checksum mismatch"),
            Damage::OutOfSequence { expected, found } => write!(f, "lsn {found} where {expected} was expected"),
            Damage::BadHeader => f.write_str("missing or unknown segment header"),
        }
    }
}

/// Decodes the record at the start of `buf`. `Ok(None)` means `buf` is empty
/// (a clean end of segment); otherwise the record and the bytes it used.
/// Never panics, whatever the bytes.
pub(super) fn decode(buf: &[u8]) -> Result<Option<(Record<'_>, usize)>, Damage> {
    if buf.is_empty() {
        return Ok(None);
    }
    let Some(((len, crc, lsn), rest)) = record_header(buf) else {
        return Err(Damage::Torn);
    };
    if len as usize > MAX_RECORD_BYTES {
        return Err(Damage::TooLarge(len));
    }
    let payload = rest.get(..len as usize).ok_or(Damage::Torn)?;
    if checksum(lsn, payload) != crc {
        return Err(Damage::Checksum);
    }
    Ok(Some((Record { lsn, payload }, RECORD_HEADER_LEN + payload.len())))
}

/// What a record's header claims: payload length, crc, lsn.
type RecordHeader = (u32, u32, Lsn);

/// The header a record at the start of `buf` claims, and the bytes after
/// it; `None` when fewer than a header's bytes are left.
fn record_header(buf: &[u8]) -> Option<(RecordHeader, &[u8])> {
    let (h, rest) = buf.split_first_chunk::<RECORD_HEADER_LEN>()?;
    let (len, crc) = (u32::from_le_bytes([h[0], h[1], h[2], h[3]]), u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
    let lsn = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    Some(((len, crc, lsn), rest))
}

/// Whether `tail` (a segment's bytes from where decoding stopped, at the
/// record that should have had `lsn`) still holds a whole record: that
/// record under a damaged length (its crc matches the rest of the segment),
/// or a whole record with lsn `lsn` or `lsn + 1` at any later offset. A
/// crash only ever leaves part of the last record: whole records after the
/// stopping point mean damage, and acknowledged records lost. Linear in
/// `tail`'s length: a few crcs over it at most.
pub(super) fn whole_record_in(tail: &[u8], lsn: Lsn) -> bool {
    if let Some(((_, crc, at), rest)) = record_header(tail) {
        if at == lsn && checksum(lsn, rest) == crc {
            return true;
        }
    }
    // The record after a damaged one has the next lsn: only the lsn bytes
    // of `lsn` or `lsn + 1`, and a length that fits, cost a crc. Payload
    // bytes can look like either, so the crcs get a budget; past it the
    // bytes count as damage (a copy set aside, never data kept or lost).
    let mut budget = 4 * tail.len() + (64 << 20);
    (0..tail.len()).any(|o| {
        let Some(((len, _, at), rest)) = record_header(&tail[o..]) else { return false };
        let len = len as usize;
        if !(at == lsn || at == lsn.wrapping_add(1)) || len > rest.len() {
            return false;
        }
        if budget < len {
            return true;
        }
        budget -= len;
        matches!(decode(&tail[o..]), Ok(Some(_)))
    })
}

/// What the first bytes of a segment file say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Header {
    /// Our magic and version; records follow.
    Current,
    /// Our magic with another version: written by a different strata, so it
    /// must be refused, not repaired.
    OtherVersion(String),
    /// Short or not ours: a crash while the file was being created, or damage.
    Damaged,
}

pub(super) fn check_header(buf: &[u8]) -> Header {
    match buf.get(..SEGMENT_MAGIC.len()) {
        Some(h) if h == SEGMENT_MAGIC => Header::Current,
        // Only two ASCII digits count as a version; anything else after the
        // prefix is damage, so a stray bit flip cannot make recovery refuse
        // to open a log it could repair.
        Some(h) if h.starts_with(MAGIC_PREFIX) && h[MAGIC_PREFIX.len()..].iter().all(u8::is_ascii_digit) => {
            Header::OtherVersion(String::from_utf8_lossy(&h[MAGIC_PREFIX.len()..]).into_owned())
        }
        _ => Header::Damaged,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encoded(lsn: Lsn, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(lsn, payload, &mut out);
        out
    }

    #[test]
    fn layout_is_len_crc_lsn_payload() {
        let buf = encoded(7, b"abc");
        assert_eq!(buf.len() as u64, encoded_len(3));
        assert_eq!(&buf[0..4], &3u32.to_le_bytes());
        assert_eq!(&buf[8..16], &7u64.to_le_bytes());
        assert_eq!(&buf[16..], b"abc");
        let mut crc_input = 7u64.to_le_bytes().to_vec();
        crc_input.extend_from_slice(b"abc");
        assert_eq!(&buf[4..8], &crc32c::crc32c(&crc_input).to_le_bytes());
    }

    #[test]
    fn huge_length_is_rejected_before_reading() {
        let mut buf = encoded(1, b"x");
        buf[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&buf), Err(Damage::TooLarge(u32::MAX)));
    }

    /// A torn last record holds no whole record; a damaged length before
    /// whole records, or around a whole last record, is found.
    #[test]
    fn whole_records_after_a_stop_are_found() {
        let (a, b, c) = (encoded(5, b"first record"), encoded(6, b"second"), encoded(7, b"third one"));
        for cut in 0..a.len() {
            assert!(!whole_record_in(&a[..cut], 5), "a cut at {cut} is a crash's tail");
        }
        let mut flipped = [a.clone(), b.clone(), c.clone()].concat();
        flipped[2] ^= 0x01; // the first length grows by 64 KiB: torn, as decoded
        assert_eq!(decode(&flipped), Err(Damage::Torn));
        assert!(whole_record_in(&flipped, 5), "records 6 and 7 follow");
        let mut alone = a.clone();
        alone[1] ^= 0x40;
        assert_eq!(decode(&alone), Err(Damage::Torn));
        assert!(whole_record_in(&alone, 5), "the record is whole, its length is not");
        let torn_after = [&b[..], &c[..c.len() - 1]].concat();
        assert!(!whole_record_in(&torn_after[b.len()..], 7), "only the torn 7");
        assert!(whole_record_in(&torn_after, 6));
        assert!(!whole_record_in(&[0u8; 100], 5));
        // A torn record whose payload is full of lsn-like words with
        // lengths that fit: every one costs a crc until the budget ends it.
        let mut word = [0u8; 16];
        word[0..4].copy_from_slice(&8u32.to_le_bytes());
        word[8..16].copy_from_slice(&5u64.to_le_bytes());
        let tail: Vec<u8> = word.iter().copied().cycle().take(1 << 20).collect();
        assert!(!whole_record_in(&tail, 5), "no crc matches, and the budget covers these");
    }

    #[test]
    fn headers_are_classified() {
        assert_eq!(check_header(b"STRWAL01"), Header::Current);
        assert_eq!(check_header(b"STRWAL01trailing"), Header::Current);
        assert_eq!(check_header(b"STRWAL02"), Header::OtherVersion("02".into()));
        assert_eq!(check_header(b"STRWAL0"), Header::Damaged);
        assert_eq!(check_header(b"STRWAL\0\0"), Header::Damaged);
        assert_eq!(check_header(b"\0\0\0\0\0\0\0\0"), Header::Damaged);
        assert_eq!(check_header(b""), Header::Damaged);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn records_round_trip(lsn in any::<u64>(), payload in prop::collection::vec(any::<u8>(), 0..2048)) {
            let buf = encoded(lsn, &payload);
            let (rec, used) = decode(&buf).expect("valid").expect("not empty");
            prop_assert_eq!(used, buf.len());
            prop_assert_eq!(rec.lsn, lsn);
            prop_assert_eq!(rec.payload, &payload[..]);
        }

        #[test]
        fn every_strict_prefix_is_torn(payload in prop::collection::vec(any::<u8>(), 0..64), cut in any::<prop::sample::Index>()) {
            let buf = encoded(3, &payload);
            let cut = 1 + cut.index(buf.len() - 1);
            prop_assert_eq!(decode(&buf[..cut]), Err(Damage::Torn));
        }

        #[test]
        fn a_flipped_bit_is_always_caught(payload in prop::collection::vec(any::<u8>(), 0..256), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut buf = encoded(42, &payload);
            let at = at.index(buf.len());
            buf[at] ^= 1 << bit;
            // crc32c detects every single-bit error, and a changed length is
            // either torn, too large, or moves the crc window.
            prop_assert!(decode(&buf).is_err(), "flip at {} went unnoticed", at);
        }

        #[test]
        fn decode_never_panics(buf in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(Some((rec, used))) = decode(&buf) {
                prop_assert!(used <= buf.len());
                prop_assert_eq!(used, RECORD_HEADER_LEN + rec.payload.len());
            }
        }
    }
}
