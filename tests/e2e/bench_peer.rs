//! `strata bench-peer` in a CI-sized run against strata alone: the peers
//! are hidden from PATH (only `kill` stays reachable), so it must say they
//! are missing, still bench strata, print the report and every target line,
//! and exit 0.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{describe, exclusive, TempDir, BIN};

const TARGETS: &[&str] = &[
    "a-tier0-vs-vm",
    "a-tier0-bandwidth",
    "a-auto-vs-vm",
    "d-median-vs-vm",
    "b-vs-vm",
    "c-vs-vm",
    "e-vs-vm",
    "g-vs-vm",
    "small-p50-c1",
    "small-rps-c16",
    "ingest-json-vs-vm",
    "ingest-arrow-vs-vm",
    "disk-tier0-bytes-per-sample",
    "tier0-scan-per-core",
    "peak-rss-anon",
];

/// A PATH holding only `kill` (the harness stops servers with SIGTERM).
fn path_without_peers(dir: &TempDir) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(kill) = std::env::split_paths(&path).map(|d| d.join("kill")).find(|p| p.is_file()) {
        std::os::unix::fs::symlink(kill, dir.path.join("kill")).expect("symlink kill");
    }
    dir.path.to_str().expect("utf-8 temp path").to_string()
}

#[test]
fn tiny_bench_peer_without_peers_prints_the_table_and_every_target() {
    // It loads the machine, and times itself.
    let _one_at_a_time = exclusive();
    let bin = TempDir::new("bench-peer-path");
    let start = Instant::now();
    let mut cmd = Command::new(BIN);
    cmd.args(["bench-peer", "--series", "10", "--hours", "1", "--runs", "1", "--small-secs", "0.2", "--clients", "3"]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("STRATA_")) {
        cmd.env_remove(k);
    }
    let out = cmd.env("PATH", path_without_peers(&bin)).output().expect("run strata bench-peer");
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(took < Duration::from_secs(60), "a tiny run takes {took:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("VictoriaMetrics not found"), "says the peer is missing: {stderr}");
    assert!(stdout.contains("VictoriaMetrics not found") && stdout.contains("Prometheus not found"), "{stdout}");
    assert!(stdout.contains("loaded by 3 client threads"), "the report names --clients: {stdout}");
    assert!(stdout.contains("| workload | engine |"), "the query table: {stdout}");
    for w in ["(a) ", "(a-auto) ", "(b) ", "(c) ", "(d) ", "(e) ", "(g) "] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("| {w}")) && l.contains("| strata |")),
            "row {w}: {stdout}"
        );
    }
    assert!(stdout.contains("Memory bandwidth"), "{stdout}");
    // Each strata load row gives the server's CPU per million samples (a
    // number, not '-'; it may round to 0 for this tiny load: 10 ms ticks).
    let cpu: Vec<f64> = stdout
        .lines()
        .filter(|l| l.starts_with("| strata | JSON over HTTP") || l.starts_with("| strata | Arrow IPC over HTTP"))
        .filter_map(|l| l.split('|').nth(5)?.trim().parse().ok())
        .collect();
    assert!(cpu.len() == 2 && cpu.iter().all(|&c| c >= 0.0), "CPU s per M samples for both loads: {stdout}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("target ")).collect();
    assert_eq!(lines.len(), TARGETS.len(), "{stdout}");
    for (line, name) in lines.iter().zip(TARGETS) {
        assert!(line.starts_with(&format!("target {name}: ")), "{line}");
        assert!(line.contains(" (goal ") && (line.ends_with(" PASS") || line.ends_with(" MISS")), "{line}");
    }
    assert!(lines[0].contains("not measured"), "no VictoriaMetrics, no ratio: {}", lines[0]);
    assert!(!lines[8].contains("not measured"), "strata's own small-query latency is measured: {}", lines[8]);
}

#[test]
fn bench_peer_bad_usage_exits_2_with_a_reason() {
    for args in [
        &["bench-peer", "--series", "0"][..],
        &["bench-peer", "--hours", "x"],
        &["bench-peer", "--small-secs", "-1"],
        &["bench-peer", "--clients", "0"],
    ] {
        let out = Command::new(BIN).args(args).output().expect("run strata");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
}
