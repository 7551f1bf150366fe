//! Property tests: whatever records are appended come back intact, and no
//! damage to a segment file makes `open` panic or return anything but a
//! prefix of what was written.

use std::fs;
use std::time::Duration;

use proptest::prelude::*;

use super::tests::{open, segment_files, TestDir};
use super::*;

fn interval() -> SyncPolicy {
    // No fsync per append: these tests are about format, not durability.
    SyncPolicy::Interval(Duration::from_secs(3600))
}

/// One way to damage a file.
#[derive(Debug, Clone)]
enum Damage {
    Flip { at: prop::sample::Index, mask: u8 },
    Truncate { at: prop::sample::Index },
    Append { bytes: Vec<u8> },
    Overwrite { at: prop::sample::Index, bytes: Vec<u8> },
}

fn damage() -> impl Strategy<Value = Damage> {
    let bytes = || prop::collection::vec(any::<u8>(), 1..48);
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<prop::sample::Index>().prop_map(|at| Damage::Truncate { at }),
        bytes().prop_map(|bytes| Damage::Append { bytes }),
        (any::<prop::sample::Index>(), bytes()).prop_map(|(at, bytes)| Damage::Overwrite { at, bytes }),
    ]
}

fn apply(buf: &mut Vec<u8>, damage: &Damage) {
    match damage {
        Damage::Flip { at, mask } => {
            let at = at.index(buf.len());
            buf[at] ^= mask;
        }
        Damage::Truncate { at } => buf.truncate(at.index(buf.len())),
        Damage::Append { bytes } => buf.extend_from_slice(bytes),
        Damage::Overwrite { at, bytes } => {
            let at = at.index(buf.len());
            let end = (at + bytes.len()).min(buf.len());
            buf[at..end].copy_from_slice(&bytes[..end - at]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_records_round_trip(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..700), 0..40),
        segment_bytes in 64u64..2048,
        after in 0u64..45,
    ) {
        let dir = TestDir::new("prop-roundtrip");
        let wal_opts = WalOptions { sync: interval(), segment_bytes };
        let (wal, _, _) = open(dir.path(), wal_opts, 0);
        for (i, rec) in records.iter().enumerate() {
            prop_assert_eq!(wal.append(rec).expect("append"), i as u64 + 1);
        }
        wal.sync().expect("sync");
        drop(wal);
        let n = records.len() as u64;
        let after = after.min(n);
        let (wal, recovered, report) = open(dir.path(), wal_opts, after);
        let want: Vec<(Lsn, Vec<u8>)> =
            records.into_iter().zip(1..).map(|(r, lsn)| (lsn, r)).skip(after as usize).collect();
        prop_assert_eq!(recovered, want);
        prop_assert_eq!(report.truncated, None);
        prop_assert_eq!(wal.last_lsn(), n);
    }

    #[test]
    fn random_damage_never_panics_open(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..25),
        victim in any::<prop::sample::Index>(),
        damage in damage(),
    ) {
        let dir = TestDir::new("prop-damage");
        let wal_opts = WalOptions { sync: interval(), segment_bytes: 300 };
        let (wal, _, _) = open(dir.path(), wal_opts, 0);
        for rec in &records {
            wal.append(rec).expect("append");
        }
        drop(wal);
        let files = segment_files(dir.path());
        let victim = &files[victim.index(files.len())];
        let mut buf = fs::read(victim).expect("read");
        apply(&mut buf, &damage);
        fs::write(victim, &buf).expect("write");

        let written: Vec<(Lsn, Vec<u8>)> = records.into_iter().zip(1..).map(|(r, lsn)| (lsn, r)).collect();
        match Wal::open(dir.path(), wal_opts, 0) {
            Ok((wal, recovered, _)) => {
                prop_assert!(written.starts_with(&recovered), "recovered records are not a prefix");
                let next = recovered.len() as u64 + 1;
                prop_assert_eq!(wal.append(b"after damage").expect("append"), next);
                drop(wal);
                // The repair is complete: a second open finds nothing to cut.
                let (_, again, report) = open(dir.path(), wal_opts, 0);
                prop_assert_eq!(report.truncated, None);
                prop_assert_eq!(again.len() as u64, next);
                prop_assert!(again.starts_with(&recovered));
            }
            // Only a damaged version field may make it refuse the log.
            Err(WalError::UnsupportedVersion { .. }) => {
                prop_assert!(buf.starts_with(b"STRWAL") && buf.get(6..8) != Some(b"01".as_slice()));
            }
            Err(other) => prop_assert!(false, "open failed: {other}"),
        }
    }
}
