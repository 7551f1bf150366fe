//! Sealed segments on disk: one Arrow IPC *file* per sealed span, named so the
//! engine can place it without opening it, read back zero-copy through `mmap`.
//!
//! **Name.** `t{tier}-ue{update_every}-s{start}-r{res}-c{crc32c:08x}.arrow`,
//! e.g. `t0-ue1-s7200-r1-c05d0f1e2.arrow`: tier, the metric group's
//! update_every, span start (epoch seconds, `>= 0`), resolution (seconds) and
//! the CRC32C of every byte of the file. Names are canonical: [`parse_name`]
//! accepts exactly what [`SegmentName::file_name`] produces. The point count
//! is not in the name; it is the fixed-size-list length of the file's schema
//! (or, for encoded tier-0 files, its `strata.points` metadata).
//!
//! **Durability.** [`write_segment`] returns after the file and its directory
//! entry are fsynced: from then on the segment survives a crash. Before that
//! only a `*.tmp` file exists, which [`load_dir`] deletes. Files are never
//! written again once renamed into place (only renamed into quarantine or
//! unlinked), which is what makes mapping them sound.
//!
//! **Memory.** An uncompressed segment opened by [`open_segment`] is not
//! copied: every Arrow buffer of its batch points into a read-only mapping of
//! the file, so its points live in the OS page cache (shared, evictable,
//! re-read on demand), not on the heap; RSS for sealed history does not grow
//! with history. The heap holds only array headers and the segment's
//! `metric id -> row` index. The mapping is unmapped when the last array of the
//! batch is dropped. LZ4/ZSTD segments must be decompressed, so decoding them
//! allocates about their uncompressed size on the heap (only buffers Arrow
//! left uncompressed because they would not shrink stay mapped): compression
//! trades RSS for disk. Opening reads the whole file once (the CRC check).
//! ([`LoadReport::bytes`] is what loaded segments map: file bytes, not heap.)
//!
//! **Corruption.** A file whose name does not parse, whose bytes do not hash
//! to the CRC in its name, or that does not decode to its tier's schema is
//! moved to quarantine by [`load_dir`], which keeps loading the rest. I/O
//! errors are not corruption: they abort the load, so a good file is never
//! quarantined because a disk was briefly unreadable.
//!
//! **Safety.** This is the crate's one module with `unsafe` (STYLE rule 13):
//! mapping a file and handing the mapping to Arrow. It is sound as long as
//! no process modifies or truncates a segment file while it is mapped; the
//! engine never does, and the data directory belongs to strata (an outside
//! process truncating a live segment would make reads fault with SIGBUS).
//! Decoding runs under `catch_unwind` because arrow-ipc panics on some
//! malformed files whose CRC matches (crafted, not bit rot); that needs the
//! default `panic = "unwind"`, and the panic hook still prints the message.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{read_footer_length, FileDecoder};
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_ipc::CompressionType;
use arrow_schema::{ArrowError, DataType, Schema};
use memmap2::Mmap;
use thiserror::Error;

use super::segment::{schema_for, Layout, Segment, POINTS_KEY};
use super::tier::TIERS;

const EXT: &str = "arrow";
const TMP_EXT: &str = "tmp";
const MAGIC: &[u8; 6] = b"ARROW1";
/// Leading magic + padding, footer length, trailing magic.
const MIN_FILE_LEN: usize = 8 + 4 + 6;

#[derive(Debug, Error)]
pub enum SegmentFileError {
    #[error("segment file {}: {op} failed: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("segment file {}: not a readable Arrow IPC file: {source}", path.display())]
    Arrow {
        path: PathBuf,
        #[source]
        source: ArrowError,
    },
    #[error("segment file {}: checksum mismatch (name: {expected:08x}, contents: {actual:08x})", path.display())]
    ChecksumMismatch { path: PathBuf, expected: u32, actual: u32 },
    #[error("segment file {}: name is not t{{tier}}-ue{{ue}}-s{{start}}-r{{res}}-c{{crc32c}}.arrow", path.display())]
    BadName { path: PathBuf },
    #[error("segment file {}: unexpected schema: {detail}", path.display())]
    SchemaMismatch { path: PathBuf, detail: String },
}

impl SegmentFileError {
    /// Is the file itself bad (quarantine it), rather than the environment?
    pub fn is_corruption(&self) -> bool {
        !matches!(self, SegmentFileError::Io { .. })
    }

    pub fn path(&self) -> &Path {
        match self {
            SegmentFileError::Io { path, .. }
            | SegmentFileError::Arrow { path, .. }
            | SegmentFileError::ChecksumMismatch { path, .. }
            | SegmentFileError::BadName { path }
            | SegmentFileError::SchemaMismatch { path, .. } => path,
        }
    }
}

type Result<T, E = SegmentFileError> = std::result::Result<T, E>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SegmentFileError + 'a {
    move |source| SegmentFileError::Io { op, path: path.to_owned(), source }
}

/// Arrow reports write failures as `IoError`; keep those as I/O (disk full is
/// not a format problem).
fn arrow_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(ArrowError) -> SegmentFileError + 'a {
    move |e| match e {
        ArrowError::IoError(_, source) => SegmentFileError::Io { op, path: path.to_owned(), source },
        source => SegmentFileError::Arrow { path: path.to_owned(), source },
    }
}

fn parse_err(path: &Path, msg: impl Into<String>) -> SegmentFileError {
    SegmentFileError::Arrow { path: path.to_owned(), source: ArrowError::ParseError(msg.into()) }
}

/// Body compression of a segment file (Arrow IPC buffer compression).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Zero-copy when read back: the values stay in the page cache.
    None,
    /// Fast; decoding allocates the uncompressed size.
    Lz4,
    /// Smallest; decoding allocates the uncompressed size.
    Zstd,
}

impl Compression {
    fn ipc(self) -> Option<CompressionType> {
        match self {
            Compression::None => None,
            Compression::Lz4 => Some(CompressionType::LZ4_FRAME),
            Compression::Zstd => Some(CompressionType::ZSTD),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown segment compression '{0}' (expected none, lz4 or zstd)")]
pub struct UnknownCompression(pub String);

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(s: &str) -> Result<Self, UnknownCompression> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(UnknownCompression(other.to_owned())),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        })
    }
}

/// What a segment file's name says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentName {
    pub tier: u8,
    pub update_every: i64,
    /// Span start, epoch seconds (`>= 0`).
    pub start: i64,
    /// Resolution in seconds.
    pub res: i64,
    /// CRC32C (Castagnoli) of the whole file.
    pub crc: u32,
}

impl SegmentName {
    /// The canonical file name, `t{tier}-ue{ue}-s{start}-r{res}-c{crc:08x}.arrow`.
    pub fn file_name(&self) -> String {
        format!("{}-c{:08x}.{EXT}", self.stem(), self.crc)
    }

    fn stem(&self) -> String {
        format!("t{}-ue{}-s{}-r{}", self.tier, self.update_every, self.start, self.res)
    }

    fn is_valid(&self) -> bool {
        usize::from(self.tier) < TIERS && self.update_every > 0 && self.start >= 0 && self.res > 0
    }
}

/// Parses a canonical segment file name (no directory); `None` for anything else.
pub fn parse_name(file_name: &str) -> Option<SegmentName> {
    fn field<'a>(parts: &mut impl Iterator<Item = &'a str>, prefix: &str) -> Option<&'a str> {
        parts.next()?.strip_prefix(prefix)
    }
    let mut parts = file_name.strip_suffix(".arrow")?.split('-');
    let tier = field(&mut parts, "t")?.parse().ok()?;
    let update_every = field(&mut parts, "ue")?.parse().ok()?;
    let start = field(&mut parts, "s")?.parse().ok()?;
    let res = field(&mut parts, "r")?.parse().ok()?;
    let crc = u32::from_str_radix(field(&mut parts, "c")?, 16).ok()?;
    let name = SegmentName { tier, update_every, start, res, crc };
    // Re-encoding rejects leading zeros, `+` signs, upper-case hex and extra parts.
    (parts.next().is_none() && name.is_valid() && name.file_name() == file_name).then_some(name)
}

/// Hashes everything written through it, so the CRC costs no second pass.
struct CrcWriter<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Directories cannot be opened for fsync through std on Windows; there
    // the rename is as durable as the filesystem makes it.
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `seg.batch` as an Arrow IPC file in `dir` and returns its path.
///
/// Atomic and durable: the bytes go to a `*.tmp` file in `dir`, which is
/// fsynced, renamed to its final name and the directory fsynced; the call
/// returns only after that, so a crash leaves either no segment or the
/// whole one. Writing the same segment twice yields the same name (the
/// rename replaces it). A changed span gets a new name (new CRC): remove the
/// old file once this returns. Fails with `BadName` if the segment cannot be
/// named (negative start, non-positive update_every or res, unknown tier).
pub fn write_segment(dir: &Path, seg: &Segment, update_every: i64, compression: Compression) -> Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut name = SegmentName { tier: seg.tier, update_every, start: seg.start, res: seg.res, crc: 0 };
    if !name.is_valid() {
        return Err(SegmentFileError::BadName { path: dir.join(name.file_name()) });
    }
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{}-{}-{seq}.{TMP_EXT}", name.stem(), std::process::id()));
    let result = write_tmp(&tmp, seg, compression).and_then(|crc| {
        name.crc = crc;
        let path = dir.join(name.file_name());
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        sync_dir(dir)?;
        Ok(path)
    });
    if result.is_err() {
        // Best effort: a leftover is removed by the next load_dir anyway.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes and fsyncs the temp file; returns the CRC32C of its bytes.
fn write_tmp(tmp: &Path, seg: &Segment, compression: Compression) -> Result<u32> {
    let file = File::options().write(true).create_new(true).open(tmp).map_err(io_err("create", tmp))?;
    let options =
        IpcWriteOptions::default().try_with_compression(compression.ipc()).map_err(arrow_err("write", tmp))?;
    let sink = CrcWriter { inner: BufWriter::new(file), crc: 0 };
    let mut writer =
        FileWriter::try_new_with_options(sink, &seg.batch.schema(), options).map_err(arrow_err("write", tmp))?;
    writer.write(&seg.batch).map_err(arrow_err("write", tmp))?;
    let sink = writer.into_inner().map_err(arrow_err("write", tmp))?;
    let file = sink.inner.into_inner().map_err(|e| io_err("write", tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err("fsync", tmp))?;
    Ok(sink.crc)
}

/// Opens a segment file: maps it, checks the CRC32C in its name against the
/// mapped bytes, decodes it (zero-copy unless compressed, see the module
/// docs) and checks its schema is its tier's. Errors other than `Io` mean
/// the file is corrupt.
pub fn open_segment(path: &Path) -> Result<(SegmentName, Segment)> {
    open_mapped(path).map(|(name, seg, _)| (name, seg))
}

/// [`open_segment`], also returning the address range of the mapping (what
/// the zero-copy test checks buffers against; its length is the file size).
fn open_mapped(path: &Path) -> Result<(SegmentName, Segment, Range<usize>)> {
    let bad_name = || SegmentFileError::BadName { path: path.to_owned() };
    let name = path.file_name().and_then(|n| n.to_str()).and_then(parse_name).ok_or_else(bad_name)?;
    let file = File::open(path).map_err(io_err("open", path))?;
    // SAFETY: the mapping is read-only and segment files are immutable once
    // renamed into place: the engine never opens one for writing again, and
    // quarantine (rename) or retention (unlink) leave the mapped inode's
    // bytes unchanged. So the slice the mapping derefs to is not mutated
    // behind our back for as long as it lives, and the CRC checked below
    // keeps describing it.
    let map = unsafe { Mmap::map(&file) }.map_err(io_err("mmap", path))?;
    let actual = crc32c::crc32c(&map);
    if actual != name.crc {
        return Err(SegmentFileError::ChecksumMismatch { path: path.to_owned(), expected: name.crc, actual });
    }
    let range = map.as_ptr() as usize..map.as_ptr() as usize + map.len();
    let batch = decode(path, map, name.tier == 0)?;
    let seg = Segment::from_batch(name.tier, name.start, name.res, batch)
        .map_err(|e| SegmentFileError::SchemaMismatch { path: path.to_owned(), detail: e.to_string() })?;
    Ok((name, seg, range))
}

/// Decodes the single record batch of a mapped IPC file without copying.
fn decode(path: &Path, map: Mmap, raw: bool) -> Result<RecordBatch> {
    let len = map.len();
    if len < MIN_FILE_LEN || map[..MAGIC.len()] != *MAGIC || map[len - MAGIC.len()..] != *MAGIC {
        return Err(parse_err(path, format!("bad magic or too short ({len} bytes): not an Arrow IPC file")));
    }
    let ptr = NonNull::new(map.as_ptr().cast_mut()).ok_or_else(|| parse_err(path, "null mapping"))?;
    // SAFETY: `ptr` is valid for `len` bytes for as long as `map` is alive,
    // and `map` moves into the buffer's owner `Arc`: every buffer sliced from
    // it (and so every array of the decoded batch) holds that `Arc`, so the
    // mapping outlives them all and is unmapped only when the last is dropped.
    // Arrow never writes through an immutable `Buffer` (a custom allocation
    // cannot become a `MutableBuffer`), and the file is not modified while
    // mapped (see `open_mapped`), so the bytes stay valid and unchanged.
    let buf = unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(map)) };
    // arrow-ipc trusts parts of a well-formed footer and can panic (not just
    // err) on a file that passes the CRC yet was not written by us: turn such
    // panics into a decode error instead of taking the process down.
    catch_unwind(AssertUnwindSafe(|| decode_buffer(path, &buf, raw)))
        .unwrap_or_else(|_| Err(parse_err(path, "arrow-ipc panicked while decoding")))
}

fn decode_buffer(path: &Path, buf: &Buffer, raw: bool) -> Result<RecordBatch> {
    let arrow = |source| SegmentFileError::Arrow { path: path.to_owned(), source };
    let len = buf.len();
    let trailer: [u8; 10] = buf[len - 10..].try_into().map_err(|_| parse_err(path, "short trailer"))?;
    let footer_len = read_footer_length(trailer).map_err(arrow)?;
    let footer_start = (len - 10)
        .checked_sub(footer_len)
        .filter(|&s| s >= 8)
        .ok_or_else(|| parse_err(path, format!("footer length {footer_len} does not fit in {len} bytes")))?;
    let footer = arrow_ipc::root_as_footer(&buf[footer_start..len - 10])
        .map_err(|e| parse_err(path, format!("invalid footer: {e}")))?;
    let fb_schema = footer.schema().ok_or_else(|| parse_err(path, "footer has no schema"))?;
    if !fb_schema.endianness().equals_to_target_endianness() {
        return Err(parse_err(path, "written with the other endianness"));
    }
    let schema = arrow_ipc::convert::fb_to_schema(fb_schema);
    let (layout, points) = check_schema(path, &schema, raw)?;
    if footer.dictionaries().is_some_and(|d| !d.is_empty()) {
        return Err(parse_err(path, "segment files have no dictionaries"));
    }
    let blocks = footer.recordBatches().ok_or_else(|| parse_err(path, "footer lists no record batches"))?;
    if blocks.len() != 1 {
        return Err(parse_err(path, format!("expected one record batch, footer lists {}", blocks.len())));
    }
    let block = blocks.get(0);
    let to_usize = |v: i64| usize::try_from(v).ok();
    let (data, meta_len) =
        match (to_usize(block.offset()), to_usize(block.metaDataLength().into()), to_usize(block.bodyLength())) {
            (Some(off), Some(meta), Some(body))
                if off >= 8 && meta >= 8 && off.saturating_add(meta).saturating_add(body) <= footer_start =>
            {
                (buf.slice_with_length(off, meta + body), meta)
            }
            _ => return Err(parse_err(path, "record batch block lies outside the file")),
        };
    check_body(path, &data, meta_len, max_row_bytes(layout, points))?;
    let decoder = FileDecoder::new(Arc::new(schema), footer.version());
    decoder.read_record_batch(block, &data).map_err(arrow)?.ok_or_else(|| parse_err(path, "empty record batch"))
}

/// The file's schema must be exactly one that `Segment::seal` produces (or
/// produced in format 2) for its tier; returns its layout and the points
/// per row.
fn check_schema(path: &Path, schema: &Schema, raw: bool) -> Result<(Layout, usize)> {
    fn describe(schema: &Schema) -> String {
        let fields = schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type()));
        fields.collect::<Vec<_>>().join(", ")
    }
    let (layout, points) = match schema.fields().get(1).map(|f| f.data_type()) {
        Some(DataType::FixedSizeList(_, n)) if *n > 0 => (if raw { Layout::Raw } else { Layout::Agg }, *n as usize),
        Some(DataType::LargeBinary) => {
            let points = schema.metadata().get(POINTS_KEY).and_then(|p| p.parse::<usize>().ok());
            let layout = if raw { Layout::Encoded } else { Layout::AggEncoded };
            (layout, points.filter(|&p| p > 0 && p <= u32::MAX as usize).unwrap_or(0))
        }
        _ => (if raw { Layout::Encoded } else { Layout::AggEncoded }, 0),
    };
    let expected = schema_for(layout, points);
    if points == 0 || *schema != expected {
        let detail = format!("expected [{}], found [{}]", describe(&expected), describe(schema));
        return Err(SegmentFileError::SchemaMismatch { path: path.to_owned(), detail });
    }
    Ok((layout, points))
}

/// The most bytes one row's buffer can take: 8 per point for plain
/// columns; an encoded row is at most a raw `f64` per point plus its
/// bitmaps and per-frame headers.
fn max_row_bytes(layout: Layout, points: usize) -> u64 {
    let points = points as u64;
    match layout {
        Layout::Raw | Layout::Agg => points * 8,
        Layout::Encoded | Layout::AggEncoded => points * 9 + 64 * points.div_ceil(super::codec::FRAME as u64) + 64,
    }
}

/// Bounds every buffer of the record batch message to its body and, when
/// compressed, its declared uncompressed size to what the schema allows, so a
/// forged length prefix cannot make the decoder allocate without limit.
fn check_body(path: &Path, block: &Buffer, meta_len: usize, row_bytes: u64) -> Result<()> {
    let (meta, body) = (&block[..meta_len], &block[meta_len..]);
    let skip = if meta[..4] == [0xff; 4] { 8 } else { 4 };
    let Ok(message) = arrow_ipc::root_as_message(&meta[skip..]) else {
        return Err(parse_err(path, "invalid record batch message"));
    };
    let Some(rb) = message.header_as_record_batch() else {
        return Ok(()); // the decoder reports the wrong message type
    };
    let max_len = u64::try_from(rb.length())
        .ok()
        .and_then(|rows| rows.checked_mul(row_bytes)?.checked_add(64))
        .ok_or_else(|| parse_err(path, format!("invalid row count {}", rb.length())))?;
    for b in rb.buffers().into_iter().flatten() {
        let (off, len) = (usize::try_from(b.offset()).ok(), usize::try_from(b.length()).ok());
        let Some(bytes) = off.zip(len).and_then(|(o, l)| body.get(o..o.checked_add(l)?)) else {
            return Err(parse_err(path, "buffer lies outside the record batch body"));
        };
        if let (Some(codec), Some(prefix)) = (rb.compression(), bytes.get(..8)) {
            let declared = i64::from_le_bytes(prefix.try_into().map_err(|_| parse_err(path, "short prefix"))?);
            // The row count and list size come from the same untrusted
            // message, so `max_len` alone does not bound the allocation: no
            // codec expands its input by more than `max_ratio`, whatever the
            // header claims.
            let max_ratio: u64 = if codec.codec() == CompressionType::ZSTD { 65_536 } else { 256 };
            let payload = (bytes.len() as u64 - 8).saturating_mul(max_ratio).saturating_add(64);
            if declared != -1 && !u64::try_from(declared).is_ok_and(|d| d <= max_len && d <= payload) {
                return Err(parse_err(path, format!("buffer declares {declared} uncompressed bytes")));
            }
        }
    }
    Ok(())
}

/// Moves a bad file into `quarantine_dir` (created if needed) under its own
/// name, plus `.1`, `.2`, ... if that is taken, and logs why. Returns the new
/// path. Durable: both directories are fsynced.
pub fn quarantine(path: &Path, quarantine_dir: &Path, reason: &str) -> Result<PathBuf> {
    fs::create_dir_all(quarantine_dir).map_err(io_err("create quarantine directory", quarantine_dir))?;
    let file_name = path.file_name().ok_or_else(|| SegmentFileError::BadName { path: path.to_owned() })?;
    let mut dest = quarantine_dir.join(file_name);
    for n in 1.. {
        if !dest.try_exists().map_err(io_err("stat", &dest))? {
            break;
        }
        let mut suffixed = file_name.to_os_string();
        suffixed.push(format!(".{n}"));
        dest = quarantine_dir.join(suffixed);
    }
    if let Err(source) = fs::rename(path, &dest) {
        // rename cannot cross filesystems; copy, then remove the original.
        fs::copy(path, &dest).and_then(|_| fs::remove_file(path)).map_err(|_| SegmentFileError::Io {
            op: "move into quarantine",
            path: path.to_owned(),
            source,
        })?;
    }
    sync_dir(quarantine_dir)?;
    sync_dir(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    tracing::error!(file = %path.display(), moved_to = %dest.display(), reason, "segment file quarantined");
    Ok(dest)
}

/// What [`load_dir`] found.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Good segments, sorted by (update_every, start), then tier, res, crc.
    pub segments: Vec<(SegmentName, Segment)>,
    /// Where each bad file went (without a quarantine dir: where it lies
    /// still), and why.
    pub quarantined: Vec<(PathBuf, String)>,
    /// Stray `*.tmp` files (interrupted writes) that were deleted.
    pub removed_tmp: Vec<PathBuf>,
    /// Total size of the loaded files: mapped bytes, not heap.
    pub bytes: u64,
}

/// Loads every `*.arrow` file directly in `dir` (a missing `dir` is empty).
/// Corrupt files are moved to `quarantine_dir` (see [`quarantine`]; left
/// where they are without one) and listed, stray
/// `*.tmp` files deleted, anything else ignored. Fails only on I/O errors.
/// Call it before any writer uses `dir`: a `*.tmp` being written is deleted.
pub fn load_dir(dir: &Path, quarantine_dir: Option<&Path>) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(io_err("read directory", dir)(e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", dir))?;
        let path = entry.path();
        if !entry.file_type().map_err(io_err("stat", &path))?.is_file() {
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some(TMP_EXT) => {
                fs::remove_file(&path).map_err(io_err("remove stray temp file", &path))?;
                tracing::warn!(file = %path.display(), "removed temp file of an interrupted segment write");
                report.removed_tmp.push(path);
            }
            Some(EXT) => paths.push(path),
            _ => {}
        }
    }
    paths.sort();
    for path in paths {
        match open_mapped(&path) {
            Ok((name, seg, mapped)) => {
                report.bytes += mapped.len() as u64;
                report.segments.push((name, seg));
            }
            Err(e) if e.is_corruption() => {
                let reason = e.to_string();
                let dest = match quarantine_dir {
                    Some(q) => quarantine(&path, q, &reason)?,
                    None => path,
                };
                report.quarantined.push((dest, reason));
            }
            Err(e) => return Err(e),
        }
    }
    report.segments.sort_by_key(|(n, _)| (n.update_every, n.start, n.tier, n.res, n.crc));
    Ok(report)
}

#[cfg(test)]
#[path = "segment_file_tests.rs"]
mod tests;
