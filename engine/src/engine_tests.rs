//! The durable engine under concurrent ingest: batches from several threads
//! are written to the WAL in apply order and acknowledged after a shared
//! fsync; a restart without a checkpoint replays exactly what was
//! acknowledged.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;

use crate::engine::{Clock, Engine, EngineConfig};
use crate::error::EngineError;
use crate::ingest::{IngestBatch, Point, SeriesSpec};
use crate::persist::PersistOptions;
use crate::query::body::parse_body;
use crate::query::request::ApiVersion;
use crate::query::result::PA_EMPTY;
use crate::storage::segment_file::Compression;
use crate::storage::TIERS;
use crate::wal::{SyncPolicy, WalOptions};

/// A multiple of 3600: the whole test stays inside one tier-0 span.
const T0: i64 = 1_700_002_800;
const CLIENTS: usize = 4;
const BATCHES: i64 = 30;
const SECS: i64 = 60;

struct TempDir(PathBuf);

impl TempDir {
    /// An empty directory under the system temp dir, removed when dropped.
    fn fresh(name: &str) -> TempDir {
        let dir = TempDir(std::env::temp_dir().join(format!("strata-engine-{name}-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &TempDir) -> Engine {
    open_at(dir, T0 + BATCHES * SECS + 1)
}

fn open_at(dir: &TempDir, now: i64) -> Engine {
    try_open_at(dir, now).expect("open the data dir").0
}

/// Opens `dir` as [`open_at`] does, for tests of starts that must refuse.
fn try_open_at(dir: &TempDir, now: i64) -> crate::error::Result<(Engine, crate::persist::Recovery)> {
    let opts = PersistOptions {
        dir: dir.0.clone(),
        wal: WalOptions { sync: SyncPolicy::Always, ..WalOptions::default() },
        compression: Compression::None,
        max_disk: [None; TIERS],
    };
    Engine::open(EngineConfig::default(), Clock::Fixed(AtomicI64::new(now)), &opts)
}

fn value(client: usize, t: i64) -> f64 {
    (client as i64 * 1000 + (t - T0)) as f64
}

/// The client's own series, plus the same slots of one series every client
/// writes (last write wins, so its values show the apply order).
fn batch(client: usize, k: i64) -> IngestBatch {
    batch_of(client, k, SECS)
}

/// Batch `k` of `secs` seconds from `client`.
fn batch_of(client: usize, k: i64, secs: i64) -> IngestBatch {
    let from = T0 + k * secs + 1;
    let spec = |node: String| SeriesSpec {
        node: Some(node),
        context: "test.concurrent".into(),
        dimension: "v".into(),
        points: (from..from + secs).map(|t| Point { t, value: Some(value(client, t)), anomalous: false }).collect(),
        ..Default::default()
    };
    IngestBatch { nodes: vec![], series: vec![spec(format!("client-{client}")), spec("shared".into())] }
}

/// Every per-second value of the shared series.
fn shared(e: &Engine) -> Vec<f64> {
    shared_over(e, BATCHES * SECS)
}

/// The shared series' values of the first `secs` seconds.
fn shared_over(e: &Engine, secs: i64) -> Vec<f64> {
    let body = json!({
        "scope": {"contexts": ["test.concurrent"], "nodes": ["shared"]},
        "window": {"after": T0 + 1, "before": T0 + secs, "points": secs, "tier": 0},
    });
    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
    assert_eq!(r.series.len(), 1);
    r.series[0].values.clone()
}

fn sums(e: &Engine) -> Vec<f64> {
    sums_over(e, BATCHES * SECS)
}

/// Each client's sum over the first `secs` seconds (a multiple of 60: the
/// minute buckets line up with the window, which one bucket would not).
fn sums_over(e: &Engine, secs: i64) -> Vec<f64> {
    let body = json!({
        "scope": {"contexts": ["test.concurrent"], "nodes": ["client-*"]},
        "window": {"after": T0, "before": T0 + secs, "points": secs / 60, "tier": 0},
        "aggregations": {"time": {"time_group": "sum"}, "metrics": [{"group_by": ["node"], "aggregation": "sum"}]},
    });
    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
    let mut by_name: Vec<(String, f64)> =
        r.series.iter().map(|s| (s.key.name.clone(), s.values.iter().sum())).collect();
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    by_name.into_iter().map(|(_, v)| v).collect()
}

#[test]
fn concurrent_acknowledged_batches_all_survive_a_restart_without_checkpoint() {
    let dir = TempDir::fresh("concurrent");
    let engine = open(&dir);
    std::thread::scope(|s| {
        for client in 0..CLIENTS {
            let engine = &engine;
            s.spawn(move || {
                for k in 0..BATCHES {
                    let report = engine.ingest(&batch(client, k)).expect("ingest");
                    assert_eq!(
                        (report.accepted, report.rejected_late),
                        (2 * SECS as u64, 0),
                        "client {client} batch {k}"
                    );
                }
            });
        }
    });
    let want: Vec<f64> = (0..CLIENTS).map(|c| (T0 + 1..=T0 + BATCHES * SECS).map(|t| value(c, t)).sum()).collect();
    assert_eq!(sums(&engine), want, "before the restart");
    let last_writes = shared(&engine);
    assert_eq!(last_writes.len(), (BATCHES * SECS) as usize);
    for (i, v) in last_writes.iter().enumerate() {
        let t = T0 + 1 + i as i64;
        assert!((0..CLIENTS).any(|c| value(c, t) == *v), "shared value {v} at {t} is no client's");
    }
    let fsyncs = engine.wal_fsyncs().expect("a durable engine counts fsyncs");
    assert!(fsyncs >= 1 && fsyncs <= (CLIENTS as u64) * BATCHES as u64, "{fsyncs} fsyncs");
    // Dropped without a checkpoint, as a crash leaves it: all from the WAL.
    drop(engine);
    let engine = open(&dir);
    assert_eq!(sums(&engine), want, "after replaying the WAL");
    assert_eq!(shared(&engine), last_writes, "the WAL replays in the order batches were applied");
}

/// Batches crossing hours: spans close and are laid out by whichever
/// ingest thread comes first, outside the ingest order, while the others
/// apply, and checkpoints are planned in the background. After a crash (no
/// final checkpoint) the checkpoint plus the WAL's rest hold every
/// acknowledged sample, each once: a checkpoint's LSN never claims a record
/// it does not hold, nor misses one it does.
#[test]
fn concurrent_batches_across_sealed_hours_survive_a_restart() {
    const HOURS: i64 = 3;
    const CHUNK: i64 = 600;
    let total = HOURS * 3600;
    let dir = TempDir::fresh("concurrent-seal");
    let engine = open_at(&dir, T0 + total + 1);
    // In step, batch by batch: a client far ahead would move the head past
    // the other's samples, which would then be late.
    let step = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for client in 0..2 {
            let (engine, step) = (&engine, &step);
            s.spawn(move || {
                for k in 0..total / CHUNK {
                    step.wait();
                    let report = engine.ingest(&batch_of(client, k, CHUNK)).expect("ingest");
                    assert_eq!(
                        (report.accepted, report.rejected_late),
                        (2 * CHUNK as u64, 0),
                        "client {client} batch {k}"
                    );
                }
            });
        }
    });
    let want: Vec<f64> = (0..2).map(|c| (T0 + 1..=T0 + total).map(|t| value(c, t)).sum()).collect();
    assert_eq!(sums_over(&engine, total), want, "before the restart");
    let last_writes = shared_over(&engine, total);
    let sealed_files = || std::fs::read_dir(dir.0.join("tier0")).map_or(0, |d| d.count());
    drop(engine);
    assert!(sealed_files() >= 1, "closed hours were checkpointed as segment files");
    let engine = open_at(&dir, T0 + total + 1);
    assert_eq!(sums_over(&engine, total), want, "after the checkpoint and the WAL's rest");
    assert_eq!(shared_over(&engine, total), last_writes, "in the order batches were applied");
}

#[test]
fn wal_records_of_earlier_builds_still_replay() {
    let dir = TempDir::fresh("legacy-wal");
    let engine = open(&dir);
    engine.ingest(&batch(0, 0)).expect("a binary record");
    drop(engine);
    {
        // What builds before the binary codec appended for a batch.
        let (wal, _, _) = crate::wal::Wal::open(&dir.0.join("wal"), WalOptions::default(), 0).expect("wal");
        let legacy = json!({"default_node": "h", "batch": batch(1, 1)});
        wal.append(&serde_json::to_vec(&legacy).expect("json")).expect("append");
        // And what builds of format 4 appended (the second binary layout).
        let mut v2 = Vec::new();
        crate::ingest::codec::encode_v2("h", &batch(2, 2), &mut v2);
        wal.append(&v2).expect("append");
    }
    let engine = open(&dir);
    let want = |c: usize, k: i64| (T0 + k * SECS + 1..T0 + (k + 1) * SECS + 1).map(|t| value(c, t)).sum::<f64>();
    assert_eq!(sums(&engine)[..3], [want(0, 0), want(1, 1), want(2, 2)], "every record replayed");
}

/// A machine GUID given at ingest is the node's `mg` from then on: after
/// a WAL replay and after a checkpoint; nodes without one keep the derived
/// GUID.
#[test]
fn machine_guids_from_ingest_survive_restarts() {
    const G: &str = "6f1c3c52-7d7e-4b0a-9c41-2f8e5d0a1b23";
    let dir = TempDir::fresh("guid");
    let mut b = batch(0, 0);
    b.nodes =
        vec![crate::ingest::NodeSpec { id: "client-0".into(), machine_guid: Some(G.into()), ..Default::default() }];
    let guids = |e: &Engine| -> Vec<(String, String)> {
        let st = e.read().expect("read");
        st.catalog.registry().nodes().iter().map(|n| (n.id.clone(), n.machine_guid.clone())).collect()
    };
    let want =
        vec![("client-0".to_string(), G.to_string()), ("shared".to_string(), crate::model::machine_guid_for("shared"))];
    let engine = open(&dir);
    engine.ingest(&b).expect("ingest");
    assert_eq!(guids(&engine), want);
    drop(engine);
    let engine = open(&dir);
    assert_eq!(guids(&engine), want, "after replaying the WAL");
    engine.checkpoint().expect("checkpoint");
    drop(engine);
    let engine = open(&dir);
    assert_eq!(guids(&engine), want, "after restoring the checkpoint");
}

/// Data dirs of format 2 hold tier-0 segments in the plain layout: they
/// still read, answer exactly as the encoded ones did, and the upgraded
/// dir (VERSION 3) seals new hours encoded.
#[test]
fn format_2_plain_segments_read_after_the_upgrade() {
    use crate::storage::segment::{Layout, Segment};
    use crate::storage::segment_file::{open_segment, write_segment};

    let dir = TempDir::fresh("format2");
    let opts = PersistOptions {
        dir: dir.0.clone(),
        wal: WalOptions::default(),
        compression: Compression::None,
        max_disk: [None; TIERS],
    };
    let open_at =
        |now: i64| Engine::open(EngineConfig::default(), Clock::Fixed(AtomicI64::new(now)), &opts).expect("open").0;
    let answers = |e: &Engine| -> Vec<Vec<f64>> {
        ["average", "min", "median"]
            .iter()
            .map(|tg| {
                let body = json!({
                    "scope": {"contexts": ["test.concurrent"]},
                    "window": {"after": T0 + 17, "before": T0 + 3583, "points": 13},
                    "aggregations": {"time": {"time_group": tg}},
                });
                let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
                r.series.iter().flat_map(|s| s.values.clone()).collect()
            })
            .collect()
    };
    let engine = open_at(T0 + 2 * 3600 + 1);
    // The first hour, then a minute past its late grace, which closes it.
    for k in (0..60).chain([70]) {
        engine.ingest(&batch(k as usize % 3, k)).expect("ingest");
    }
    engine.checkpoint().expect("checkpoint");
    let want = answers(&engine);
    drop(engine);

    // Rewrite every tier-0 file as format 2 wrote it, and point the manifests at it.
    let tier0 = dir.0.join("tier0");
    let files: Vec<PathBuf> = std::fs::read_dir(&tier0).expect("tier0").flatten().map(|e| e.path()).collect();
    assert!(!files.is_empty(), "the hour was sealed");
    for old in files {
        let (name, seg) = open_segment(&old).expect("open");
        assert_eq!(seg.layout(), Layout::Encoded);
        let plain = Segment::seal_plain(&seg.to_open()).expect("plain");
        let new = write_segment(&tier0, &plain, name.update_every, Compression::None).expect("write");
        for snap in std::fs::read_dir(dir.0.join("meta")).expect("meta").flatten() {
            let manifest = snap.path().join("manifest.json");
            if let Ok(text) = std::fs::read_to_string(&manifest) {
                let file = |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
                std::fs::write(&manifest, text.replace(&file(&old), &file(&new))).expect("manifest");
                // Format 2 wrote no checksums of its snapshots.
                let _ = std::fs::remove_file(snap.path().join("checksums"));
            }
        }
        std::fs::remove_file(&old).expect("rm");
        assert_eq!(open_segment(&new).expect("reopen").1.layout(), Layout::Raw);
    }
    std::fs::write(dir.0.join("VERSION"), "2\n").expect("VERSION");

    let engine = open_at(T0 + 2 * 3600 + 1);
    assert_eq!(answers(&engine), want, "plain segments answer as the encoded ones did");
    assert_eq!(
        std::fs::read_to_string(dir.0.join("VERSION")).expect("VERSION").trim(),
        crate::persist::FORMAT_VERSION.to_string()
    );
    drop(engine);
    let engine = open_at(T0 + 3 * 3600 + 1);
    for k in (71..120).chain([130]) {
        engine.ingest(&batch(0, k)).expect("ingest the next hour");
    }
    engine.checkpoint().expect("checkpoint");
    let layouts: Vec<Layout> = std::fs::read_dir(&tier0)
        .expect("tier0")
        .flatten()
        .map(|e| open_segment(&e.path()).expect("open").1.layout())
        .collect();
    assert!(layouts.contains(&Layout::Raw) && layouts.contains(&Layout::Encoded), "{layouts:?}");
}

/// Sealing changes no answer: queries over a day answered from the open
/// spans (plain values) and again after the day's tier-0 hours and tier-1
/// day are sealed (codec rows) agree, to the last bit for rollups and
/// within rounding for tier-0 sums (which the codec adds as integers).
#[test]
fn sealed_encoded_spans_answer_as_the_open_ones() {
    let dir = TempDir::fresh("sealed");
    let opts = PersistOptions {
        dir: dir.0.clone(),
        wal: WalOptions::default(),
        compression: Compression::None,
        max_disk: [None; TIERS],
    };
    const HOURS: i64 = 27;
    let clock = Clock::Fixed(AtomicI64::new(T0 + (HOURS + 1) * 3600));
    let engine = Engine::open(EngineConfig::default(), clock, &opts).expect("open").0;
    let v = |t: i64| {
        let x = 40.0 + 20.0 * ((t % 86_400) as f64 / 3000.0).sin() + ((t * 7919) % 13) as f64 * 0.37;
        (x * 100.0).round() / 100.0
    };
    for h in 0..HOURS {
        let from = T0 + h * 3600 + 1;
        let spec = SeriesSpec {
            node: Some("n".into()),
            context: "test.sealed".into(),
            dimension: "v".into(),
            // A gap every 97 s and an anomaly every 61 s.
            points: (from..from + 3600)
                .filter(|t| t % 97 != 0)
                .map(|t| Point { t, value: Some(v(t)), anomalous: t % 61 == 0 })
                .collect(),
            ..Default::default()
        };
        engine.ingest(&IngestBatch { nodes: vec![], series: vec![spec] }).expect("ingest");
    }
    let windows = [(T0 + 4000, T0 + 90_017, 37), (T0 + 3600, T0 + 3600 + 86_400, 24), (T0 + 5555, T0 + 6666, 111)];
    let answers = |e: &Engine| -> Vec<(String, Vec<f64>)> {
        let mut out = Vec::new();
        for (after, before, points) in windows {
            for tier in [None, Some(1), Some(0)] {
                for tg in ["average", "sum", "min", "max", "median", "extremes"] {
                    let mut body = json!({
                        "scope": {"contexts": ["test.sealed"]},
                        "window": {"after": after, "before": before, "points": points},
                        "aggregations": {"time": {"time_group": tg}},
                    });
                    if tg == "median" {
                        body["options"] = json!(["anomaly-bit"]);
                    }
                    if let Some(t) = tier {
                        body["window"]["tier"] = json!(t);
                    }
                    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
                    out.push((format!("{after}..{before} tier {tier:?} {tg}"), r.series[0].values.clone()));
                }
            }
        }
        out
    };
    let open = answers(&engine);
    engine.checkpoint().expect("checkpoint seals the closed hours and the day");
    let tier_files = |t: usize| std::fs::read_dir(dir.0.join(format!("tier{t}"))).map_or(0, |d| d.count());
    assert!(tier_files(0) >= 24 && tier_files(1) >= 1, "{} {}", tier_files(0), tier_files(1));
    let sealed = answers(&engine);
    for ((what, a), (_, b)) in open.iter().zip(&sealed) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            let close = (x - y).abs() <= 1e-12 * x.abs().max(1.0) || (x.is_nan() && y.is_nan());
            assert!(close, "{what}: {x} open, {y} sealed");
            if what.contains("Some(1)") {
                assert_eq!(x.to_bits(), y.to_bits(), "{what}: rollups read back bit for bit");
            }
        }
    }
    drop(engine);
    let clock = Clock::Fixed(AtomicI64::new(T0 + (HOURS + 1) * 3600));
    let engine = Engine::open(EngineConfig::default(), clock, &opts).expect("reopen").0;
    assert_eq!(answers(&engine), sealed, "read back from the mapped files");
}

/// What a restart answers against an engine that never stopped: per
/// tier, per time group, over windows whose buckets do not line up.
/// Values as bits (a gap's NaN equals itself), with each point's flags.
fn every_tier_answers(e: &Engine, to: i64) -> Vec<(String, Vec<u64>, Vec<u8>)> {
    let mut out = Vec::new();
    for tier in 0..TIERS {
        for points in [61, 997] {
            for tg in ["average", "sum", "min", "max"] {
                let body = json!({
                    "scope": {"contexts": ["test.cut"]},
                    "window": {"after": T0 - 3600, "before": to, "points": points, "tier": tier},
                    "aggregations": {"time": {"time_group": tg}, "metrics": [{"group_by": ["node"], "aggregation": "sum"}]},
                });
                let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
                for s in &r.series {
                    let bits = s.values.iter().map(|v| v.to_bits()).collect();
                    out.push((format!("tier {tier} points {points} {tg} {}", s.key.name), bits, s.flags.clone()));
                }
            }
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Snapshots hold only the slots open spans held. A restart from one,
    /// followed by the WAL's rest (written later in the same spans, past
    /// the cut), answers on every tier exactly as an engine that never
    /// stopped: the cut loses nothing, and the restored spans start where
    /// their tier's spans start and take writes over their whole length.
    #[test]
    fn restarts_from_cut_snapshots_answer_as_an_engine_that_never_stopped(
        ue in proptest::sample::select(vec![1i64, 2, 5]),
        offset in 0i64..7200,
        before_cut in 1i64..20_000,
        after_cut in 1i64..40_000,
        gap_every in 5i64..300,
    ) {
        let dir = TempDir::fresh(&format!("cut-{ue}-{offset}-{before_cut}"));
        let now = T0 + 70_000;
        let opts = PersistOptions {
            dir: dir.0.clone(),
            wal: WalOptions::default(),
            compression: Compression::None,
            max_disk: [None; TIERS],
        };
        let reopen = || Engine::open(EngineConfig::default(), Clock::Fixed(AtomicI64::new(now)), &opts).expect("open").0;
        let unstopped = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(now)));
        let first = (T0 + offset).div_euclid(ue) * ue;
        let batch_over = |from: i64, to: i64| {
            let spec = |node: &str, skip: i64| SeriesSpec {
                node: Some(node.into()),
                context: "test.cut".into(),
                dimension: "v".into(),
                update_every: Some(ue),
                points: (from..to)
                    .step_by(ue as usize)
                    .filter(|t| (t / ue) % skip != 0)
                    .map(|t| Point { t, value: Some(((t * 7919) % 10_007) as f64 / 100.0), anomalous: false })
                    .collect(),
                ..Default::default()
            };
            IngestBatch { nodes: vec![], series: vec![spec("dense", gap_every), spec("sparse", 3)] }
        };
        let cut = first + before_cut.div_euclid(ue) * ue;
        let end = cut + after_cut.div_euclid(ue) * ue;
        let batches: Vec<(i64, i64)> = (first..end).step_by(1800).map(|a| (a, (a + 1800).min(end))).collect();
        let engine = reopen();
        for &(a, b) in &batches {
            let a = a.max(first);
            for (from, to) in [(a, b.min(cut)), (a.max(cut), b)] {
                if from >= to {
                    continue;
                }
                let batch = batch_over(from, to);
                engine.ingest(&batch).expect("ingest");
                unstopped.ingest(&batch).expect("ingest");
                if to == cut {
                    engine.checkpoint().expect("checkpoint at the cut");
                }
            }
        }
        // Dropped without a final checkpoint: the restart reads the cut snapshot and replays the rest.
        drop(engine);
        let restarted = reopen();
        let want = every_tier_answers(&unstopped, end);
        // A point holds data when its flags say so: a value may be 0
        // (the generator's values are 0 at multiples of 10,007).
        let seen = |flags: &[u8]| flags.iter().filter(|&&f| f & PA_EMPTY == 0).count();
        proptest::prop_assert!(want.iter().all(|(_, _, f)| seen(f) > 0), "every query sees data");
        let got = every_tier_answers(&restarted, end);
        proptest::prop_assert_eq!(got.len(), want.len());
        let differ = got.iter().zip(&want).find(|(g, w)| g != w).map(|(g, _)| g.0.clone());
        proptest::prop_assert!(differ.is_none(), "the restart answers {:?} differently", differ);
    }
}

/// Batches that create one metric at the same moment: both pass the
/// catalog checks made before the order lock, so the later one must be
/// checked again under it. With different update_every values exactly one
/// is applied and the other refused; with the same one, the metric is
/// counted as new once.
#[test]
fn racing_batches_of_one_new_metric_agree_on_it() {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 3600)));
    let one = |context: &str, ue: i64| IngestBatch {
        series: vec![SeriesSpec {
            context: context.into(),
            dimension: "d".into(),
            update_every: Some(ue),
            points: vec![Point::new(T0, Some(1.0))],
            ..SeriesSpec::default()
        }],
        ..IngestBatch::default()
    };
    let race = |batches: [IngestBatch; 2]| {
        let go = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            let racers: Vec<_> = batches
                .iter()
                .map(|b| {
                    let (e, go) = (&e, &go);
                    s.spawn(move || {
                        go.wait();
                        e.ingest(b)
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().expect("no panic")).collect::<Vec<_>>()
        })
    };
    for round in 0..300 {
        let context = format!("race.ue.{round}");
        let results = race([one(&context, 1), one(&context, 5)]);
        let applied: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(applied.len(), 1, "round {round}: exactly one applied: {results:?}");
        assert_eq!(applied[0].new_series, 1);
        let refused = results.iter().find_map(|r| r.as_ref().err()).expect("one refused").to_string();
        assert!(refused.contains("is collected every"), "{refused}");

        let context = format!("race.same.{round}");
        let results = race([one(&context, 2), one(&context, 2)]);
        let new: u64 = results.iter().map(|r| r.as_ref().expect("both applied").new_series).sum();
        assert_eq!(new, 1, "round {round}: one new series between the two: {results:?}");
    }
}

/// A batch naming known series with unchanged metadata leaves the
/// registry's generation alone, so ingest's catalog checks run once, before
/// the order lock (see `Engine::ingest_with`).
#[test]
fn known_series_leave_the_generation_alone() {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 3600)));
    let generation = |e: &Engine| e.read().expect("state").catalog.registry().generation();
    e.ingest(&batch(0, 0)).expect("first batch");
    let before = generation(&e);
    for k in 1..4 {
        e.ingest(&batch(0, k)).expect("later batch");
    }
    assert_eq!(generation(&e), before);
    e.ingest(&batch(1, 0)).expect("another client's series");
    assert!(generation(&e) > before, "new series move it");
}

/// A batch of known series takes the checks by metric id
/// ([`crate::ingest::validate_known`]): a series sent with another
/// update_every than its metric's is refused as a batch naming it by
/// name would be, with its position, and nothing of the batch is written.
#[test]
fn known_series_keep_their_update_every() {
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 3600)));
    e.ingest(&batch(0, 0)).expect("registers its series");
    let mut changed = batch(0, 1);
    changed.series[1].update_every = Some(5);
    let before = shared_over(&e, 2 * SECS);
    match e.ingest(&changed) {
        Err(EngineError::InvalidBatch { path, message }) => {
            assert_eq!(path, "series[1].update_every");
            assert_eq!(message, "metric shared/test.concurrent/v is collected every 1s, not 5s");
        }
        other => panic!("another update_every must be refused: {other:?}"),
    }
    assert_eq!(shared_over(&e, 2 * SECS), before, "nothing of the refused batch is written");
    changed.series[1].update_every = Some(1);
    assert_eq!(e.ingest(&changed).expect("the same update_every").new_series, 0);
}

/// A batch of known series with unchanged metadata applies while a reader
/// holds the catalog (it takes no catalog write lock); a batch that creates
/// a series waits for the reader.
#[test]
fn batches_of_known_series_take_no_catalog_write_lock() {
    use std::time::{Duration, Instant};
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 3600)));
    e.ingest(&batch(0, 0)).expect("registers its series");
    let reader = e.catalog.read().expect("catalog");
    let finishes = |h: &std::thread::ScopedJoinHandle<'_, _>, within: Duration| {
        let deadline = Instant::now() + within;
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        h.is_finished()
    };
    std::thread::scope(|s| {
        let known = s.spawn(|| e.ingest(&batch(0, 1)));
        assert!(finishes(&known, Duration::from_secs(20)), "a batch of known series waited for the catalog");
        assert_eq!(known.join().expect("no panic").expect("applied").accepted, 2 * SECS as u64);
        let creating = s.spawn(|| e.ingest(&batch(1, 0)));
        assert!(!finishes(&creating, Duration::from_millis(300)), "a new series needs the write lock");
        drop(reader);
        assert_eq!(creating.join().expect("no panic").expect("applied").new_series, 1);
    });
}

/// An ingest that closes a span while another thread is sealing leaves the
/// span to that sealer and returns, until more than `MAX_UNSEALED` spans
/// wait; then it waits for the sealer and seals them all. The test holds
/// `sealing` itself to play the busy sealer.
#[test]
fn ingests_leave_closed_spans_to_a_busy_sealer_up_to_a_bound() {
    use std::time::{Duration, Instant};
    const CHUNK: i64 = 600;
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 48 * 3600)));
    let waiting = |e: &Engine| e.read().expect("state").store.pending_seal_count();
    fn finishes<T>(h: &std::thread::ScopedJoinHandle<'_, T>, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        h.is_finished()
    }
    let mut k = 0;
    // Unhindered, every ingest lays out what it closed.
    while k < 3 * 3600 / CHUNK {
        e.ingest(&batch_of(0, k, CHUNK)).expect("ingest");
        assert_eq!(waiting(&e), 0, "batch {k}");
        k += 1;
    }
    std::thread::scope(|s| {
        // Held here, so a failing assert drops it and the threads end.
        let busy = e.sealing.lock().expect("sealing");
        let below = s.spawn(|| {
            let mut k = k;
            while waiting(&e) < super::MAX_UNSEALED {
                e.ingest(&batch_of(0, k, CHUNK)).expect("ingest");
                k += 1;
            }
            k
        });
        assert!(finishes(&below, Duration::from_secs(20)), "an ingest waited for the sealer below the bound");
        let k = below.join().expect("no panic");
        assert_eq!(waiting(&e), super::MAX_UNSEALED, "spans are closed one hour at a time");
        // An hour more: one more span closes, and that ingest waits.
        let engine = &e;
        let blocked = s.spawn(move || {
            for k in k..k + 3600 / CHUNK {
                engine.ingest(&batch_of(0, k, CHUNK)).expect("ingest");
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while waiting(&e) <= super::MAX_UNSEALED && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(waiting(&e), super::MAX_UNSEALED + 1, "the next hour closed");
        assert!(!finishes(&blocked, Duration::from_millis(300)), "past the bound an ingest waits for the sealer");
        drop(busy);
        blocked.join().expect("no panic");
    });
    assert_eq!(waiting(&e), 0, "the waiting ingest sealed every closed span");
    let sealed = e.read().expect("state").store.sealed(1, 0).len();
    assert!(sealed >= 3 + super::MAX_UNSEALED, "{sealed} sealed tier-0 spans");
}

/// Batches racing for one allowance of new series (a token's hourly
/// limit): each takes its series under the order lock, so together they
/// never create more than it gives. Before, each checked what was left
/// before the lock and the caller spent it after, and 32 concurrent
/// batches created 800 series against a limit of 500.
#[test]
fn racing_batches_never_pass_their_allowance() {
    struct Allowance(std::sync::Mutex<u64>);
    impl crate::engine::SeriesAllowance for Allowance {
        fn take(&self, new: u64) -> std::result::Result<(), u64> {
            let mut left = self.0.lock().expect("allowance");
            if new > *left {
                return Err(*left);
            }
            *left -= new;
            Ok(())
        }
    }
    const THREADS: usize = 8;
    const PER_BATCH: usize = 100;
    let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 60)));
    let allowance = Allowance(std::sync::Mutex::new(5 * PER_BATCH as u64));
    let start = std::sync::Barrier::new(THREADS);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (e, allowance, start) = (&e, &allowance, &start);
                s.spawn(move || {
                    let series = (0..PER_BATCH)
                        .map(|d| SeriesSpec {
                            node: Some(format!("racer-{t}")),
                            context: "test.allowance".into(),
                            dimension: format!("d{d}"),
                            points: vec![Point::new(T0 + 1, Some(1.0))],
                            ..Default::default()
                        })
                        .collect();
                    start.wait();
                    e.ingest_with(&IngestBatch { nodes: vec![], series }, Some(allowance))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).collect()
    });
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r, EngineError::TooManySeries { per_token: true, .. }), "{r}");
    }
    let created = e.read().expect("state").catalog.registry().metrics().len();
    assert_eq!(accepted, 5, "five batches fit the allowance of 500");
    assert_eq!(created, 5 * PER_BATCH, "no series past the allowance");
    assert_eq!(*allowance.0.lock().expect("allowance"), 0);
}

/// A deferred ingest is acknowledged with the hour it closed still waiting
/// (and readable); `finish_ingest` lays it out and plans the checkpoint
/// that writes it. Past `MAX_UNSEALED` waiting hours a deferred ingest
/// lays them out itself, so a caller that never finishes cannot make them
/// pile up.
#[test]
fn deferred_ingests_leave_closed_hours_to_their_finish_up_to_a_bound() {
    const CHUNK: i64 = 600;
    let dir = TempDir::fresh("deferred");
    let e = open_at(&dir, T0 + 48 * 3600);
    let waiting = |e: &Engine| e.read().expect("state").store.pending_seal_count();
    let sealed = |e: &Engine| e.read().expect("state").store.sealed(1, 0).len();
    let tier0_files = || std::fs::read_dir(dir.0.join("tier0")).map(|d| d.count()).unwrap_or(0);
    let mut k = 0;
    // An hour and a bit: the last batch closes the first hour.
    let mut after = None;
    while waiting(&e) == 0 {
        assert!(k < 3 * 3600 / CHUNK, "no hour closed in three hours of batches");
        let (report, a) = e.ingest_deferred(&batch_of(0, k, CHUNK), None).expect("ingest");
        assert_eq!(report.accepted, 2 * CHUNK as u64);
        after = Some(a);
        k += 1;
    }
    let after = after.expect("a batch");
    assert!(after.is_due(), "the batch that closed an hour has work left");
    // The hour, and (it ends a day) the day's tier-1 span.
    assert!(waiting(&e) >= 1, "acknowledged before the closed hour is laid out");
    assert_eq!(sealed(&e), 0);
    // Readable meanwhile: the closed hour answers as it will once sealed.
    let before = sums_over(&e, 3600);
    assert_eq!(e.pending_followups(), 1, "/health counts the follow-up until it ends");
    e.finish_ingest(after).expect("finish");
    assert_eq!(e.pending_followups(), 0);
    assert_eq!((waiting(&e), sealed(&e)), (0, 1), "finish lays the hour out");
    assert_eq!(sums_over(&e, 3600), before, "the same answer from the sealed hour");
    assert_eq!(e.checkpointer.as_ref().expect("durable").flush(), None, "the checkpoint it planned is written");
    assert!(tier0_files() > 0, "the sealed hour is on disk");
    // Never finished: hours pile up to the bound, and no further.
    let mut most = 0;
    for _ in 0..(super::MAX_UNSEALED as i64 + 3) * 3600 / CHUNK {
        let (_, a) = e.ingest_deferred(&batch_of(0, k, CHUNK), None).expect("ingest");
        drop(a);
        most = most.max(waiting(&e));
        k += 1;
    }
    assert!((1..=super::MAX_UNSEALED).contains(&most), "{most} closed spans waiting, at most");
    assert_eq!(e.pending_followups(), 0, "a follow-up dropped unfinished is no longer counted");
    assert!(sealed(&e) > 1, "past the bound, deferred ingests sealed some themselves");
    let (_, a) = e.ingest_deferred(&batch_of(0, k, CHUNK), None).expect("ingest");
    e.finish_ingest(a).expect("finish");
    assert_eq!(waiting(&e), 0, "one finish lays out every hour left waiting");
}

/// While laying out fails, acknowledged batches stay acknowledged (they are
/// in the WAL and answered), the failure is reported, and once more than
/// `MAX_UNSEALED` closed hours wait, a batch is refused with nothing
/// written instead of piling up more. The next laying out that succeeds
/// clears the failure and takes them all.
#[test]
fn a_failing_sealer_is_reported_and_bounds_what_waits() {
    const CHUNK: i64 = 600;
    let dir = TempDir::fresh("failing-sealer");
    let e = open_at(&dir, T0 + 48 * 3600);
    let waiting = |e: &Engine| e.read().expect("state").store.pending_seal_count();
    e.fail_seals.store(true, Ordering::SeqCst);
    let mut k = 0;
    let refused = loop {
        assert!(k < (super::MAX_UNSEALED as i64 + 3) * 3600 / CHUNK, "no batch was ever refused");
        match e.ingest_deferred(&batch_of(0, k, CHUNK), None) {
            Ok((report, after)) => {
                assert_eq!(report.accepted, 2 * CHUNK as u64);
                // As the server does after answering: its failure is logged, not the client's.
                let _ = e.finish_ingest(after);
            }
            Err(err) => break err,
        }
        assert!(waiting(&e) <= super::MAX_UNSEALED + 2, "{} closed spans wait", waiting(&e));
        k += 1;
    };
    assert!(matches!(refused, EngineError::SealsWaiting { .. }), "{refused}");
    assert_eq!(refused.kind(), crate::error::ErrorKind::Unavailable);
    // A batch of a new client is refused as well, and so never reaches the
    // WAL (checked after the restart below).
    let other = e.ingest_deferred(&batch_of(1, k, CHUNK), None).map(|_| ()).expect_err("refused too");
    assert!(matches!(other, EngineError::SealsWaiting { .. }), "{other}");
    let failure = e.seal_failure().expect("the failure is kept");
    assert!(failure.contains("a test's fault"), "{failure}");
    let want = |batches: i64| (T0 + 1..=T0 + batches * CHUNK).map(|t| value(0, t)).collect::<Vec<_>>();
    assert_eq!(shared_over(&e, k * CHUNK), want(k), "every acknowledged point answers");
    let body = json!({
        "scope": {"contexts": ["test.concurrent"], "nodes": ["shared"]},
        "window": {"after": T0 + k * CHUNK + 1, "before": T0 + (k + 1) * CHUNK, "points": CHUNK, "tier": 0},
    });
    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
    let empty = r.series.iter().all(|s| s.flags.iter().all(|f| f & PA_EMPTY != 0));
    assert!(empty, "nothing of the refused batch");
    e.fail_seals.store(false, Ordering::SeqCst);
    let (_, after) = e.ingest_deferred(&batch_of(0, k, CHUNK), None).expect("ingest once sealing works");
    e.finish_ingest(after).expect("finish");
    assert_eq!((waiting(&e), e.seal_failure()), (0, None), "the waiting hours laid out, the failure cleared");
    drop(e);
    let e = open_at(&dir, T0 + 48 * 3600);
    assert_eq!(shared_over(&e, (k + 1) * CHUNK), want(k + 1), "all of it after a restart");
    let nodes: Vec<String> = e.read().expect("state").catalog.registry().nodes().iter().map(|n| n.id.clone()).collect();
    assert!(!nodes.iter().any(|n| n == "client-1"), "nothing of the refused batches was logged: {nodes:?}");
}

/// In the last minutes of an hour, a client whose clock runs 8 minutes
/// ahead (inside `--max-future`) writes into the next hour. That must not
/// close the hour the others are still writing: their on-time points are
/// accepted, not late, and a restart replays the log into the same answers
/// (each record is applied against the clock it was first applied with).
#[test]
fn a_client_ahead_of_the_clock_makes_no_one_late_and_replays_alike() {
    let dir = TempDir::fresh("fast-client");
    let hour = (T0 / 3600 + 2) * 3600;
    let now = hour - 180;
    let e = open_at(&dir, now);
    let set_clock = |e: &Engine, t: i64| match &e.clock {
        Clock::Fixed(c) => c.store(t, Ordering::SeqCst),
        Clock::System => unreachable!("tests pin the clock"),
    };
    let series = |node: &str, from: i64, to: i64| IngestBatch {
        nodes: vec![],
        series: vec![SeriesSpec {
            node: Some(node.into()),
            context: "test.skew".into(),
            dimension: "v".into(),
            points: (from..=to).map(|t| Point { t, value: Some((t - T0) as f64), anomalous: false }).collect(),
            ..Default::default()
        }],
    };
    e.ingest(&series("slow", now - 59, now)).expect("on time");
    let fast = e.ingest(&series("fast", now + 420, now + 480)).expect("inside --max-future");
    assert_eq!((fast.accepted, fast.rejected_late), (61, 0));
    for t in now + 1..=now + 120 {
        set_clock(&e, t);
        let r = e.ingest(&series("slow", t, t)).expect("ingest");
        assert_eq!((r.accepted, r.rejected_late), (1, 0), "the on-time point at {t} is not late");
    }
    let answer = |e: &Engine| {
        let body = json!({
            "scope": {"contexts": ["test.skew"], "nodes": ["slow"]},
            "window": {"after": now - 60, "before": now + 100, "points": 160, "tier": 0},
        });
        let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
        r.series[0].values.clone()
    };
    let want: Vec<f64> = (now - 59..=now + 100).map(|t| (t - T0) as f64).collect();
    assert_eq!(answer(&e), want);
    drop(e);
    let e = open_at(&dir, now + 120);
    assert_eq!(answer(&e), want, "the same after replaying the log");
}

/// A batch of more new series than one turn of the catalog's lock
/// registers them all, each once, with its own samples, whether the turns
/// split a node's series or not.
#[test]
fn a_batch_of_many_new_series_registers_them_all_across_turns() {
    let dir = TempDir::fresh("many-new");
    let e = open_at(&dir, T0 + 3600);
    let n = 2 * super::REGISTER_TURN + 123;
    let spec = |i: usize| SeriesSpec {
        node: Some(format!("node-{}", i % 3)),
        context: "test.many".into(),
        instance: Some(format!("i{i}")),
        dimension: "v".into(),
        points: vec![Point { t: T0 + 1, value: Some(i as f64), anomalous: false }],
        ..Default::default()
    };
    let batch = IngestBatch { nodes: vec![], series: (0..n).map(spec).collect() };
    let report = e.ingest(&batch).expect("ingest");
    assert_eq!((report.accepted, report.new_series), (n as u64, n as u64));
    assert_eq!(e.read().expect("state").catalog.registry().metrics().len(), n);
    let body = json!({
        "scope": {"contexts": ["test.many"]},
        "window": {"after": T0, "before": T0 + 1, "points": 1, "tier": 0},
        "aggregations": {"metrics": [{"group_by": ["instance"], "aggregation": "sum"}]},
    });
    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
    let mut got: Vec<(String, f64)> = r.series.iter().map(|s| (s.key.name.clone(), s.values[0])).collect();
    got.sort_by(|a, b| a.1.total_cmp(&b.1));
    let want: Vec<(String, f64)> = (0..n).map(|i| (format!("i{i}@node-{}", i % 3), i as f64)).collect();
    assert!(got == want, "{} series; first differing: {:?}", got.len(), got.iter().zip(&want).find(|(g, w)| g != w));
    // The same batch again is all known: nothing new.
    assert_eq!(e.ingest(&batch).expect("again").new_series, 0);
}

/// Clients closing spans at their own pace (each its own update_every, so
/// each its own spans and head, and nothing is late), then all at once with
/// a last batch two hours ahead. A stress test (whether an ingest finds
/// the sealer busy is up to the scheduler): when every ingest has returned,
/// no closed span is left unsealed (a sealer looks again after letting go, so a span
/// whose ingest found it busy is not stranded), and the answers are those
/// of the samples sent.
#[test]
fn no_closed_span_outlives_the_ingests() {
    const HOURS: i64 = 3;
    const CHUNK: i64 = 240;
    const SERIES: usize = 60;
    let total = HOURS * 3600;
    let ue = |client: usize| client as i64 + 1;
    let batch = |client: usize, times: &mut dyn Iterator<Item = i64>| {
        let times = times.filter(|t| t % ue(client) == 0);
        let points: Vec<Point> = times.map(|t| Point { t, value: Some(value(client, t)), anomalous: false }).collect();
        let series = (0..SERIES).map(|d| SeriesSpec {
            node: Some(format!("client-{client}")),
            context: "test.concurrent".into(),
            dimension: format!("d{d}"),
            update_every: Some(ue(client)),
            points: points.clone(),
            ..Default::default()
        });
        IngestBatch { nodes: vec![], series: series.collect() }
    };
    for round in 0..2 {
        let ahead = T0 + total + 2 * 3600;
        let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(ahead)));
        let last = std::sync::Barrier::new(CLIENTS);
        std::thread::scope(|s| {
            for client in 0..CLIENTS {
                let (e, batch, last) = (&e, &batch, &last);
                s.spawn(move || {
                    for k in 0..total / CHUNK {
                        let report = e.ingest(&batch(client, &mut (T0 + k * CHUNK + 1..=T0 + (k + 1) * CHUNK)));
                        assert_eq!(report.expect("ingest").rejected_late, 0, "client {client} batch {k}");
                    }
                    last.wait();
                    e.ingest(&batch(client, &mut std::iter::once(ahead))).expect("the last batch");
                });
            }
        });
        assert_eq!(e.read().expect("state").store.pending_seal_count(), 0, "round {round}");
        let want: Vec<f64> = (0..CLIENTS)
            .map(|c| (T0 + 1..=T0 + total).filter(|t| t % ue(c) == 0).map(|t| SERIES as f64 * value(c, t)).sum())
            .collect();
        assert_eq!(sums_over(&e, total), want, "round {round}");
    }
}

/// The case the look-again rule is for: an ingest closes a span while
/// another lays out a large one, finds it busy and returns; when that
/// sealer is done, the span is sealed too, with no ingest after it.
#[test]
fn a_sealer_takes_the_spans_closed_while_it_worked() {
    const BIG: usize = 300;
    // Divisible by every span here (3,600 s times update_every 1 or 2).
    const BASE: i64 = 1_700_006_400;
    let series = |node: &str, n: usize, ue: i64, times: &[i64]| {
        let points: Vec<Point> = times.iter().map(|&t| Point::new(t, Some((t - BASE) as f64))).collect();
        let one = |d: usize| SeriesSpec {
            node: Some(node.into()),
            context: "test.seal".into(),
            dimension: format!("d{d}"),
            update_every: Some(ue),
            points: points.clone(),
            ..Default::default()
        };
        IngestBatch { nodes: vec![], series: (0..n).map(one).collect() }
    };
    // One whole tier-0 span, then a point that closes it (and only it: it
    // moves the head just past the span's end, 300 s of grace later).
    let span = |ue: i64| (BASE + ue..BASE + 3600 * ue).step_by(ue as usize).collect::<Vec<_>>();
    let closer = |ue: i64| [BASE + 3600 * ue + 600];
    let waiting = |e: &Engine| e.read().expect("state").store.pending_seal_count();
    // Whether the small span was left to the busy sealer this time (the
    // polling below can take the mutex just as the big ingest tries it;
    // then the small ingest seals both, and the attempt is run again).
    let attempt = || {
        let e = Engine::new(EngineConfig::default(), Clock::Fixed(AtomicI64::new(BASE + 3 * 3600)));
        e.ingest(&series("big", BIG, 1, &span(1))).expect("a span of the big node");
        e.ingest(&series("small", 2, 2, &span(2))).expect("a span of the small node");
        assert_eq!(waiting(&e), 0, "nothing closed yet");
        let left_to_the_sealer = std::thread::scope(|s| {
            let big = s.spawn(|| e.ingest(&series("big", BIG, 1, &closer(1))).expect("closes the big span"));
            // Wait until the big ingest is sealing.
            let busy = loop {
                // A statement of its own: a guard taken here is dropped at once.
                let taken = matches!(e.sealing.try_lock(), Err(std::sync::TryLockError::WouldBlock));
                if taken || big.is_finished() {
                    break taken;
                }
                std::thread::sleep(std::time::Duration::from_micros(20));
            };
            e.ingest(&series("small", 2, 2, &closer(2))).expect("closes the small span");
            let left = busy && !big.is_finished() && waiting(&e) == 2;
            big.join().expect("no panic");
            left
        });
        assert_eq!(waiting(&e), 0, "every closed span is sealed (one left to the busy sealer: {left_to_the_sealer})");
        for ue in 1..3 {
            assert_eq!(e.read().expect("state").store.sealed(ue, 0).len(), 1, "update_every {ue}: its span is sealed");
        }
        left_to_the_sealer
    };
    assert!((0..10).any(|_| attempt()), "in ten attempts the small span was never left to the busy sealer");
}

/// A WAL record an earlier release accepted (one instance named in two
/// contexts, beside an unrelated series) replays whole: the one-context
/// rule refuses new batches only, never acknowledged ones.
#[test]
fn records_accepted_before_the_one_context_rule_replay_whole() {
    let dir = TempDir::fresh("replay-contexts");
    let engine = open(&dir);
    let spec = |ctx: &str, inst: &str, dim: &str| SeriesSpec {
        node: Some("n".into()),
        context: ctx.into(),
        instance: Some(inst.into()),
        dimension: dim.into(),
        points: (T0 + 1..=T0 + 10).map(|t| Point { t, value: Some(1.0), anomalous: false }).collect(),
        ..Default::default()
    };
    engine.ingest(&IngestBatch { nodes: vec![], series: vec![spec("alpha", "shared", "d")] }).expect("first batch");
    let old = IngestBatch { nodes: vec![], series: vec![spec("beta", "shared", "e"), spec("gamma", "other", "g")] };
    assert!(engine.ingest(&old).is_err(), "a new batch like it is refused");
    let mut bytes = Vec::new();
    crate::ingest::codec::encode("n", None, &old, &mut bytes);
    let wal = &engine.persist.as_ref().expect("durable").wal;
    wal.append(&bytes).expect("append the old record");
    wal.sync().expect("sync");
    drop(engine);
    let opts = PersistOptions {
        dir: dir.0.clone(),
        wal: WalOptions { sync: SyncPolicy::Always, ..WalOptions::default() },
        compression: Compression::None,
        max_disk: [None; TIERS],
    };
    let (e, rec) = Engine::open(EngineConfig::default(), Clock::Fixed(AtomicI64::new(T0 + 3600)), &opts).expect("open");
    assert_eq!((rec.replayed_records, rec.replay_errors), (2, 0));
    let body = json!({"scope": {"contexts": ["gamma"]}, "window": {"after": T0 + 1, "before": T0 + 10, "points": 10, "tier": 0}});
    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
    assert_eq!(r.series.len(), 1, "the unrelated series of the old record is there");
}

#[path = "engine_snapshot_tests.rs"]
mod snapshots;
