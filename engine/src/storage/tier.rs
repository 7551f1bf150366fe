//! Tier layout: how coarse each tier is, how long a sealed span is, and how
//! long it is kept.

/// Number of storage tiers.
pub const TIERS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierSpec {
    /// Resolution as a multiple of the metric's update_every (1, 60, 3600).
    pub factor: i64,
    /// Points per sealed span: 1 h of tier 0, 1 day of tier 1, 30 days of tier 2
    /// at update_every 1. Multiples of 8 so bitmaps stay byte-aligned per row.
    pub span_points: usize,
    /// Sealed spans whose end is older than this are dropped.
    pub retention_secs: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageConfig {
    pub tiers: [TierSpec; TIERS],
    /// How long a tier-0 span stays open after the newest sample has moved
    /// past it, so samples that arrive a little late (another collector's
    /// batch, network delay) are still written instead of refused.
    pub late_grace_secs: i64,
}

/// Default [`StorageConfig::late_grace_secs`].
pub const DEFAULT_LATE_GRACE_SECS: i64 = 300;

pub const DAY: i64 = 86_400;

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            tiers: [
                TierSpec { factor: 1, span_points: 3600, retention_secs: 14 * DAY },
                TierSpec { factor: 60, span_points: 1440, retention_secs: 90 * DAY },
                TierSpec { factor: 3600, span_points: 720, retention_secs: 730 * DAY },
            ],
            late_grace_secs: DEFAULT_LATE_GRACE_SECS,
        }
    }
}

impl StorageConfig {
    /// Resolution in seconds of `tier` for a metric collected every `ue` seconds.
    pub fn resolution(&self, tier: usize, ue: i64) -> i64 {
        self.tiers[tier].factor * ue
    }

    /// Length in seconds of one span of `tier` for update_every `ue`.
    pub fn span_secs(&self, tier: usize, ue: i64) -> i64 {
        self.resolution(tier, ue) * self.tiers[tier].span_points as i64
    }

    /// The oldest tier-0 span that must stay open once the newest sample of
    /// update_every `ue` is at `newest`: everything before it is sealed, and
    /// samples before its start are late.
    pub fn head_for(&self, newest: i64, ue: i64) -> i64 {
        span_start(newest.saturating_sub(self.late_grace_secs), self.span_secs(0, ue))
    }
}

/// Point end time holding sample `t` at resolution `res`: windows are
/// `(end - res, end]` and epoch-aligned.
#[inline]
pub fn window_end(t: i64, res: i64) -> i64 {
    t.div_euclid(res) * res + if t.rem_euclid(res) == 0 { 0 } else { res }
}

/// Start of the span (of `span_secs` seconds) that holds point end `end`.
#[inline]
pub fn span_start(end: i64, span_secs: i64) -> i64 {
    end.div_euclid(span_secs) * span_secs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_end_inclusive_and_aligned() {
        assert_eq!(window_end(60, 60), 60);
        assert_eq!(window_end(61, 60), 120);
        assert_eq!(window_end(1, 60), 60);
        assert_eq!(window_end(-1, 60), 0);
        assert_eq!(span_start(86_399, DAY), 0);
        assert_eq!(span_start(86_400, DAY), DAY);
        let c = StorageConfig::default();
        assert_eq!(c.span_secs(0, 1), 3600);
        assert_eq!(c.span_secs(1, 1), DAY);
        assert_eq!(c.span_secs(2, 1), 30 * DAY);
        assert_eq!(c.resolution(2, 10), 36_000);
    }
}
