//! Reading the log back at open, and repairing it so that appends can resume:
//! the log is cut at its first damaged or out-of-sequence record, because
//! nothing after a gap can be applied in order.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::WalError;
use super::record::{self, Damage, Header, SEGMENT_HEADER_LEN, SUPPORTED_VERSION};
use super::segment::{self, SegmentFile};
use super::{LogRecord, Lsn, RecoveryReport, Truncation, DAMAGED_DIR};

/// A sealed (no longer appended to) segment and the lsn of its last record.
#[derive(Debug, Clone)]
pub(super) struct Sealed {
    pub file: SegmentFile,
    pub last_lsn: Lsn,
}

/// The log as found on disk, after repair.
pub(super) struct Recovered {
    pub sealed: Vec<Sealed>,
    /// The segment to keep appending to and its valid length; `None` when the
    /// directory holds no segment yet.
    pub active: Option<(SegmentFile, u64)>,
    /// The lsn the next append gets.
    pub next_lsn: Lsn,
    pub records: Vec<LogRecord>,
    pub report: RecoveryReport,
}

/// Reads every segment that can hold a record with lsn > `after`, returns
/// those records, and cuts the log at the first damage.
pub(super) fn recover(dir: &Path, after: Lsn) -> Result<Recovered, WalError> {
    let segments = segment::list(dir)?;
    refuse_other_versions(&segments)?;
    segment::check_newest(dir, &segments)?;

    // A segment whose successor starts at or before after + 1 holds only
    // checkpointed records: it is not read (a damaged one must not cost the
    // records after it), only remembered so `checkpoint` can delete it.
    let first_needed = segments
        .iter()
        .zip(segments.iter().skip(1))
        .take_while(|(_, next)| next.first_lsn <= after.saturating_add(1))
        .count();
    let mut sealed: Vec<Sealed> = segments
        .windows(2)
        .take(first_needed)
        .map(|pair| Sealed { file: pair[0].clone(), last_lsn: pair[1].first_lsn - 1 })
        .collect();

    let mut recovered = Recovered {
        sealed: Vec::new(),
        active: None,
        next_lsn: after.saturating_add(1),
        records: Vec::new(),
        report: RecoveryReport { records: 0, segments: 0, truncated: None },
    };
    let Some(first) = segments.get(first_needed) else {
        return Ok(recovered);
    };
    if first.first_lsn > after.saturating_add(1) {
        // Records after..first were deleted by a checkpoint beyond `after`:
        // the caller passed a stale checkpoint lsn. Nothing here can be done
        // about it but say so.
        tracing::warn!(
            after,
            first_lsn = first.first_lsn,
            "WAL starts after the given checkpoint lsn; records in between are gone"
        );
    }

    let mut expected = first.first_lsn;
    let mut active = None;
    let mut previous = None;
    for (i, seg) in segments.iter().enumerate().skip(first_needed) {
        let later = &segments[i + 1..];
        // The segment's bytes (none when it is not read), kept for a repair
        // to tell a crash's tail from damage without reading them again.
        let mut buf = Vec::new();
        let (valid_len, damage) = if seg.first_lsn != expected {
            // Only possible for a segment after the first one read: its name
            // leaves a gap (or overlap) after the previous segment's records.
            (0, Some(Damage::OutOfSequence { expected, found: seg.first_lsn }))
        } else {
            buf = fs::read(&seg.path).map_err(|e| WalError::io("read", &seg.path, e))?;
            recovered.report.segments += 1;
            scan(&buf, &mut expected, after, &mut recovered)
        };
        match damage {
            None if later.is_empty() => active = Some((seg.clone(), valid_len)),
            None => {
                sealed.push(Sealed { file: seg.clone(), last_lsn: expected - 1 });
                previous = Some((seg.clone(), valid_len));
            }
            Some(damage) => {
                let (truncation, keep) = repair(seg, (&buf, valid_len, expected), later, damage)?;
                recovered.report.truncated = Some(truncation);
                active = match keep {
                    Some(len) => Some((seg.clone(), len)),
                    // A misnamed segment was removed, which never happens to
                    // the first one read: append to the clean one before it.
                    None => {
                        sealed.pop();
                        previous.take()
                    }
                };
                break;
            }
        }
    }
    recovered.sealed = sealed;
    recovered.active = active;
    recovered.next_lsn = expected;
    Ok(recovered)
}

/// Refuses the whole log if any segment was written by another format
/// version, before anything is repaired: repairing a log this build cannot
/// read would destroy it.
fn refuse_other_versions(segments: &[SegmentFile]) -> Result<(), WalError> {
    use std::io::Read;
    for seg in segments {
        let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN as usize);
        let file = fs::File::open(&seg.path).map_err(|e| WalError::io("open", &seg.path, e))?;
        file.take(SEGMENT_HEADER_LEN).read_to_end(&mut head).map_err(|e| WalError::io("read", &seg.path, e))?;
        if let Header::OtherVersion(version) = record::check_header(&head) {
            return Err(WalError::UnsupportedVersion {
                segment: seg.path.clone(),
                version,
                supported: SUPPORTED_VERSION,
            });
        }
    }
    Ok(())
}

/// Decodes the records of one segment starting at lsn `*expected`, keeping
/// those after `after`. Returns how many bytes are intact and, if it stopped
/// early, why; `*expected` ends as the lsn after the last intact record.
fn scan(buf: &[u8], expected: &mut Lsn, after: Lsn, out: &mut Recovered) -> (u64, Option<Damage>) {
    if record::check_header(buf) != Header::Current {
        return (0, Some(Damage::BadHeader));
    }
    let mut offset = SEGMENT_HEADER_LEN as usize;
    loop {
        match record::decode(&buf[offset..]) {
            Ok(None) => return (offset as u64, None),
            Ok(Some((rec, _))) if rec.lsn != *expected => {
                return (offset as u64, Some(Damage::OutOfSequence { expected: *expected, found: rec.lsn }))
            }
            Ok(Some((rec, used))) => {
                if rec.lsn > after {
                    out.records.push((rec.lsn, rec.payload.to_vec()));
                }
                out.report.records += 1;
                *expected += 1;
                offset += used;
            }
            Err(damage) => return (offset as u64, Some(damage)),
        }
    }
}

/// Sets the damaged files aside in `<wal dir>/damaged/<unix seconds>/`
/// before recovery cuts them: a copy of `seg` (it stays, cut), and `later`
/// themselves (moved: recovery would delete them, so a rename costs no
/// disk). Returns the directory. On failure (a full disk, say) it is
/// removed again, the error logged, and recovery goes on: the log must
/// open either way.
fn set_aside(seg: &SegmentFile, later: &[SegmentFile]) -> Option<PathBuf> {
    let wal_dir = seg.path.parent()?;
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let to = wal_dir.join(DAMAGED_DIR).join(secs.to_string());
    let name = |f: &SegmentFile| to.join(f.path.file_name().unwrap_or_default());
    let done = fs::create_dir_all(&to).and_then(|()| {
        fs::copy(&seg.path, name(seg))?;
        later.iter().try_for_each(|f| fs::rename(&f.path, name(f)))
    });
    match done {
        Ok(()) => Some(to),
        Err(e) => {
            tracing::error!(to = %to.display(), error = %e, "could not set the damaged WAL files aside");
            let _ = fs::remove_dir_all(&to);
            None
        }
    }
}

/// Whether `path` holds only zero bytes from `from` on: what a power loss
/// can leave after the last fsync (the file's size reached the disk, its
/// data did not).
fn zeros_from(path: &Path, from: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = fs::File::open(path) else { return false };
    if f.seek(SeekFrom::Start(from)).is_err() {
        return false;
    }
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) if buf[..n].iter().all(|&b| b == 0) => {}
            _ => return false,
        }
    }
}

/// Whether the damage at `valid_len` in the last segment (its `bytes`) is what a crash
/// leaves: a header cut short (it is written and synced before any record,
/// so 8 bytes that are not our magic are damage), or a record cut short
/// with no whole record in the bytes from it on (see
/// [`record::whole_record_in`]). A bit flip in a length or in the magic
/// leaves whole, acknowledged records behind it: that is damage.
fn crash_left(bytes: &[u8], valid_len: u64, next_lsn: Lsn, damage: Damage) -> bool {
    match damage {
        Damage::BadHeader => (bytes.len() as u64) < SEGMENT_HEADER_LEN,
        Damage::Torn => !record::whole_record_in(bytes.get(valid_len as usize..).unwrap_or_default(), next_lsn),
        _ => false,
    }
}

/// Cuts `seg` at `valid_len` and removes every later segment: they can only
/// exist after a crash in the middle of a rotation or after damage, and their
/// records could not be applied after the gap anyway. Returns the report
/// entry and the length the kept segment now has (`None` if it was removed).
fn repair(
    seg: &SegmentFile,
    (bytes, valid_len, next_lsn): (&[u8], u64, Lsn),
    later: &[SegmentFile],
    damage: Damage,
) -> Result<(Truncation, Option<u64>), WalError> {
    let file_len = fs::metadata(&seg.path).map_err(|e| WalError::io("stat", &seg.path, e))?.len();
    let mut dropped_bytes = file_len - valid_len.min(file_len);
    for next in later {
        dropped_bytes += fs::metadata(&next.path).map(|m| m.len()).unwrap_or(0);
    }
    // What a crash leaves at the end of the last segment is expected: a
    // record cut off, a header not yet written, or zeros where the data
    // had not reached the disk. Nothing there was acknowledged. Any other
    // damage drops records that were whole (and acknowledged), so the
    // files are set aside first for whoever investigates.
    let crash_tail =
        later.is_empty() && (zeros_from(&seg.path, valid_len) || crash_left(bytes, valid_len, next_lsn, damage));
    let aside = if crash_tail { None } else { set_aside(seg, later) };
    let misnamed = matches!(damage, Damage::OutOfSequence { .. }) && valid_len == 0;
    let dir = seg.path.parent().unwrap_or(Path::new("."));
    if misnamed || !later.is_empty() {
        // Segments are about to go on purpose: the marker must not name one.
        segment::forget_newest(dir);
    }
    let keep = if misnamed {
        segment::remove(&seg.path)?;
        None
    } else {
        // A damaged header is rewritten: the segment stays, empty, so its
        // name still says which lsn comes next.
        segment::truncate(&seg.path, valid_len)?;
        Some(valid_len.max(SEGMENT_HEADER_LEN))
    };
    let mut removed_segments: Vec<PathBuf> = Vec::new();
    for next in later {
        // Moved aside already (then it is not found, which is fine) or removed here.
        segment::remove(&next.path)?;
        removed_segments.push(next.path.clone());
    }
    if misnamed || !removed_segments.is_empty() {
        segment::sync_dir(dir)?;
    }
    if crash_tail {
        tracing::warn!(
            segment = %seg.path.display(),
            offset = valid_len,
            dropped_bytes,
            reason = %damage,
            "WAL ends in a record a crash cut short: cut there",
        );
    } else {
        tracing::error!(
            segment = %seg.path.display(),
            offset = valid_len,
            dropped_bytes,
            reason = %damage,
            removed_segments = ?removed_segments,
            set_aside = ?aside,
            "WAL damaged: truncated at the last good record; the records after it are lost (the damaged files were copied aside first)",
        );
    }
    Ok((Truncation { segment: seg.path.clone(), offset: valid_len, dropped_bytes, removed_segments }, keep))
}
