//! CPU utilisation from `/proc/stat`: `system.cpu` for the whole machine and
//! `cpu.cpu` per core (instance `cpu.cpu0`, label `cpu=cpu0`).
//!
//! Dimensions follow Netdata: `guest_nice, guest, steal, softirq, irq, user,
//! system, nice, iowait`, each the percentage of ALL jiffies (idle included)
//! spent in that state during the interval. Idle is counted in the total but
//! is not a dimension, so the stacked dimensions add up to the busy share.
//! Like Netdata (and htop), guest time is taken out of user and guest_nice out
//! of nice, because the kernel already counts it in both.

use std::collections::BTreeMap;

use super::{Chart, Metric};

static SYSTEM_CPU: Chart =
    Chart { context: "system.cpu", units: "percentage", title: "Total CPU utilization", chart_type: "stacked" };

static CORE_CPU: Chart =
    Chart { context: "cpu.cpu", units: "percentage", title: "Core utilization", chart_type: "stacked" };

// Indexes into `CpuTimes::jiffies`, in /proc/stat column order.
const USER: usize = 0;
const NICE: usize = 1;
const SYSTEM: usize = 2;
const IOWAIT: usize = 4;
const IRQ: usize = 5;
const SOFTIRQ: usize = 6;
const STEAL: usize = 7;
const GUEST: usize = 8;
const GUEST_NICE: usize = 9;

/// Netdata's dimension order (idle, index 3, is deliberately absent).
const DIMENSIONS: [(&str, usize); 9] = [
    ("guest_nice", GUEST_NICE),
    ("guest", GUEST),
    ("steal", STEAL),
    ("softirq", SOFTIRQ),
    ("irq", IRQ),
    ("user", USER),
    ("system", SYSTEM),
    ("nice", NICE),
    ("iowait", IOWAIT),
];

/// One `cpu…` line: the name (`cpu` for the total, `cpuN` per core) and its
/// ten jiffy counters, with user/nice already net of guest/guest_nice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CpuTimes {
    pub name: String,
    pub jiffies: [u64; 10],
}

/// Parses every `cpu` line of `/proc/stat`. `None` when the total `cpu ` line
/// is missing or any cpu line is malformed. Older kernels print fewer than ten
/// columns; the missing ones are zero (at least user, nice, system, idle).
pub(crate) fn parse_stat(text: &str) -> Option<Vec<CpuTimes>> {
    let mut cpus = Vec::new();
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(name) = words.next() else { continue };
        let Some(suffix) = name.strip_prefix("cpu") else {
            continue;
        };
        if !suffix.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let mut jiffies = [0u64; 10];
        let mut count = 0;
        for word in words.take(10) {
            jiffies[count] = word.parse().ok()?;
            count += 1;
        }
        if count < 4 {
            return None;
        }
        jiffies[USER] = jiffies[USER].saturating_sub(jiffies[GUEST]);
        jiffies[NICE] = jiffies[NICE].saturating_sub(jiffies[GUEST_NICE]);
        cpus.push(CpuTimes { name: name.to_string(), jiffies });
    }
    cpus.iter().any(|c| c.name == "cpu").then_some(cpus)
}

/// Percentages for every cpu present in both readings (cores come and go
/// with hotplug, so they are matched by name, not position).
pub(crate) fn metrics(prev: &[CpuTimes], cur: &[CpuTimes]) -> Vec<Metric> {
    let mut out = Vec::new();
    for now in cur {
        let Some(before) = prev.iter().find(|p| p.name == now.name) else {
            continue;
        };
        let (chart, instance, labels) = if now.name == "cpu" {
            (&SYSTEM_CPU, "system.cpu".to_string(), BTreeMap::new())
        } else {
            let labels = BTreeMap::from([("cpu".to_string(), now.name.clone())]);
            (&CORE_CPU, format!("cpu.{}", now.name), labels)
        };
        for (dimension, value) in percentages(before, now) {
            out.push(Metric { chart, instance: instance.clone(), labels: labels.clone(), dimension, value });
        }
    }
    out
}

/// Each dimension's share of the interval's total jiffies, in percent. A
/// counter that went backwards drops out of both its dimension and the total;
/// an interval with no jiffies at all (same reading twice) yields nothing.
fn percentages(before: &CpuTimes, now: &CpuTimes) -> Vec<(&'static str, f64)> {
    let deltas: Vec<Option<u64>> = (0..10).map(|i| now.jiffies[i].checked_sub(before.jiffies[i])).collect();
    let total: u64 = deltas.iter().flatten().sum();
    if total == 0 {
        return Vec::new();
    }
    DIMENSIONS.iter().filter_map(|&(name, i)| deltas[i].map(|d| (name, d as f64 * 100.0 / total as f64))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "\
cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
cpu1 1335276 27467 476346 13552440 4014 0 2473 0 32105 0
intr 199292311 22 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0 2 0 0 0
ctxt 3154413553
btime 1692264102
processes 532870
procs_running 2
procs_blocked 0
softirq 112498012 3 44474418 27 1356148 83049 0 136587 38392349 0 28055431
";

    fn value(ms: &[Metric], instance: &str, dimension: &str) -> Option<f64> {
        ms.iter().find(|m| m.instance == instance && m.dimension == dimension).map(|m| m.value)
    }

    #[test]
    fn parses_total_and_cores_net_of_guest() {
        let cpus = parse_stat(STAT).expect("parses");
        let names: Vec<&str> = cpus.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["cpu", "cpu0", "cpu1"]);
        // user 10132153 minus guest 175628.
        assert_eq!(cpus[0].jiffies[USER], 9_956_525);
        assert_eq!(cpus[1].jiffies[3], 13_343_292);
    }

    #[test]
    fn old_kernel_short_lines_pad_with_zero() {
        let cpus = parse_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\n").expect("parses");
        assert_eq!(cpus[0].jiffies, [1, 2, 3, 4, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn never_panics_on_mangled_input() {
        for text in crate::collector::tests::mangled(STAT) {
            let _ = parse_stat(&text);
        }
    }

    #[test]
    fn rejects_missing_total_and_garbage() {
        assert_eq!(parse_stat("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_stat("cpu 1 2 x 4\n"), None);
        assert_eq!(parse_stat("cpu 1 2\n"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn percentages_of_all_jiffies_including_idle() {
        let before = parse_stat("cpu 100 0 100 800 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n");
        // +30 user, +10 system, +50 idle, +10 iowait = 100 jiffies.
        let now = parse_stat("cpu 130 0 110 850 10 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n");
        let ms = metrics(&before.expect("before"), &now.expect("now"));
        assert_eq!(value(&ms, "system.cpu", "user"), Some(30.0));
        assert_eq!(value(&ms, "system.cpu", "system"), Some(10.0));
        assert_eq!(value(&ms, "system.cpu", "iowait"), Some(10.0));
        assert_eq!(value(&ms, "system.cpu", "idle"), None);
        let dims: Vec<&str> = ms.iter().map(|m| m.dimension).collect();
        assert_eq!(dims, DIMENSIONS.map(|(n, _)| n));
        // cpu0 did not move at all: no division by zero, no series.
        assert!(ms.iter().all(|m| m.instance == "system.cpu"));
    }

    #[test]
    fn per_core_instance_and_label() {
        let before = parse_stat("cpu 0 0 0 0\ncpu3 0 0 0 0\n").expect("before");
        let now = parse_stat("cpu 1 0 0 3\ncpu3 1 0 0 3\n").expect("now");
        let ms = metrics(&before, &now);
        let core = ms.iter().find(|m| m.instance == "cpu.cpu3").expect("core");
        assert_eq!(core.chart.context, "cpu.cpu");
        assert_eq!(core.labels.get("cpu").map(String::as_str), Some("cpu3"));
        assert_eq!(value(&ms, "cpu.cpu3", "user"), Some(25.0));
    }

    #[test]
    fn counter_going_backwards_drops_only_that_dimension() {
        let before = parse_stat("cpu 100 50 0 0\n").expect("before");
        let now = parse_stat("cpu 110 10 0 10\n").expect("now");
        let ms = metrics(&before, &now);
        assert_eq!(value(&ms, "system.cpu", "nice"), None);
        assert_eq!(value(&ms, "system.cpu", "user"), Some(50.0));
    }
}
