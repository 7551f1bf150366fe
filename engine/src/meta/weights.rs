//! Metric correlations (`/api/v2/weights`): every visible metric gets a
//! weight saying how much it matters in a highlighted window, optionally
//! compared with a baseline window, and the metrics are ranked by it.
//!
//! Methods (all weights are >= 0, higher = more interesting):
//! - `ks2`: the two-sample Kolmogorov–Smirnov statistic D (0..1) between the
//!   baseline's and the highlight's point values, both grouped into buckets
//!   of the same width (at least 15 highlight buckets are needed).
//! - `volume`: |h - b| / (|h| + |b|) of the two windows' averages (0..1): 1
//!   when the metric appeared from or dropped to nothing, 0 when unchanged.
//! - `anomaly-rate`: the fraction (0..1) of the highlight's samples that
//!   carry the anomaly bit.
//! - `value`: the highlight's average (ranked by magnitude).
//!
//! Each metric is read once per window from the finest tier that still
//! covers the earliest window it needs (so both windows come from the same
//! resolution), straight from `Store::for_each_run`; the query planner is
//! not involved. Metrics without data in a window they need are skipped;
//! weights of exactly 0 are dropped (Netdata's default `nonzero`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{EngineError, Result};
use crate::meta::Visible;
use crate::model::MetricId;
use crate::query::window::target_window;
use crate::storage::{Store, StoreView};

/// How to weigh a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Ks2,
    Volume,
    AnomalyRate,
    Value,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "ks2" => Method::Ks2,
            "volume" => Method::Volume,
            "anomaly-rate" | "anomaly_rate" => Method::AnomalyRate,
            "value" => Method::Value,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Ks2 => "ks2",
            Method::Volume => "volume",
            Method::AnomalyRate => "anomaly-rate",
            Method::Value => "value",
        }
    }

    /// Does the method compare against a baseline window?
    pub fn needs_baseline(self) -> bool {
        matches!(self, Method::Ks2 | Method::Volume)
    }
}

/// A weights request, times as the client gave them (relative or absolute).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsRequest {
    pub method: Method,
    pub after: i64,
    pub before: i64,
    pub baseline_after: Option<i64>,
    pub baseline_before: Option<i64>,
    /// Highlight buckets for `ks2` (0 = 500, capped by the data's resolution).
    pub points: usize,
    /// Most dimension rows returned (0 = all).
    pub cardinality_limit: usize,
    pub timeout_ms: u64,
}

/// Statistics of one metric over one window (raw samples behind the points).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStats {
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u64,
    pub anomalous: u64,
}

impl Default for WindowStats {
    fn default() -> Self {
        WindowStats { min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0, count: 0, anomalous: 0 }
    }
}

impl WindowStats {
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// One ranked metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub metric: MetricId,
    pub weight: f64,
    pub highlight: WindowStats,
    pub baseline: Option<WindowStats>,
}

/// The ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub method: Method,
    /// Absolute highlight window `[after, before]`.
    pub highlight: (i64, i64),
    pub baseline: Option<(i64, i64)>,
    /// Highlight buckets used by `ks2` (0 for other methods).
    pub points: usize,
    /// Heaviest first.
    pub weights: Vec<Weight>,
    /// Visible metrics considered.
    pub considered: u64,
}

/// Netdata's limit: 3 years of seconds; smaller magnitudes are relative.
const RELATIVE_LIMIT: i64 = 3 * 365 * 86_400;
/// `ks2` needs at least this many highlight buckets.
pub const MIN_KS2_POINTS: usize = 15;
const DEFAULT_POINTS: usize = 500;

/// Netdata's cap on ks2 baseline buckets: a baseline is shortened to keep
/// `points << shifts` within it.
const MAX_BASELINE_POINTS: usize = 10_000;

/// Resolves the baseline window: relative `before` counts back from the
/// highlight's start, relative `after` from the baseline's end; by default
/// the four highlight durations right before it. As Netdata does, the
/// baseline then ends where it was asked to and lasts a power-of-two
/// multiple of the highlight (the nearest ratio rounded up: 3 becomes 4,
/// and at most what keeps the ks2 buckets within [`MAX_BASELINE_POINTS`]).
fn baseline_window(req: &WeightsRequest, highlight: (i64, i64)) -> Result<(i64, i64)> {
    let (ba, bb) = asked_baseline(req, highlight)?;
    // In i128: the ends are any i64 a request gives.
    let dur = i128::from(highlight.1) - i128::from(highlight.0) + 1;
    let ratio = ((i128::from(bb) - i128::from(ba) + 1) as f64 / dur as f64).round().clamp(1.0, 1e9) as u64;
    let mut shifts = ratio.next_power_of_two().trailing_zeros();
    let points = if req.points == 0 { DEFAULT_POINTS } else { req.points } as u128;
    while shifts > 0 && points << shifts > MAX_BASELINE_POINTS as u128 {
        shifts -= 1;
    }
    let ba = i64::try_from(i128::from(bb) - (dur << shifts) + 1).ok().filter(|&a| a < bb);
    ba.map(|ba| (ba, bb)).ok_or_else(|| EngineError::param("baseline_after", "Invalid baseline time-range."))
}

/// The baseline as the request gives it, before it is resized.
fn asked_baseline(req: &WeightsRequest, (ha, hb): (i64, i64)) -> Result<(i64, i64)> {
    let dur = hb.saturating_sub(ha).saturating_add(1);
    let relative = |v: i64| v.unsigned_abs() <= RELATIVE_LIMIT as u64;
    let bb = match req.baseline_before {
        Some(v) if relative(v) => ha.saturating_sub(1).saturating_sub(v.abs()),
        Some(v) => v,
        None => ha.saturating_sub(1),
    };
    let ba = match req.baseline_after {
        Some(v) if v != 0 && relative(v) => bb.saturating_sub(v.abs()).saturating_add(1),
        Some(v) if v != 0 => v,
        _ => bb.saturating_sub(dur.saturating_mul(4)).saturating_add(1),
    };
    if ba >= bb {
        return Err(EngineError::param("baseline_after", "Invalid baseline time-range."));
    }
    Ok((ba, bb))
}

/// The finest tier whose data still reaches back to `from` (else the
/// finest with any data) and its resolution.
fn tier_for(store: &StoreView, m: MetricId, from: i64, tiers: usize) -> Option<(usize, i64)> {
    let usable: Vec<usize> =
        (0..tiers.clamp(1, crate::storage::TIERS)).filter(|&t| store.extent(m, t).is_some()).collect();
    let t = usable
        .iter()
        .copied()
        .find(|&t| store.extent(m, t).is_some_and(|e| e.first <= from))
        .or(usable.first().copied())?;
    Some((t, store.resolution(m, t)?))
}

/// Reads `m` over `[a, b]`: stats, plus bucket averages of width `width`
/// seconds when `width` is given.
fn read(
    store: &StoreView,
    m: MetricId,
    tier: usize,
    (a, b): (i64, i64),
    width: Option<f64>,
) -> (WindowStats, Vec<f64>) {
    let Some(ue) = store.update_every(m) else { return (WindowStats::default(), Vec::new()) };
    let mut st = WindowStats::default();
    let nb = width.map_or(0, |w| (((b - a + 1) as f64 / w).ceil() as usize).max(1));
    let mut buckets = vec![(0.0f64, 0u64); nb];
    store.for_each_run(m, ue, tier, a - 1, b, |run| {
        for i in 0..run.len {
            if !run.is_valid(i) {
                continue;
            }
            let p = run.agg(i);
            let (count, anomalous) = run.counts(i);
            st.min = st.min.min(p.min);
            st.max = st.max.max(p.max);
            st.sum += p.sum;
            st.count += u64::from(count);
            st.anomalous += u64::from(anomalous);
            if let Some(w) = width {
                let k = (((run.end_of(i) - a) as f64 / w) as usize).min(nb - 1);
                buckets[k].0 += p.sum;
                buckets[k].1 += u64::from(p.count);
            }
        }
    });
    let values = buckets.into_iter().filter(|(_, c)| *c > 0).map(|(s, c)| s / c as f64).collect();
    (st, values)
}

/// The two-sample Kolmogorov–Smirnov statistic D.
pub fn ks2(mut a: Vec<f64>, mut b: Vec<f64>) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    d
}

/// An absolute window `[after, before]`.
type Span = (i64, i64);

/// The highlight window and, when the method needs one, the baseline.
pub fn windows(req: &WeightsRequest, now: i64) -> Result<(Span, Option<Span>)> {
    let highlight = target_window(req.after, req.before, now);
    if highlight.0 >= highlight.1 {
        return Err(EngineError::param("after", "Invalid selected time-range."));
    }
    let baseline = if req.method.needs_baseline() { Some(baseline_window(req, highlight)?) } else { None };
    Ok((highlight, baseline))
}

/// The view [`run`] reads: the visible metrics' sealed spans and the open
/// blocks over both windows. Taken under the store's read lock, which the
/// ranking itself then does without.
pub fn view(store: &Store, visible: &Visible, req: &WeightsRequest, now: i64) -> Result<StoreView> {
    let (highlight, baseline) = windows(req, now)?;
    let earliest = baseline.map_or(highlight.0, |b| b.0.min(highlight.0));
    let mut view = StoreView::of(store, visible.iter());
    view.attach_open(store, |_, _| (earliest - 1, highlight.1));
    Ok(view)
}

/// Ranks the visible metrics; gives up with [`EngineError::Cancelled`] once
/// `cancel` turns true (checked per metric).
pub fn run(
    store: &StoreView,
    visible: &Visible,
    req: &WeightsRequest,
    now: i64,
    tiers: usize,
    cancel: Option<&AtomicBool>,
) -> Result<Weights> {
    let started = Instant::now();
    let (highlight, baseline) = windows(req, now)?;
    let earliest = baseline.map_or(highlight.0, |b| b.0.min(highlight.0));
    let dur = (highlight.1 - highlight.0 + 1) as f64;
    let wanted = if req.points == 0 { DEFAULT_POINTS } else { req.points };
    let mut weights = Vec::new();
    let mut points = 0;
    for m in visible {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(EngineError::Cancelled);
        }
        if req.timeout_ms > 0 && started.elapsed().as_millis() as u64 > req.timeout_ms {
            let elapsed_ms = started.elapsed().as_millis() as u64;
            return Err(EngineError::Timeout { timeout_ms: req.timeout_ms, elapsed_ms });
        }
        let Some((tier, res)) = tier_for(store, m, earliest, tiers) else { continue };
        let width = (req.method == Method::Ks2).then(|| {
            let n = wanted.min((dur / res as f64).floor().max(1.0) as usize).max(1);
            points = points.max(n);
            dur / n as f64
        });
        let (h, hv) = read(store, m, tier, highlight, width);
        // Volume also weighs presence: a metric that appeared from nothing
        // or dropped to nothing weighs 1. Other methods need both windows.
        let volume = req.method == Method::Volume;
        if h.count == 0 && !volume {
            continue;
        }
        let (b, bv) = match baseline.map(|w| read(store, m, tier, w, width)) {
            Some((s, _)) if s.count == 0 && (!volume || h.count == 0) => continue,
            Some((s, v)) => (Some(s), v),
            None if h.count == 0 => continue,
            None => (None, Vec::new()),
        };
        let weight = match req.method {
            Method::Value => h.avg(),
            Method::AnomalyRate => h.anomalous as f64 / h.count as f64,
            Method::Volume if h.count == 0 || b.is_some_and(|s| s.count == 0) => 1.0,
            Method::Volume => {
                let (hv, bv) = (h.avg(), b.map_or(0.0, |s| s.avg()));
                let total = hv.abs() + bv.abs();
                if total > 0.0 {
                    (hv - bv).abs() / total
                } else {
                    0.0
                }
            }
            Method::Ks2 => ks2(hv, bv),
        };
        if weight == 0.0 || !weight.is_finite() {
            continue;
        }
        weights.push(Weight { metric: m, weight, highlight: h, baseline: b });
    }
    if req.method == Method::Ks2 && points < MIN_KS2_POINTS && !weights.is_empty() {
        return Err(EngineError::param(
            "points",
            format!("Too few points available, at least {MIN_KS2_POINTS} are needed."),
        ));
    }
    weights.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()).then(a.metric.cmp(&b.metric)));
    if req.cardinality_limit > 0 {
        weights.truncate(req.cardinality_limit);
    }
    Ok(Weights { method: req.method, highlight, baseline, points, weights, considered: visible.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks2_statistic() {
        assert_eq!(ks2(vec![1.0, 2.0, 3.0], vec![1.0, 2.0, 3.0]), 0.0);
        assert_eq!(ks2(vec![1.0, 2.0], vec![10.0, 11.0]), 1.0);
        let d = ks2(vec![1.0, 2.0, 3.0, 4.0], vec![3.0, 4.0, 5.0, 6.0]);
        assert!((d - 0.5).abs() < 1e-12, "{d}");
    }

    #[test]
    fn baseline_defaults_to_four_highlights_before() {
        let req = WeightsRequest {
            method: Method::Ks2,
            after: 1000,
            before: 1099,
            baseline_after: None,
            baseline_before: None,
            points: 0,
            cardinality_limit: 0,
            timeout_ms: 0,
        };
        // Absolute values are large in practice; test the arithmetic directly.
        assert_eq!(baseline_window(&req, (2_000_000_000, 2_000_000_099)).expect("ok"), (1_999_999_600, 1_999_999_999));
        let bad = WeightsRequest { baseline_after: Some(1_999_999_999), baseline_before: Some(1_999_999_000), ..req };
        assert!(baseline_window(&bad, (2_000_000_000, 2_000_000_099)).is_err());
    }

    /// The baseline keeps its end and lasts a power-of-two multiple of the
    /// highlight (the nearest ratio, rounded up), at most 10,000 ks2
    /// buckets' worth.
    #[test]
    fn baseline_lasts_a_power_of_two_highlights() {
        let h = (2_000_000_000, 2_000_000_099); // 100 s
        let req = |after: i64, before: i64, points: usize| WeightsRequest {
            method: Method::Ks2,
            after: 0,
            before: 0,
            baseline_after: Some(after),
            baseline_before: Some(before),
            points,
            cardinality_limit: 0,
            timeout_ms: 0,
        };
        let end = 1_999_999_999;
        for (asked, multiple) in [(100, 1), (120, 1), (260, 4), (300, 4), (340, 4), (500, 8), (40, 1), (1_000, 16)] {
            let got = baseline_window(&req(end - asked + 1, end, 0), h).expect("valid");
            assert_eq!(got, (end - 100 * multiple + 1, end), "{asked} s asked");
        }
        // 500 points << 5 passes 10,000: 16 highlights, not 32; 10 points allow 32.
        assert_eq!(baseline_window(&req(end - 3_199, end, 0), h).expect("valid").0, end - 1_599);
        assert_eq!(baseline_window(&req(end - 3_199, end, 10), h).expect("valid").0, end - 3_199);
        // Ends far apart neither overflow nor turn the window around.
        let far = baseline_window(&req(-7_000_000_000_000_000_000, end, 0), (0, 2));
        assert!(far.is_ok_and(|(a, b)| a < b && b == end));
        assert!(baseline_window(&req(i64::MIN, i64::MIN + 5, 1), h).is_err(), "past i64");
    }
}
