//! Tests of the whole collector over a fake proc tree, plus the input
//! mangler every parser's "never panics" test shares.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_engine::ingest::IngestBatch;

use super::{hostname, hostname_from, HostCollector};

/// Variants of a sample a parser must survive: every truncation, every
/// character replaced by a troublesome one, and an overflowing number
/// inserted everywhere. Cheap stand-in for a fuzzer, std only.
pub(super) fn mangled(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        out.push(text[..i].to_string());
        for r in ['x', '-', ':', ' ', '\n'] {
            out.push(format!("{}{}{}", &text[..i], r, &text[i + c.len_utf8()..]));
        }
        out.push(format!("{}99999999999999999999999{}", &text[..i], &text[i..]));
    }
    out
}

/// A fresh directory under the system temp dir, removed on drop.
struct FakeProc(PathBuf);

impl FakeProc {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("strata-collector-{}-{}-{}", std::process::id(), tag, n));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("net")).expect("create fake proc");
        FakeProc(dir)
    }

    fn write(&self, relative: &str, text: &str) {
        fs::write(self.0.join(relative), text).expect("write fake proc file");
    }

    fn remove(&self, relative: &str) {
        fs::remove_file(self.0.join(relative)).expect("remove fake proc file");
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const MEMINFO: &str = "MemTotal: 8192 kB\nMemFree: 2048 kB\nBuffers: 1024 kB\n\
Cached: 2048 kB\nSReclaimable: 1024 kB\n";
const LOADAVG: &str = "1.50 0.75 0.25 3/400 9999\n";
const NET_HEADER: &str = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n";

fn stat(user: u64, system: u64, idle: u64, iowait: u64) -> String {
    let line = |name: &str| format!("{name} {user} 0 {system} {idle} {iowait} 0 0 0 0 0\n");
    format!("{}{}{}intr 1 2 3\n", line("cpu"), line("cpu0"), line("cpu1"))
}

fn net_dev(lo: u64, rx: u64, tx: u64) -> String {
    format!(
        "{NET_HEADER}    lo: {lo} 1 0 0 0 0 0 0 {lo} 1 0 0 0 0 0 0\n  \
         eth0: {rx} 10 0 0 0 0 0 0 {tx} 10 0 0 0 0 0 0\n"
    )
}

fn diskstats(read: u64, written: u64) -> String {
    format!(
        "   7 0 loop0 9 0 {read} 1 9 0 {written} 1 0 1 1\n   \
         8 0 sda 10 0 {read} 1 10 0 {written} 1 0 1 1 0 0 0 0\n   \
         8 1 sda1 10 0 {read} 1 10 0 {written} 1 0 1 1 0 0 0 0\n"
    )
}

fn full_proc(tag: &str) -> FakeProc {
    let p = FakeProc::new(tag);
    p.write("stat", &stat(100, 100, 800, 0));
    p.write("meminfo", MEMINFO);
    p.write("loadavg", LOADAVG);
    p.write("net/dev", &net_dev(7, 1000, 5000));
    p.write("diskstats", &diskstats(100, 100));
    p
}

fn value(batch: &IngestBatch, instance: &str, dimension: &str) -> Option<f64> {
    let s = batch.series.iter().find(|s| s.instance.as_deref() == Some(instance) && s.dimension == dimension)?;
    s.points.first()?.value
}

fn contexts(batch: &IngestBatch) -> BTreeSet<&str> {
    batch.series.iter().map(|s| s.context.as_str()).collect()
}

#[test]
fn first_tick_has_no_rates_second_has_exact_ones() {
    let p = full_proc("rates");
    let mut c = HostCollector::new("web-1".to_string(), p.0.clone());

    let first = c.collect(1000);
    assert_eq!(contexts(&first), BTreeSet::from(["system.load", "system.ram"]));
    assert_eq!(first.nodes.len(), 1);
    assert_eq!(first.nodes[0].id, "web-1");
    assert_eq!(first.nodes[0].hostname.as_deref(), Some("web-1"));
    assert_eq!(first.nodes[0].labels.get("_os").map(String::as_str), Some("linux"));
    // MiB: cached = Cached + SReclaimable; used = 8192 - 2048 - 3072 - 1024.
    assert_eq!(value(&first, "system.ram", "cached"), Some(3.0));
    assert_eq!(value(&first, "system.ram", "used"), Some(2.0));
    assert_eq!(value(&first, "system.load", "load5"), Some(0.75));

    // +30 user, +10 system, +50 idle, +10 iowait jiffies; +2500 B in, +1250 B
    // out; +2048 sectors read, +512 written; all over 2 seconds.
    p.write("stat", &stat(130, 110, 850, 10));
    p.write("net/dev", &net_dev(999_999, 3500, 6250));
    p.write("diskstats", &diskstats(2148, 612));
    let second = c.collect(1002);

    assert_eq!(value(&second, "system.cpu", "user"), Some(30.0));
    assert_eq!(value(&second, "system.cpu", "iowait"), Some(10.0));
    assert_eq!(value(&second, "system.cpu", "idle"), None);
    assert_eq!(value(&second, "cpu.cpu1", "system"), Some(10.0));
    assert_eq!(value(&second, "net.eth0", "received"), Some(10.0));
    assert_eq!(value(&second, "net.eth0", "sent"), Some(-5.0));
    assert_eq!(value(&second, "net.lo", "received"), None);
    assert_eq!(value(&second, "disk.sda", "reads"), Some(512.0));
    assert_eq!(value(&second, "disk.sda", "writes"), Some(-128.0));
    assert_eq!(value(&second, "disk.sda1", "reads"), None);
    assert_eq!(value(&second, "disk.loop0", "reads"), None);

    for s in &second.series {
        assert_eq!(s.node.as_deref(), Some("web-1"));
        assert_eq!(s.update_every, Some(1));
        assert!(s.units.is_some() && s.title.is_some() && s.chart_type.is_some());
        assert_eq!(s.points.len(), 1);
        assert_eq!(s.points[0].t, 1002);
    }
    let core = second.series.iter().find(|s| s.instance.as_deref() == Some("cpu.cpu0")).expect("per-core series");
    assert_eq!(core.context, "cpu.cpu");
    assert_eq!(core.labels.get("cpu").map(String::as_str), Some("cpu0"));
}

#[test]
fn missing_or_broken_source_is_dropped_alone() {
    let p = full_proc("missing");
    p.remove("net/dev");
    p.remove("diskstats");
    p.write("loadavg", "garbage\n");
    let mut c = HostCollector::new("n".to_string(), p.0.clone());
    c.collect(10);
    p.write("stat", &stat(130, 110, 850, 10));
    let batch = c.collect(11);
    assert_eq!(contexts(&batch), BTreeSet::from(["cpu.cpu", "system.cpu", "system.ram"]));

    // Everything missing: an empty batch that still names the node.
    let empty = HostCollector::new("n".to_string(), p.0.join("nope")).collect(12);
    assert!(empty.series.is_empty());
    assert_eq!(empty.nodes.len(), 1);
}

#[test]
fn a_gap_in_a_source_averages_over_the_longer_interval() {
    let p = full_proc("gap");
    let mut c = HostCollector::new("n".to_string(), p.0.clone());
    c.collect(100);
    p.remove("net/dev");
    assert_eq!(value(&c.collect(101), "net.eth0", "received"), None);
    // 2500 bytes since t=100, read at t=105: 20 kbit / 5 s.
    p.write("net/dev", &net_dev(7, 3500, 5000));
    assert_eq!(value(&c.collect(105), "net.eth0", "received"), Some(4.0));
}

#[test]
fn same_second_twice_divides_by_one() {
    let p = full_proc("same-second");
    let mut c = HostCollector::new("n".to_string(), p.0.clone());
    c.collect(100);
    p.write("net/dev", &net_dev(7, 1125, 5000));
    assert_eq!(value(&c.collect(100), "net.eth0", "received"), Some(1.0));
}

#[test]
fn real_proc_gives_finite_values() {
    if !Path::new("/proc/stat").exists() {
        return; // not Linux: nothing to read
    }
    let mut c = HostCollector::new(hostname(), PathBuf::from("/proc"));
    let now = 1_700_000_000;
    c.collect(now);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let batch = c.collect(now + 1);
    assert!(!batch.series.is_empty());
    assert!(contexts(&batch).contains("system.ram"));
    for s in &batch.series {
        let v = s.points[0].value.expect("a value, not a gap");
        assert!(v.is_finite(), "{} {} = {v}", s.context, s.dimension);
    }
}

#[test]
fn hostname_falls_back_to_localhost() {
    let p = FakeProc::new("hostname");
    assert_eq!(hostname_from(&p.0.join("missing")), "localhost");
    p.write("hostname", "  \n");
    assert_eq!(hostname_from(&p.0.join("hostname")), "localhost");
    p.write("hostname", "db-7\n");
    assert_eq!(hostname_from(&p.0.join("hostname")), "db-7");
    assert!(!hostname().is_empty());
}
