//! The durable engine under concurrent ingest: batches from several threads
//! are written to the WAL in apply order and acknowledged after a shared
//! fsync; a restart without a checkpoint replays exactly what was
//! acknowledged.

use std::path::PathBuf;
use std::sync::atomic::AtomicI64;

use serde_json::json;

use crate::engine::{Clock, Engine, EngineConfig};
use crate::ingest::{IngestBatch, Point, SeriesSpec};
use crate::persist::PersistOptions;
use crate::query::body::parse_body;
use crate::query::request::ApiVersion;
use crate::storage::segment_file::Compression;
use crate::storage::TIERS;
use crate::wal::{SyncPolicy, WalOptions};

/// A multiple of 3600: the whole test stays inside one tier-0 span.
const T0: i64 = 1_700_002_800;
const CLIENTS: usize = 4;
const BATCHES: i64 = 30;
const SECS: i64 = 60;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &TempDir) -> Engine {
    let opts = PersistOptions {
        dir: dir.0.clone(),
        wal: WalOptions { sync: SyncPolicy::Always, ..WalOptions::default() },
        compression: Compression::None,
        max_disk: [None; TIERS],
    };
    let clock = Clock::Fixed(AtomicI64::new(T0 + BATCHES * SECS + 1));
    Engine::open(EngineConfig::default(), clock, &opts).expect("open the data dir").0
}

fn value(client: usize, t: i64) -> f64 {
    (client as i64 * 1000 + (t - T0)) as f64
}

/// The client's own series, plus the same slots of one series every client
/// writes (last write wins, so its values show the apply order).
fn batch(client: usize, k: i64) -> IngestBatch {
    let from = T0 + k * SECS + 1;
    let spec = |node: String| SeriesSpec {
        node: Some(node),
        context: "test.concurrent".into(),
        dimension: "v".into(),
        points: (from..from + SECS).map(|t| Point { t, value: Some(value(client, t)), anomalous: false }).collect(),
        ..Default::default()
    };
    IngestBatch { nodes: vec![], series: vec![spec(format!("client-{client}")), spec("shared".into())] }
}

/// Every per-second value of the shared series.
fn shared(e: &Engine) -> Vec<f64> {
    let body = json!({
        "scope": {"contexts": ["test.concurrent"], "nodes": ["shared"]},
        "window": {"after": T0 + 1, "before": T0 + BATCHES * SECS, "points": BATCHES * SECS, "tier": 0},
    });
    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
    assert_eq!(r.series.len(), 1);
    r.series[0].values.clone()
}

fn sums(e: &Engine) -> Vec<f64> {
    let body = json!({
        "scope": {"contexts": ["test.concurrent"], "nodes": ["client-*"]},
        "window": {"after": T0 + 1, "before": T0 + BATCHES * SECS, "points": 1, "tier": 0},
        "aggregations": {"time": {"time_group": "sum"}, "metrics": [{"group_by": ["node"], "aggregation": "sum"}]},
    });
    let r = e.query(&parse_body(ApiVersion::V3, &body).expect("body")).expect("query");
    let mut by_name: Vec<(String, f64)> = r.series.iter().map(|s| (s.key.name.clone(), s.values[0])).collect();
    by_name.sort_by(|a, b| a.0.cmp(&b.0));
    by_name.into_iter().map(|(_, v)| v).collect()
}

#[test]
fn concurrent_acknowledged_batches_all_survive_a_restart_without_checkpoint() {
    let dir = TempDir(std::env::temp_dir().join(format!("strata-engine-concurrent-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
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

#[test]
fn wal_records_of_earlier_builds_json_still_replay() {
    let dir = TempDir(std::env::temp_dir().join(format!("strata-engine-legacy-wal-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let engine = open(&dir);
    engine.ingest(&batch(0, 0)).expect("a binary record");
    drop(engine);
    {
        // What builds before the binary codec appended for a batch.
        let (wal, _, _) = crate::wal::Wal::open(&dir.0.join("wal"), WalOptions::default(), 0).expect("wal");
        let legacy = json!({"default_node": "h", "batch": batch(1, 1)});
        wal.append(&serde_json::to_vec(&legacy).expect("json")).expect("append");
    }
    let engine = open(&dir);
    let want = |c: usize, k: i64| (T0 + k * SECS + 1..T0 + (k + 1) * SECS + 1).map(|t| value(c, t)).sum::<f64>();
    assert_eq!(sums(&engine)[..2], [want(0, 0), want(1, 1)], "both records replayed");
}
