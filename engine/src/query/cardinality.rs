//! `cardinality_limit` / `limit`: at most N result series; the top N-1 by
//! contribution are kept and the rest fold into one series named
//! `remaining K dimensions` (Netdata's rule).

use crate::query::group::SeriesKey;
use crate::query::request::Aggregation;
use crate::query::result::Series;
use crate::query::result::{PointStats, PA_EMPTY, PA_PARTIAL};

/// What a fold did: how many series were folded and the largest folded contribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Folded {
    pub folded: usize,
    pub cut: f64,
}

fn contribution(s: &Series) -> f64 {
    s.values.iter().zip(&s.flags).filter(|(_, f)| **f & PA_EMPTY == 0).map(|(v, _)| v.abs()).sum()
}

/// Applies the limit in place. `agg` combines the folded values per point.
pub fn fold(series: &mut Vec<Series>, limit: usize, agg: Aggregation) -> Option<Folded> {
    if limit == 0 || series.len() <= limit {
        return None;
    }
    let keep = limit.saturating_sub(1).max(1);
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by(|&a, &b| contribution(&series[b]).total_cmp(&contribution(&series[a])).then(a.cmp(&b)));
    let mut kept_idx: Vec<usize> = order[..keep].to_vec();
    kept_idx.sort_unstable();
    let rest: Vec<usize> = order[keep..].to_vec();
    let cut = rest.iter().map(|&i| contribution(&series[i])).fold(0.0, f64::max);
    let points = series[0].values.len();
    let mut values = vec![0.0; points];
    let mut flags = vec![PA_EMPTY; points];
    let mut arp = vec![0.0; points];
    let mut counts = vec![0u32; points];
    let mut db_stats = PointStats::default();
    let mut aggregated = 0;
    for &i in &rest {
        let s = &series[i];
        aggregated += s.aggregated;
        db_stats.merge(&s.db_stats);
        for p in 0..points {
            if s.flags[p] & PA_EMPTY != 0 {
                continue;
            }
            let v = s.values[p];
            values[p] = match (counts[p], agg) {
                (0, _) => v,
                (_, Aggregation::Min) => values[p].min(v),
                (_, Aggregation::Max) => values[p].max(v),
                (_, Aggregation::Extremes) if v.abs() > values[p].abs() => v,
                (_, Aggregation::Extremes) => values[p],
                _ => values[p] + v,
            };
            counts[p] += 1;
            arp[p] += s.arp[p];
            flags[p] = (flags[p] & !PA_EMPTY) | (s.flags[p] & PA_PARTIAL);
        }
    }
    for p in 0..points {
        if counts[p] > 0 {
            arp[p] /= f64::from(counts[p]);
            if agg == Aggregation::Average || agg == Aggregation::Percentage {
                values[p] /= f64::from(counts[p]);
            }
        }
    }
    let name = format!("remaining {} dimensions", rest.len());
    let units = series[rest[0]].key.units.clone();
    let priority = rest.iter().map(|&i| series[i].key.priority).min().unwrap_or(0);
    let mut kept: Vec<Series> = kept_idx.iter().map(|&i| series[i].clone()).collect();
    kept.push(Series {
        key: SeriesKey { id: name.clone(), name, units, priority, labels: Vec::new() },
        aggregated,
        values,
        flags,
        arp,
        counts,
        db_stats,
    });
    *series = kept;
    Some(Folded { folded: rest.len(), cut })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(id: &str, vals: &[f64]) -> Series {
        Series {
            key: SeriesKey { id: id.into(), name: id.into(), units: "u".into(), priority: 0, labels: vec![] },
            aggregated: 1,
            values: vals.to_vec(),
            flags: vec![0; vals.len()],
            arp: vec![0.0; vals.len()],
            counts: vec![1; vals.len()],
            db_stats: PointStats::default(),
        }
    }

    #[test]
    fn keeps_the_top_and_folds_the_rest() {
        let mut v = vec![s("a", &[1.0, 1.0]), s("b", &[10.0, 10.0]), s("c", &[2.0, 3.0]), s("d", &[5.0, -5.0])];
        let f = fold(&mut v, 3, Aggregation::Sum).expect("folded");
        assert_eq!(f, Folded { folded: 2, cut: 5.0 });
        let ids: Vec<&str> = v.iter().map(|x| x.key.id.as_str()).collect();
        assert_eq!(ids, vec!["b", "d", "remaining 2 dimensions"]);
        assert_eq!(v[2].values, vec![3.0, 4.0]);
        assert_eq!(v[2].aggregated, 2);
        assert!(fold(&mut v, 3, Aggregation::Sum).is_none());
    }
}
