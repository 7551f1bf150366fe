//! Disk bandwidth from `/proc/diskstats` as `disk.io`, one instance per whole
//! block device (`disk.<dev>`, label `device`).
//!
//! Dimensions are `reads` (positive) and `writes` (negative, as Netdata draws
//! them) in KiB/s: the sector counters' delta * 512 / 1024 per second (the
//! kernel counts 512-byte sectors here whatever the hardware sector size).
//! Charted devices leave out partitions (their I/O is already in the disk),
//! loop/ram/zram/floppy/optical devices, and devices with no I/O since boot.

use std::collections::BTreeMap;

use super::{negate, rate, Chart, Metric};

static DISK_IO: Chart = Chart { context: "disk.io", units: "KiB/s", title: "Disk I/O Bandwidth", chart_type: "area" };

/// Device families that are never a real disk; a name is skipped when it is
/// one of these followed only by digits (`loop0`, `sr0`, `zram1`).
const SKIPPED: [&str; 5] = ["loop", "ram", "zram", "fd", "sr"];

/// One device's cumulative counters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DiskCounters {
    pub name: String,
    pub reads: u64,
    pub sectors_read: u64,
    pub writes: u64,
    pub sectors_written: u64,
}

/// The devices worth charting. `None` when any line lacks the 11 classic
/// numeric columns (newer kernels append more, which are ignored).
pub(crate) fn parse_diskstats(text: &str) -> Option<Vec<DiskCounters>> {
    let mut all = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let name = *words.get(2)?;
        let stats: Vec<u64> = words[3..].iter().map(|w| w.parse()).collect::<Result<_, _>>().ok()?;
        if stats.len() < 11 {
            return None;
        }
        all.push(DiskCounters {
            name: name.to_string(),
            reads: stats[0],
            sectors_read: stats[2],
            writes: stats[4],
            sectors_written: stats[6],
        });
    }
    let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
    let keep: Vec<bool> = all
        .iter()
        .map(|d| !is_skipped_family(&d.name) && !is_partition(&d.name, &names) && (d.reads > 0 || d.writes > 0))
        .collect();
    Some(all.into_iter().zip(keep).filter_map(|(d, k)| k.then_some(d)).collect())
}

fn is_skipped_family(name: &str) -> bool {
    SKIPPED.iter().any(|family| name.strip_prefix(family).is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit())))
}

/// A partition is another listed device's name plus a partition number, with
/// the kernel's naming rule: a disk whose name ends in a digit takes `p<N>`
/// (`nvme0n1p1`, `mmcblk0p2`), any other takes `<N>` (`sda1`). The rule keeps
/// `md12` from looking like a partition of `md1`.
fn is_partition(name: &str, all: &[&str]) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all.iter().any(|disk| {
        let Some(rest) = name.strip_prefix(disk) else {
            return false;
        };
        if disk.ends_with(|c: char| c.is_ascii_digit()) {
            rest.strip_prefix('p').is_some_and(digits)
        } else {
            digits(rest)
        }
    })
}

/// Rates for devices present in both readings over `elapsed` seconds.
pub(crate) fn metrics(prev: &[DiskCounters], cur: &[DiskCounters], elapsed: i64) -> Vec<Metric> {
    let mut out = Vec::new();
    for now in cur {
        let Some(before) = prev.iter().find(|p| p.name == now.name) else {
            continue;
        };
        let kib = |sectors: f64| sectors * 512.0 / 1024.0;
        let reads = rate(before.sectors_read, now.sectors_read, elapsed).map(kib);
        let writes = rate(before.sectors_written, now.sectors_written, elapsed).map(|r| negate(kib(r)));
        for (dimension, value) in [("reads", reads), ("writes", writes)] {
            let Some(value) = value else { continue };
            out.push(Metric {
                chart: &DISK_IO,
                instance: format!("disk.{}", now.name),
                labels: BTreeMap::from([("device".to_string(), now.name.clone())]),
                dimension,
                value,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISKSTATS: &str = "\
   7       0 loop0 98 0 2200 28 0 0 0 0 0 40 28 0 0 0 0 0 0
   8       0 sda 283418 101240 13654588 93728 445871 578215 27659906 2152660 0 602092 2342232 0 0 0 0 39224 95843
   8       1 sda1 283270 101240 13648316 93664 445871 578215 27659906 2152660 0 602060 2246324 0 0 0 0 0 0
   8      16 sdb 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 259       0 nvme0n1 5021 12 400118 900 7006 3001 900128 1200 0 3000 2100 0 0 0 0 0 0
 259       1 nvme0n1p1 5000 12 400000 890 7000 3001 900000 1190 0 2990 2080 0 0 0 0 0 0
   9       1 md1 10 0 80 1 0 0 0 0 0 1 1
   9      12 md12 20 0 160 2 0 0 0 0 0 2 2
  11       0 sr0 12 0 96 3 0 0 0 0 0 4 3 0 0 0 0 0 0
";

    fn disk(name: &str, sectors_read: u64, sectors_written: u64) -> DiskCounters {
        DiskCounters { name: name.to_string(), reads: 1, sectors_read, writes: 1, sectors_written }
    }

    #[test]
    fn keeps_whole_disks_with_io_only() {
        let got = parse_diskstats(DISKSTATS).expect("parses");
        let names: Vec<&str> = got.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["sda", "nvme0n1", "md1", "md12"]);
        assert_eq!(
            got[0],
            DiskCounters {
                name: "sda".to_string(),
                reads: 283_418,
                sectors_read: 13_654_588,
                writes: 445_871,
                sectors_written: 27_659_906,
            }
        );
    }

    #[test]
    fn partition_naming_rule() {
        let all = ["sda", "sda1", "nvme0n1", "nvme0n1p2", "md1", "md12", "mmcblk0"];
        assert!(is_partition("sda1", &all));
        assert!(is_partition("nvme0n1p2", &all));
        assert!(!is_partition("sda", &all));
        assert!(!is_partition("md12", &all));
        assert!(!is_partition("mmcblk0boot0", &all));
        assert!(is_skipped_family("zram0") && !is_skipped_family("sda"));
    }

    #[test]
    fn rejects_short_or_garbage_lines() {
        assert_eq!(parse_diskstats("8 0 sda 1 2 3\n"), None);
        assert_eq!(parse_diskstats("8 0 sda 1 2 3 4 5 6 x 8 9 10 11\n"), None);
        assert_eq!(parse_diskstats("8 0\n"), None);
        assert_eq!(parse_diskstats(""), Some(Vec::new()));
    }

    #[test]
    fn kib_per_second_with_writes_negative() {
        // +2048 sectors read (1 MiB), +512 written over 4 s.
        let ms = metrics(&[disk("sda", 100, 100)], &[disk("sda", 2148, 612)], 4);
        let got: Vec<(&str, f64)> = ms.iter().map(|m| (m.dimension, m.value)).collect();
        assert_eq!(got, [("reads", 256.0), ("writes", -64.0)]);
        assert_eq!(ms[0].instance, "disk.sda");
        assert_eq!(ms[0].labels.get("device").map(String::as_str), Some("sda"));
    }

    #[test]
    fn reset_counter_drops_only_that_dimension() {
        let ms = metrics(&[disk("sda", 100, 100)], &[disk("sda", 50, 100)], 1);
        let got: Vec<(&str, f64)> = ms.iter().map(|m| (m.dimension, m.value)).collect();
        assert_eq!(got, [("writes", 0.0)]);
    }

    #[test]
    fn never_panics_on_mangled_input() {
        for text in crate::collector::tests::mangled(DISKSTATS) {
            let _ = parse_diskstats(&text);
        }
    }
}
