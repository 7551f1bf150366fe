//! RAM use from `/proc/meminfo` as `system.ram`: dimensions `free`, `used`,
//! `cached`, `buffers` in MiB, which stack up to MemTotal.
//!
//! `cached` is `Cached + SReclaimable`: reclaimable slab is given back under
//! pressure just like the page cache, so counting it as "used" would overstate
//! what applications hold. `used` is whatever is left:
//! `MemTotal - MemFree - cached - Buffers` (never below zero).

use std::collections::BTreeMap;

use super::{Chart, Metric};

static SYSTEM_RAM: Chart = Chart { context: "system.ram", units: "MiB", title: "System RAM", chart_type: "stacked" };

/// The meminfo fields the chart needs, in KiB as the kernel prints them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub buffers: u64,
    pub cached: u64,
    pub sreclaimable: u64,
}

/// `None` unless MemTotal, MemFree, Buffers and Cached are all present and
/// numeric; SReclaimable is optional (kernels before 2.6.19 lack it).
pub(crate) fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        // Values are "<n> kB"; a key we do not use may be malformed harmlessly.
        if let Some(Ok(kib)) = rest.split_ascii_whitespace().next().map(str::parse::<u64>) {
            fields.insert(key.trim(), kib);
        }
    }
    Some(MemInfo {
        total: *fields.get("MemTotal")?,
        free: *fields.get("MemFree")?,
        buffers: *fields.get("Buffers")?,
        cached: *fields.get("Cached")?,
        sreclaimable: fields.get("SReclaimable").copied().unwrap_or(0),
    })
}

/// The four dimensions, in MiB.
pub(crate) fn metrics(mem: &MemInfo) -> Vec<Metric> {
    let cached = mem.cached.saturating_add(mem.sreclaimable);
    let used = mem.total.saturating_sub(mem.free).saturating_sub(cached).saturating_sub(mem.buffers);
    [("free", mem.free), ("used", used), ("cached", cached), ("buffers", mem.buffers)]
        .into_iter()
        .map(|(dimension, kib)| Metric {
            chart: &SYSTEM_RAM,
            instance: "system.ram".to_string(),
            labels: BTreeMap::new(),
            dimension,
            value: kib as f64 / 1024.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "\
MemTotal:       16303428 kB
MemFree:         1894352 kB
MemAvailable:    9876544 kB
Buffers:          524288 kB
Cached:          6815744 kB
SwapCached:         1024 kB
Active:          7340032 kB
Inactive:        5242880 kB
Shmem:            409600 kB
Slab:             786432 kB
SReclaimable:     524288 kB
SUnreclaim:       262144 kB
SwapTotal:       2097148 kB
SwapFree:        2096124 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

    #[test]
    fn parses_the_fields_it_needs() {
        let mem = parse_meminfo(MEMINFO).expect("parses");
        assert_eq!(
            mem,
            MemInfo { total: 16_303_428, free: 1_894_352, buffers: 524_288, cached: 6_815_744, sreclaimable: 524_288 }
        );
    }

    #[test]
    fn dimensions_in_mib_stack_to_total() {
        let mem = parse_meminfo(MEMINFO).expect("parses");
        let ms = metrics(&mem);
        let got: Vec<(&str, f64)> = ms.iter().map(|m| (m.dimension, m.value)).collect();
        // cached = (6815744 + 524288) / 1024; used = total - free - cached - buffers.
        let used = (16_303_428.0 - 1_894_352.0 - 7_340_032.0 - 524_288.0) / 1024.0;
        assert_eq!(got, [("free", 1_894_352.0 / 1024.0), ("used", used), ("cached", 7168.0), ("buffers", 512.0),]);
        let sum: f64 = ms.iter().map(|m| m.value).sum();
        assert!((sum - 16_303_428.0 / 1024.0).abs() < 1e-9);
        assert!(ms.iter().all(|m| m.instance == "system.ram"));
    }

    #[test]
    fn sreclaimable_is_optional_but_the_rest_is_not() {
        let old = "MemTotal: 1024 kB\nMemFree: 0 kB\nBuffers: 0 kB\nCached: 0 kB\n";
        assert_eq!(parse_meminfo(old).map(|m| m.sreclaimable), Some(0));
        assert_eq!(parse_meminfo("MemTotal: 1024 kB\nMemFree: 0 kB\n"), None);
        assert_eq!(parse_meminfo(""), None);
    }

    #[test]
    fn never_panics_on_mangled_input() {
        for text in crate::collector::tests::mangled(MEMINFO) {
            if let Some(mem) = parse_meminfo(&text) {
                let _ = metrics(&mem);
            }
        }
    }
}
