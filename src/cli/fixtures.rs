//! `strata gen-fixtures`: the demo generator's output as ingest batches,
//! one JSON file per hour, ready for `strata ingest`.

use std::path::PathBuf;

use clap::Args;
use strata_engine::demo::{batches, GenSpec};

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
        let path = a.out.join(format!("batch-{i:05}.json"));
        let json = serde_json::to_vec(&b).map_err(|e| format!("encoding batch {i}: {e}"))?;
        std::fs::write(&path, json).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("wrote {} ({}/{} hours)", path.display(), i + 1, a.hours);
    }
    Ok(())
}
