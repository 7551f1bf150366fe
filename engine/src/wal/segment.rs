//! Segment files: naming, listing, creating, cutting and removing them, each
//! made durable before it returns (the file and, for a new or removed name,
//! the directory), so callers never reason about half-done file operations.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::WalError;
use super::record::SEGMENT_MAGIC;
use super::Lsn;

const EXTENSION: &str = "wal";
const NAME_DIGITS: usize = 20;

/// A segment file and the lsn of its first record (which is also its name,
/// so the files sort in log order and recovery knows which lsn to expect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SegmentFile {
    pub first_lsn: Lsn,
    pub path: PathBuf,
}

pub(super) fn segment_path(dir: &Path, first_lsn: Lsn) -> PathBuf {
    dir.join(format!("{first_lsn:0width$}.{EXTENSION}", width = NAME_DIGITS))
}

/// The first lsn a segment file name stands for; `None` for any other file,
/// which the log leaves alone (including lsn 0, which no record ever has).
fn parse_name(name: &OsStr) -> Option<Lsn> {
    let stem = name.to_str()?.strip_suffix(".wal")?;
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().filter(|&lsn| lsn > 0)
}

/// Segment files in `dir`, oldest first.
pub(super) fn list(dir: &Path) -> Result<Vec<SegmentFile>, WalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| WalError::io("read dir", dir, e))? {
        let entry = entry.map_err(|e| WalError::io("read dir", dir, e))?;
        if let Some(first_lsn) = parse_name(&entry.file_name()) {
            out.push(SegmentFile { first_lsn, path: entry.path() });
        }
    }
    out.sort_by_key(|s| s.first_lsn);
    Ok(out)
}

/// Creates the segment whose first record will be `first_lsn`, with its
/// header written and both the file and its directory entry fsynced: a
/// record appended to it later is durable once the file alone is synced.
/// Fails if the file exists, which would mean two segments claim one lsn.
pub(super) fn create(dir: &Path, first_lsn: Lsn) -> Result<(SegmentFile, File), WalError> {
    let path = segment_path(dir, first_lsn);
    let mut file =
        OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| WalError::io("create", &path, e))?;
    file.write_all(SEGMENT_MAGIC).map_err(|e| WalError::io("write", &path, e))?;
    file.sync_all().map_err(|e| WalError::io("fsync", &path, e))?;
    sync_dir(dir)?;
    mark_newest(dir, first_lsn);
    Ok((SegmentFile { first_lsn, path }, file))
}

/// The file naming the first lsn of the newest segment the log created.
pub(super) const NEWEST: &str = "NEWEST";

/// Records, after the segment exists, that it does: [`check_newest`] then
/// notices if it goes missing (deleted by hand, say), which the segments
/// left cannot tell. Best effort: a marker that could not be written is
/// merely older, and an older marker never refuses a start.
pub(super) fn mark_newest(dir: &Path, first_lsn: Lsn) {
    let tmp = dir.join("NEWEST.tmp");
    let written = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{first_lsn}\n").as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(NEWEST))
    })();
    match written.map_err(|e| WalError::io("write", &tmp, e)).and_then(|()| sync_dir(dir)) {
        Ok(()) => {}
        Err(e) => tracing::warn!(error = %e, "could not record the newest WAL segment"),
    }
}

/// Drops the marker, before segments are removed on purpose (recovery's
/// cut, a log older than its checkpoint): the next segment created writes
/// it again. Without one, a start checks nothing, so a crash in between
/// cannot make the next start refuse a log that is whole.
pub(super) fn forget_newest(dir: &Path) {
    match fs::remove_file(dir.join(NEWEST)) {
        Ok(()) => {
            let _ = sync_dir(dir);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "could not remove the newest-segment marker"),
    }
}

/// Refuses a log whose newest segment, as recorded by [`mark_newest`], is
/// gone: every segment left starts before it (or none is left). Logs of
/// builds before the marker have none and pass.
pub(super) fn check_newest(dir: &Path, segments: &[SegmentFile]) -> Result<(), WalError> {
    let marker = dir.join(NEWEST);
    let Ok(text) = fs::read_to_string(&marker) else { return Ok(()) };
    let Ok(newest) = text.trim().parse::<Lsn>() else {
        tracing::warn!(path = %marker.display(), "unreadable newest-segment marker; ignored");
        return Ok(());
    };
    match segments.iter().map(|s| s.first_lsn).max() {
        Some(last) if last >= newest => Ok(()),
        _ => Err(WalError::MissingSegment { segment: segment_path(dir, newest), marker }),
    }
}

/// Opens an existing, already validated segment to append to its end.
pub(super) fn open_append(path: &Path) -> Result<File, WalError> {
    OpenOptions::new().append(true).open(path).map_err(|e| WalError::io("open", path, e))
}

/// Cuts `path` to `len` bytes and fsyncs it, so the cut survives a crash
/// before anything new is appended after it. A file cut below its header gets
/// a fresh header: the segment stays, empty, and keeps its name's lsn.
pub(super) fn truncate(path: &Path, len: u64) -> Result<(), WalError> {
    let mut file = OpenOptions::new().write(true).open(path).map_err(|e| WalError::io("open", path, e))?;
    if len < SEGMENT_MAGIC.len() as u64 {
        file.set_len(0).map_err(|e| WalError::io("truncate", path, e))?;
        file.write_all(SEGMENT_MAGIC).map_err(|e| WalError::io("write", path, e))?;
    } else {
        file.set_len(len).map_err(|e| WalError::io("truncate", path, e))?;
    }
    file.sync_all().map_err(|e| WalError::io("fsync", path, e))
}

/// Removes a segment file; one already gone counts as removed. The caller
/// syncs the directory once after a batch of removals.
pub(super) fn remove(path: &Path) -> Result<(), WalError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(WalError::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Makes creations and removals in `dir` durable: without it a new segment's
/// name can vanish in a power loss even though its data was fsynced.
pub(super) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    // Directories cannot be opened as files on Windows, where the metadata
    // journal makes this unnecessary anyway.
    if cfg!(unix) {
        let handle = File::open(dir).map_err(|e| WalError::io("open dir", dir, e))?;
        handle.sync_all().map_err(|e| WalError::io("fsync dir", dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_twenty_digits_and_parse_back() {
        let p = segment_path(Path::new("/x"), 42);
        let name = p.file_name().expect("name");
        assert_eq!(name, "00000000000000000042.wal");
        assert_eq!(parse_name(name), Some(42));
        assert_eq!(parse_name(OsStr::new(&format!("{:020}.wal", u64::MAX))), Some(u64::MAX));
    }

    #[test]
    fn other_files_are_not_segments() {
        let others = [
            "42.wal",
            "0000000000000000004x.wal",
            "00000000000000000042.tmp",
            "000000000000000000042.wal",
            "00000000000000000000.wal",
            "README",
        ];
        for other in others {
            assert_eq!(parse_name(OsStr::new(other)), None, "{other}");
        }
    }
}
