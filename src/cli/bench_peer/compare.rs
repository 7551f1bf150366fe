//! Do two engines give the same answer? Same series, same bucket times,
//! values within 1e-9 relative once strata's rounding is allowed for:
//! strata writes numbers with 7 decimals, so up to 5e-8 absolute is its
//! rounding, not a different answer (`|a - b| <= 5e-8 + 1e-9 * max`), and
//! two strata answers (automatic tier against tier 0) may each be rounded
//! the other way (`1e-7`). A bucket one engine leaves empty and the other
//! omits (PromQL omits empty points) counts as agreeing.

use super::workloads::Answer;

const REL: f64 = 1e-9;
/// Half a unit of strata's seventh decimal.
const ABS: f64 = 5e-8;

/// Whose rounding the second answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Another engine's, printed at full precision.
    Exact,
    /// strata's own seven decimals, like the first answer.
    Rounded,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agreement {
    pub buckets: usize,
    pub differing: usize,
    /// Of those, buckets with a value on one side and none on the other.
    pub presence: usize,
    /// Largest relative difference where both sides have a value.
    pub max_rel: f64,
    /// The first difference, for the report.
    pub first: Option<String>,
}

impl Agreement {
    pub fn agrees(&self) -> bool {
        self.differing == 0 && self.buckets > 0
    }

    pub fn summary(&self) -> String {
        if self.agrees() {
            format!("agree ({} buckets)", self.buckets)
        } else if self.buckets == 0 {
            self.first.clone().unwrap_or_else(|| "no buckets to compare".into())
        } else {
            format!(
                "{} of {} buckets differ ({} value vs empty; max rel {:.1e}; first: {})",
                self.differing,
                self.buckets,
                self.presence,
                self.max_rel,
                self.first.as_deref().unwrap_or("?")
            )
        }
    }
}

fn close(a: f64, b: f64, peer: Peer) -> bool {
    let rounding = if peer == Peer::Rounded { 2.0 * ABS } else { ABS };
    (a - b).abs() <= rounding + REL * a.abs().max(b.abs())
}

pub fn compare(strata: &Answer, peer: &Answer, rounded: Peer) -> Agreement {
    let mut ag = Agreement::default();
    let note = |ag: &mut Agreement, msg: String| {
        ag.differing += 1;
        if ag.first.is_none() {
            ag.first = Some(msg);
        }
    };
    for name in peer.keys().filter(|k| !strata.contains_key(*k)) {
        note(&mut ag, format!("series '{name}' only in the peer's answer"));
    }
    for (name, s) in strata {
        let Some(p) = peer.get(name) else {
            if s.iter().any(|x| x.1.is_some()) {
                note(&mut ag, format!("series '{name}' missing from the peer's answer"));
            }
            continue;
        };
        let peer_at: std::collections::BTreeMap<i64, Option<f64>> = p.iter().copied().collect();
        for &t in peer_at.keys().filter(|t| !s.iter().any(|x| x.0 == **t)) {
            note(&mut ag, format!("'{name}' at {t}: a bucket strata does not have"));
        }
        for &(t, x) in s {
            ag.buckets += 1;
            match (x, peer_at.get(&t).copied().flatten()) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    let rel = (a - b).abs() / a.abs().max(b.abs()).max(f64::MIN_POSITIVE);
                    ag.max_rel = ag.max_rel.max(rel);
                    if !close(a, b, rounded) {
                        note(&mut ag, format!("'{name}' at {t}: strata {a}, peer {b}"));
                    }
                }
                (a, b) => {
                    ag.presence += 1;
                    note(&mut ag, format!("'{name}' at {t}: strata {a:?}, peer {b:?}"));
                }
            }
        }
    }
    if strata.is_empty() && peer.is_empty() {
        ag.first = Some("both answers are empty".into());
    }
    ag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(v: &[(i64, Option<f64>)]) -> Answer {
        [("selected".to_string(), v.to_vec())].into()
    }

    #[test]
    fn equal_rounded_and_empty_buckets_agree() {
        let a = ans(&[(10, Some(1.123_456_7)), (20, None)]);
        let b = ans(&[(10, Some(1.123_456_712_3))]);
        assert!(compare(&a, &b, Peer::Exact).agrees(), "{:?}", compare(&a, &b, Peer::Exact));
    }

    #[test]
    fn a_half_unit_of_the_seventh_decimal_plus_summation_noise_agrees() {
        let a = ans(&[(10, Some(40.990_236_3))]);
        let b = ans(&[(10, Some(40.990_236_249_999_99))]);
        assert!(compare(&a, &b, Peer::Exact).agrees(), "{:?}", compare(&a, &b, Peer::Exact));
    }

    #[test]
    fn a_different_value_or_bucket_is_reported() {
        let a = ans(&[(10, Some(1.0)), (20, Some(2.0))]);
        let b = ans(&[(10, Some(1.0)), (20, Some(2.1))]);
        let ag = compare(&a, &b, Peer::Exact);
        assert_eq!((ag.buckets, ag.differing), (2, 1));
        assert!(ag.summary().contains("at 20"), "{}", ag.summary());
        let c = ans(&[(10, Some(1.0)), (20, Some(2.0)), (30, Some(3.0))]);
        assert_eq!(compare(&a, &c, Peer::Exact).differing, 1);
    }

    #[test]
    fn two_strata_answers_may_round_apart() {
        // 44.21984375 +- 1e-12, rounded to seven decimals both ways.
        let (a, b) = (ans(&[(10, Some(44.219_843_8))]), ans(&[(10, Some(44.219_843_7))]));
        assert!(compare(&a, &b, Peer::Rounded).agrees());
        assert!(!compare(&a, &b, Peer::Exact).agrees(), "one rounding cannot explain 1e-7");
        let c = ans(&[(10, Some(44.219_844_0))]);
        assert!(!compare(&a, &c, Peer::Rounded).agrees());
    }
}
