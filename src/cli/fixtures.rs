//! `strata gen-fixtures`: the demo generator's output as ingest batches,
//! ready for `strata ingest`. Every file stays under `--max-file-bytes`
//! (default 16 MiB, well below the server's 64 MiB ingest cap): an hour of
//! many series is split by series into `batch-HHHHH-PPP.json` parts, so
//! sorting the file names gives time order and any file can be posted as is.

use std::path::{Path, PathBuf};

use clap::Args;
use strata_engine::demo::{batches, GenSpec};
use strata_engine::ingest::IngestBatch;

/// The server's default ingest body cap; no file may exceed it.
pub const INGEST_CAP: u64 = 64 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Output directory (created if missing).
    #[arg(long, env = "STRATA_OUT")]
    pub out: PathBuf,
    #[arg(long, env = "STRATA_NODES", default_value_t = 3)]
    pub nodes: usize,
    #[arg(long, env = "STRATA_METRICS_PER_NODE", default_value_t = 80)]
    pub metrics_per_node: usize,
    /// Hours of per-second history, ending at --end.
    #[arg(long, env = "STRATA_HOURS", default_value_t = 1)]
    pub hours: i64,
    #[arg(long, env = "STRATA_SEED", default_value_t = 42)]
    pub seed: u64,
    /// End of the data (epoch seconds); default: the current hour.
    #[arg(long, env = "STRATA_END")]
    pub end: Option<i64>,
    /// Largest file to write, in bytes (at most the 64 MiB ingest cap).
    #[arg(long, env = "STRATA_MAX_FILE_BYTES", default_value_t = 16 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(4096..=INGEST_CAP))]
    pub max_file_bytes: u64,
}

pub fn run(a: GenArgs) -> Result<(), String> {
    if a.nodes == 0 || a.metrics_per_node == 0 || a.hours <= 0 {
        return Err("--nodes, --metrics-per-node and --hours must be at least 1".into());
    }
    std::fs::create_dir_all(&a.out).map_err(|e| format!("creating {}: {e}", a.out.display()))?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let end = a.end.unwrap_or(now - now % 3600);
    let start = end - a.hours * 3600;
    let spec = GenSpec { nodes: a.nodes, metrics_per_node: a.metrics_per_node, seed: a.seed };
    for (i, b) in batches(&spec, start, end, 3600).enumerate() {
        let parts =
            write_split(&b, a.max_file_bytes as usize, |part| a.out.join(format!("batch-{i:05}-{part:03}.json")))?;
        eprintln!("wrote hour {}/{} as {parts} file(s)", i + 1, a.hours);
    }
    Ok(())
}

/// Writes `batch` as one or more JSON files of at most `cap` bytes, split
/// by series (node metadata goes in the first). Each series is encoded once
/// and appended to the open file until the next one would not fit, so the
/// cap is exact, not an estimate. Returns the number of files written.
pub fn write_split(batch: &IngestBatch, cap: usize, path: impl Fn(usize) -> PathBuf) -> Result<usize, String> {
    let head = |first: bool| -> Result<Vec<u8>, String> {
        let nodes = if first { enc(&batch.nodes)? } else { b"[]".to_vec() };
        let mut out = b"{\"nodes\":".to_vec();
        out.extend_from_slice(&nodes);
        out.extend_from_slice(b",\"series\":[");
        Ok(out)
    };
    let mut buf = head(true)?;
    let mut in_buf = 0usize;
    let mut parts = 0usize;
    for (k, s) in batch.series.iter().enumerate() {
        let one = enc(s)?;
        if in_buf > 0 && buf.len() + one.len() + 3 > cap {
            flush(&mut buf, &path(parts))?;
            parts += 1;
            buf = head(false)?;
            in_buf = 0;
        }
        if buf.len() + one.len() + 2 > cap {
            return Err(format!("series {k} alone encodes to {} bytes, over --max-file-bytes {cap}", one.len()));
        }
        if in_buf > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(&one);
        in_buf += 1;
    }
    if in_buf > 0 || parts == 0 {
        flush(&mut buf, &path(parts))?;
        parts += 1;
    }
    Ok(parts)
}

fn flush(buf: &mut Vec<u8>, path: &Path) -> Result<(), String> {
    buf.extend_from_slice(b"]}");
    std::fs::write(path, &buf).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(v).map_err(|e| format!("encoding a fixture batch: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("strata-fixtures-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        p
    }

    #[test]
    fn an_hour_of_many_series_is_split_under_the_cap_and_loses_nothing() {
        let dir = tmp("split");
        let spec = GenSpec { nodes: 2, metrics_per_node: 40, seed: 3 };
        let b = batches(&spec, 1_700_000_000, 1_700_003_600, 3600).next().expect("one hour");
        let cap = 1 << 20;
        let parts = write_split(&b, cap, |p| dir.join(format!("p-{p:03}.json"))).expect("split");
        assert!(parts > 1, "80 series x 3600 points is several MiB, so it splits: {parts}");
        let mut series = Vec::new();
        for p in 0..parts {
            let bytes = std::fs::read(dir.join(format!("p-{p:03}.json"))).expect("read part");
            assert!(bytes.len() <= cap, "part {p} is {} bytes", bytes.len());
            let part: IngestBatch = serde_json::from_slice(&bytes).expect("each part is a whole batch");
            assert_eq!(part.nodes.is_empty(), p > 0, "node metadata goes in the first part only");
            series.extend(part.series);
        }
        assert_eq!(series, b.series, "the parts together are the batch, in order");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_empty_batch_still_writes_one_file_and_an_oversized_series_is_an_error() {
        let dir = tmp("edge");
        let n = write_split(&IngestBatch::default(), 4096, |p| dir.join(format!("e-{p}.json"))).expect("empty");
        assert_eq!(n, 1);
        let spec = GenSpec { nodes: 1, metrics_per_node: 1, seed: 3 };
        let b = batches(&spec, 1_700_000_000, 1_700_003_600, 3600).next().expect("one hour");
        let e = write_split(&b, 4096, |p| dir.join(format!("o-{p}.json"))).expect_err("too big");
        assert!(e.contains("--max-file-bytes"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
