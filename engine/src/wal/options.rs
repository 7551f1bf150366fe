//! How durable an acknowledged append is, and when the log starts a new file.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::error::WalError;

/// When an appended record reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// `append` returns only after an fsync covering the record: an
    /// acknowledged record survives a power loss. The default, because it is
    /// the only policy under which nothing acknowledged is ever lost.
    #[default]
    Always,
    /// `append` returns once the record is written to the OS (it survives a
    /// crash of the process, not of the machine); a background thread fsyncs
    /// at most this long later, so a power loss can lose that window.
    Interval(Duration),
}

impl FromStr for SyncPolicy {
    type Err = WalError;

    /// Parses `always` or `interval:<ms>` (ms > 0; a zero interval would make
    /// the background thread spin).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || WalError::BadPolicy(s.to_string());
        let trimmed = s.trim();
        if trimmed.eq_ignore_ascii_case("always") {
            return Ok(SyncPolicy::Always);
        }
        let (name, ms) = trimmed.split_once(':').ok_or_else(bad)?;
        if !name.eq_ignore_ascii_case("interval") {
            return Err(bad());
        }
        let ms: u64 = ms.trim().parse().map_err(|_| bad())?;
        if ms == 0 {
            return Err(bad());
        }
        Ok(SyncPolicy::Interval(Duration::from_millis(ms)))
    }
}

impl fmt::Display for SyncPolicy {
    /// The same spelling `from_str` accepts, so a configured policy can be
    /// echoed back (sub-millisecond parts are not representable and dropped).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncPolicy::Always => f.write_str("always"),
            SyncPolicy::Interval(d) => write!(f, "interval:{}", d.as_millis()),
        }
    }
}

/// Options for [`super::Wal::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    pub sync: SyncPolicy,
    /// A new segment file is started when appending a record would take the
    /// current one past this size. A single record larger than this gets a
    /// segment of its own. Smaller segments let checkpoints free disk sooner;
    /// larger ones mean fewer files and rotations.
    pub segment_bytes: u64,
}

impl WalOptions {
    pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { sync: SyncPolicy::default(), segment_bytes: Self::DEFAULT_SEGMENT_BYTES }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_and_round_trips() {
        assert_eq!("always".parse::<SyncPolicy>().expect("always"), SyncPolicy::Always);
        let p: SyncPolicy = "interval:250".parse().expect("interval");
        assert_eq!(p, SyncPolicy::Interval(Duration::from_millis(250)));
        assert_eq!(p.to_string().parse::<SyncPolicy>().expect("round trip"), p);
        assert_eq!(SyncPolicy::Always.to_string(), "always");
    }

    #[test]
    fn bad_policy_names_the_value() {
        for bad in ["", "sometimes", "interval", "interval:", "interval:0", "interval:-5", "interval:1.5", "every:10"] {
            match bad.parse::<SyncPolicy>() {
                Err(WalError::BadPolicy(v)) => assert_eq!(v, bad),
                other => panic!("{bad:?} parsed as {other:?}"),
            }
            let msg = bad.parse::<SyncPolicy>().expect_err("bad").to_string();
            assert!(msg.contains(&format!("'{bad}'")), "{msg}");
        }
    }
}
