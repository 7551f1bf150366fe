//! Decoding ingest bodies, durable ingest and recovery. `ingest_decode/*`
//! time turning one body of 60,000 samples into a batch, as an Arrow IPC
//! stream and as JSON. The rest: what the write-ahead log costs an
//! acknowledged batch, and how long a restart takes. `ingest/*` time
//! `Engine::ingest` on a data dir for batches of 10,000 samples (100 demo
//! series x 100 s), time advancing across iterations so nothing is late and
//! spans keep sealing, once with `fsync = always` (one fsync per batch, the
//! default and the only policy that never loses an acknowledged batch) and
//! once with `interval:100` (written to the OS, fsynced by a background
//! thread); the timed part includes WAL encoding, the fsync, the apply and
//! the checkpoints that sealing triggers, but not building the batches.
//! `recovery/*` time `Engine::open` on a dir holding 10 M samples (1,000
//! series x 10,000 s) written through `Engine::ingest`: once as a crash
//! leaves it (the engine dropped without a final checkpoint, so the WAL
//! tail since the last sealed span is replayed) and once after a clean
//! `checkpoint()` (snapshot loaded, nothing replayed). `checkpoint/*` time
//! laying out an open rollup span for a snapshot. Setup runs once per
//! bench, outside the measured loops, and reports on stderr the bytes on
//! disk per sample (whole dir and tier-0 files alone) and the resident
//! memory of a fresh process right after opening the dir. A 100 M sample
//! variant runs only with `STRATA_BENCH_100M=1`.

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use strata_engine::demo::{self, GenSpec};
use strata_engine::ingest::{IngestBatch, SeriesSpec};
use strata_engine::persist::{PersistOptions, Recovery};
use strata_engine::storage::segment_file::{self, Compression};
use strata_engine::storage::TIERS;
use strata_engine::wal::{SyncPolicy, WalOptions};
use strata_engine::{Clock, Engine, EngineConfig};

/// The server's allocator, so a bench measures what `strata serve` runs.
#[path = "../src/alloc.rs"]
mod alloc;

/// First sample time: a multiple of one day, so tier spans align with the data.
const START: i64 = 1_700_006_400;
/// 100 series x 100 s per ingest batch.
const INGEST_SPEC: GenSpec = GenSpec { nodes: 1, metrics_per_node: 100, seed: 1 };
const INGEST_CHUNK_SECS: i64 = 100;
const INGEST_BATCH_SAMPLES: u64 = 10_000;
/// 1,000 series; 10 s per batch keeps recovery batches at 10,000 samples too.
const RECOVERY_SPEC: GenSpec = GenSpec { nodes: 10, metrics_per_node: 100, seed: 1 };
const RECOVERY_SERIES: u64 = 1_000;
const RECOVERY_CHUNK_SECS: i64 = 10;
const INTERVAL_100MS: SyncPolicy = SyncPolicy::Interval(Duration::from_millis(100));
/// Set (to a data dir) in the child process that measures RSS after open.
const RSS_CHILD_ENV: &str = "STRATA_BENCH_RSS_CHILD";

/// A data dir under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("strata-bench-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &Path, sync: SyncPolicy, now: i64) -> (Engine, Recovery) {
    let opts = PersistOptions {
        dir: dir.to_path_buf(),
        wal: WalOptions { sync, ..WalOptions::default() },
        compression: Compression::None,
        // No size budget: only time retention drops files.
        max_disk: [None; TIERS],
    };
    // The clock stays put while the benches write ever later data.
    let config = EngineConfig { max_future_secs: None, ..EngineConfig::default() };
    Engine::open(config, Clock::Fixed(AtomicI64::new(now)), &opts).expect("open the data dir")
}

/// Resident memory of this process in KiB, from /proc (Linux; zeros elsewhere).
#[derive(Debug, Clone, Copy)]
struct Rss {
    /// VmRSS: everything resident.
    total: u64,
    /// RssAnon: heap and other private memory.
    anon: u64,
    /// RssFile: resident file-backed pages, mostly the mapped sealed files.
    file: u64,
    /// VmHWM: peak VmRSS.
    peak: u64,
}

impl Rss {
    fn now() -> Self {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Rss { total: field("VmRSS:"), anon: field("RssAnon:"), file: field("RssFile:"), peak: field("VmHWM:") }
    }
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = |kib: u64| kib as f64 / 1024.0;
        write!(
            f,
            "VmRSS {:.1} MiB (anon {:.1}, file {:.1}), peak {:.1} MiB",
            m(self.total),
            m(self.anon),
            m(self.file),
            m(self.peak)
        )
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// Total size of the regular files under `path`.
fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Prints the dir's size, per sample and per top-level entry.
fn report_disk(label: &str, dir: &Path, samples: u64) {
    let total = dir_bytes(dir);
    let parts: Vec<String> = ["wal", "tier0", "tier1", "tier2", "meta"]
        .iter()
        .map(|sub| format!("{sub} {:.1} MiB", mib(dir_bytes(&dir.join(sub)))))
        .collect();
    eprintln!(
        "{label}: {:.1} MiB on disk for {samples} samples = {:.2} bytes/sample ({})",
        mib(total),
        total as f64 / samples as f64,
        parts.join(", ")
    );
}

/// Bytes of the sealed tier-0 files and the samples (valid points) they hold.
fn tier0_files(dir: &Path) -> (u64, u64, usize) {
    let (mut bytes, mut samples, mut files) = (0u64, 0u64, 0usize);
    let entries = fs::read_dir(dir.join("tier0")).expect("read tier0/");
    for path in entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "arrow")) {
        let (_, seg) = segment_file::open_segment(&path).expect("sealed tier-0 file opens");
        bytes += fs::metadata(&path).expect("tier-0 file metadata").len();
        for m in seg.metric_ids() {
            let run = seg.run(m).expect("listed metric has a row");
            samples += (0..run.len).filter(|&i| run.is_valid(i)).count() as u64;
        }
        files += 1;
    }
    (bytes, samples, files)
}

fn bench_ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(INGEST_BATCH_SAMPLES));
    group.sample_size(10).warm_up_time(Duration::from_secs(3)).measurement_time(Duration::from_secs(15));
    for (name, sync) in [("fsync_always_10k", SyncPolicy::Always), ("fsync_interval100_10k", INTERVAL_100MS)] {
        let dir = TempDir::new(name);
        let (engine, _) = open(&dir.0, sync, START);
        // Endless in practice: 10^9 s of data, far more than any run ingests.
        let mut batches = demo::batches(&INGEST_SPEC, START, START + 1_000_000_000, INGEST_CHUNK_SECS);
        let mut ingested = 0u64;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let batch = batches.next().expect("the generator outlasts the bench");
                    let t = Instant::now();
                    let report = engine.ingest(&batch).expect("ingest");
                    timed += t.elapsed();
                    assert_eq!(report.accepted, INGEST_BATCH_SAMPLES, "every sample accepted, none late");
                    ingested += black_box(report).accepted;
                }
                timed
            })
        });
        if ingested > 0 {
            eprintln!(
                "ingest/{name}: {ingested} samples ({} s of data) ingested in all; sealed files {:?} bytes per tier",
                ingested / INGEST_SPEC.metrics_per_node as u64,
                engine.disk_bytes().unwrap_or_default()
            );
            report_disk(&format!("ingest/{name}"), &dir.0, ingested);
        }
    }
    group.finish();
    bench_concurrent_ingest(c);
}

/// Four clients ingesting at once (one node each, 10,000 samples per batch,
/// the same 100 s per round so nothing is late) with `fsync = always`: the
/// batches share fsyncs (group commit), so the WAL does not cap throughput
/// at one batch per fsync.
fn bench_concurrent_ingest(c: &mut Criterion) {
    const CLIENTS: usize = 4;
    let spec = GenSpec { nodes: CLIENTS, metrics_per_node: 100, seed: 1 };
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(INGEST_BATCH_SAMPLES * CLIENTS as u64));
    group.sample_size(10).warm_up_time(Duration::from_secs(3)).measurement_time(Duration::from_secs(15));
    let name = "fsync_always_4_clients_x_10k";
    let dir = TempDir::new(name);
    let (engine, _) = open(&dir.0, SyncPolicy::Always, START);
    let mut rounds = demo::batches(&spec, START, START + 1_000_000_000, INGEST_CHUNK_SECS).map(|b| {
        let mut per_node: Vec<IngestBatch> = vec![IngestBatch::default(); CLIENTS];
        per_node[0].nodes = b.nodes;
        for s in b.series {
            let node = s.node.as_deref().unwrap_or_default();
            let i = node.trim_start_matches("node-").parse::<usize>().expect("node-NNNN") % CLIENTS;
            per_node[i].series.push(s);
        }
        per_node
    });
    let (mut batches, fsyncs_before) = (0u64, engine.wal_fsyncs().unwrap_or(0));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let round = rounds.next().expect("the generator outlasts the bench");
                let t = Instant::now();
                std::thread::scope(|sc| {
                    for batch in &round {
                        let engine = &engine;
                        sc.spawn(move || {
                            let report = engine.ingest(batch).expect("ingest");
                            assert_eq!(report.accepted, INGEST_BATCH_SAMPLES, "every sample accepted, none late");
                        });
                    }
                });
                timed += t.elapsed();
                batches += CLIENTS as u64;
            }
            timed
        })
    });
    let fsyncs = engine.wal_fsyncs().unwrap_or(0) - fsyncs_before;
    eprintln!(
        "ingest/{name}: {batches} batches acknowledged with {fsyncs} WAL fsyncs ({:.2} batches per fsync)",
        batches as f64 / fsyncs.max(1) as f64
    );
    group.finish();
}

/// A data dir holding `samples` samples written through `Engine::ingest`.
struct Fixture {
    dir: TempDir,
    samples: u64,
    /// The clock for reopening: one second after the newest sample.
    now: i64,
}

fn build(name: &str, secs: i64, final_checkpoint: bool) -> Fixture {
    let dir = TempDir::new(&name.replace('/', "-"));
    let end = START + secs;
    let t = Instant::now();
    let mut samples = 0u64;
    {
        let (engine, _) = open(&dir.0, INTERVAL_100MS, end);
        for batch in demo::batches(&RECOVERY_SPEC, START, end, RECOVERY_CHUNK_SECS) {
            let report = engine.ingest(&batch).expect("ingest");
            assert_eq!(report.rejected_late, 0, "setup data is time-ordered");
            samples += report.accepted;
        }
        if final_checkpoint {
            engine.checkpoint().expect("final checkpoint");
        }
        // Dropped here, without a checkpoint unless asked: what a crash leaves.
    }
    assert_eq!(samples, RECOVERY_SERIES * secs as u64);
    let secs_taken = t.elapsed().as_secs_f64();
    eprintln!(
        "{name}: setup ingested {samples} samples in {secs_taken:.1} s ({:.2} M samples/s, interval:100)",
        samples as f64 / secs_taken / 1e6
    );
    report_disk(name, &dir.0, samples);
    let (bytes, t0_samples, files) = tier0_files(&dir.0);
    eprintln!(
        "{name}: tier0/ holds {files} sealed files, {:.1} MiB for {t0_samples} samples = {:.2} bytes/sample",
        mib(bytes),
        bytes as f64 / t0_samples.max(1) as f64
    );
    let fx = Fixture { dir, samples, now: end + 1 };
    report_open(name, &fx);
    fx
}

/// Opens the fixture once untimed: what recovery did, and RSS after open
/// both in this process (which has run the setup) and in a fresh one.
fn report_open(name: &str, fx: &Fixture) {
    let before = Rss::now();
    let t = Instant::now();
    let (engine, rec) = open(&fx.dir.0, INTERVAL_100MS, fx.now);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let after = Rss::now();
    eprintln!(
        "{name}: first open {ms:.0} ms: {} sealed files ({:.1} MiB), snapshot lsn {}, {} WAL records replayed, {} \
         replay errors; this process (after setup): VmRSS {:.1} MiB before, after: {}",
        rec.segments,
        mib(rec.segment_bytes),
        rec.snapshot_lsn,
        rec.replayed_records,
        rec.replay_errors,
        before.total as f64 / 1024.0,
        after
    );
    assert_eq!(rec.replay_errors, 0);
    drop(engine);
    let exe = std::env::current_exe().expect("bench executable path");
    let status = Command::new(exe).env(RSS_CHILD_ENV, &fx.dir.0).status().expect("spawn the RSS child");
    assert!(status.success(), "RSS child failed: {status}");
}

/// The child process: open the dir, report RSS, exit.
fn rss_child(dir: &Path) {
    let before = Rss::now();
    // Opening does not consult the clock; any value will do.
    let t = Instant::now();
    let (engine, rec) = open(dir, INTERVAL_100MS, START);
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let after = Rss::now();
    eprintln!(
        "  fresh process: open {ms:.0} ms ({} records replayed); VmRSS {:.1} MiB before open, after: {after}",
        rec.replayed_records,
        before.total as f64 / 1024.0
    );
    drop(engine);
}

fn bench_recovery(c: &mut Criterion) {
    let mut sizes = vec![("10M", 10_000i64)];
    if std::env::var("STRATA_BENCH_100M").is_ok_and(|v| v == "1") {
        sizes.push(("100M", 100_000));
    }
    let mut group = c.benchmark_group("recovery");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    // Replaying the crash variant's WAL tail takes ~2 s per open: 15 s makes
    // that one iteration per sample (~20 s), the clean variant ~15 s.
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(15));
    for (size, secs) in sizes {
        group.throughput(Throughput::Elements(RECOVERY_SERIES * secs as u64));
        for (suffix, final_checkpoint) in [("", false), ("_after_checkpoint", true)] {
            let id = format!("open_{size}{suffix}");
            // Built on first use, so a filtered-out bench costs no setup.
            let mut fixture: Option<Fixture> = None;
            group.bench_function(id.as_str(), |b| {
                let fx = fixture.get_or_insert_with(|| build(&format!("recovery/{id}"), secs, final_checkpoint));
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        let (engine, rec) = open(&fx.dir.0, INTERVAL_100MS, fx.now);
                        timed += t.elapsed();
                        assert_eq!(rec.replay_errors, 0);
                        // Closing (stopping the WAL thread, unmapping) is not timed.
                        drop(black_box(engine));
                    }
                    timed
                })
            });
            if let Some(fx) = fixture {
                eprintln!("recovery/{id}: {} samples; removing {}", fx.samples, fx.dir.0.display());
            }
        }
    }
    group.finish();
}

/// Decoding an ingest body, the first step of every ingest request: an
/// Arrow IPC stream against the same batch as JSON (250 series × 240 s);
/// then the WAL record of that batch, encoded and decoded.
fn bench_decode(c: &mut Criterion) {
    use strata_engine::ingest::arrow::{decode_stream, encode_stream};
    let spec = GenSpec { nodes: 10, metrics_per_node: 25, seed: 5 };
    let Some(batch) = demo::batches(&spec, 1_700_000_000, 1_700_000_240, 240).next() else { return };
    let arrow = encode_stream(&batch).expect("encode arrow");
    let json = serde_json::to_vec(&batch).expect("encode json");
    let samples: usize = batch.series.iter().map(|s| s.points.len()).sum();
    eprintln!("decode: {samples} samples, {} B as Arrow IPC, {} B as JSON", arrow.len(), json.len());
    let mut group = c.benchmark_group("ingest_decode");
    group.throughput(Throughput::Elements(samples as u64));
    group.bench_function("arrow_ipc", |b| b.iter(|| decode_stream(black_box(arrow.as_slice())).expect("decode")));
    // The peer benchmark's shape: every series shares its context and
    // dimension names, only the instance tells them apart.
    let mut shared = batch.clone();
    for s in &mut shared.series {
        s.instance = Some(format!("{}.{}.{}", s.node.as_deref().unwrap_or_default(), s.context, s.dimension));
        (s.context, s.dimension) = ("cpu.cpu".into(), "user".into());
    }
    let shared = encode_stream(&shared).expect("encode arrow");
    group.bench_function("arrow_ipc_shared_names", |b| {
        b.iter(|| decode_stream(black_box(shared.as_slice())).expect("decode"))
    });
    // A collector's shape: rows in time order, every metric once per
    // second, so every row is a run of its own.
    let mut by_time = IngestBatch { nodes: batch.nodes.clone(), series: Vec::new() };
    let seconds = batch.series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    for t in 0..seconds {
        for s in batch.series.iter().filter(|s| t < s.points.len()) {
            by_time.series.push(SeriesSpec { points: vec![s.points[t]], ..s.clone() });
        }
    }
    let by_time = encode_stream(&by_time).expect("encode arrow");
    group.bench_function("arrow_ipc_time_ordered", |b| {
        b.iter(|| decode_stream(black_box(by_time.as_slice())).expect("decode"))
    });
    group.bench_function("json", |b| {
        b.iter(|| serde_json::from_slice::<IngestBatch>(black_box(&json)).expect("decode"))
    });
    // What the endpoint runs: the direct reader of the common shape.
    group.bench_function("json_direct", |b| {
        b.iter(|| strata_engine::ingest::fast_json::parse(black_box(&json)).expect("the common shape"))
    });
    group.finish();

    // The WAL record every acknowledged batch writes, and replay's decode
    // of it.
    use strata_engine::ingest::codec;
    let mut record = Vec::new();
    codec::encode("h", None, &batch, &mut record);
    eprintln!("wal record: {} B, {:.2} B/sample", record.len(), record.len() as f64 / samples as f64);
    let mut group = c.benchmark_group("wal_record");
    group.throughput(Throughput::Elements(samples as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            record.clear();
            codec::encode("h", None, black_box(&batch), &mut record);
        })
    });
    group.bench_function("decode", |b| b.iter(|| codec::decode(black_box(&record)).expect("decode")));
    group.finish();
}

/// What a checkpoint lays out for an open rollup span: 1,000 series with
/// six hours of data, late in a tier-1 day span and in a 30-day tier-2
/// span, as the snapshot writes it (the slots the blocks hold) against the
/// whole span (the layout before format 4, and the one sealing uses).
fn bench_snapshot(c: &mut Criterion) {
    use strata_engine::storage::open_span::OpenSpan;
    use strata_engine::storage::segment::Segment;
    let mut group = c.benchmark_group("checkpoint");
    for (tier, res, points, first) in [(1u8, 60, 1440, 1000), (2, 3600, 720, 690)] {
        let hours = 6 * 3600 / res;
        let mut span = OpenSpan::new(0, res, points, false);
        for m in 0..1000u32 {
            for k in first..first + hours as usize {
                span.merge_agg(m, k as i64 * res, f64::from(m) + k as f64 / 100.0, false);
            }
        }
        let held = span.held_slots().expect("data");
        eprintln!("checkpoint: tier {tier} span of {points} points, {} held", held.len());
        group.throughput(Throughput::Elements(1000 * hours as u64));
        group.bench_function(format!("snapshot_tier{tier}_6h_held_slots"), |b| {
            b.iter(|| Segment::seal_range(tier, black_box(&span), held.clone()).expect("seal"))
        });
        group.bench_function(format!("snapshot_tier{tier}_6h_whole_span"), |b| {
            b.iter(|| Segment::seal(tier, black_box(&span)).expect("seal"))
        });
    }
    group.finish();
}

fn main() {
    if let Some(dir) = std::env::var_os(RSS_CHILD_ENV) {
        rss_child(Path::new(&dir));
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench_decode(&mut c);
    bench_snapshot(&mut c);
    bench_ingest(&mut c);
    bench_recovery(&mut c);
    c.final_summary();
}
