//! Time-group names, aliases and their option strings, as Netdata spells
//! them. Unknown names are an error in strata (Netdata silently averages).

use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Average,
    Min,
    Max,
    Sum,
    IncrementalSum,
    /// Median and trimmed-median are one algorithm with a trim percentage.
    Median,
    Percentile,
    TrimmedMean,
    Stddev,
    Cv,
    Ses,
    Des,
    CountIf,
    Extremes,
    Latest,
}

impl Method {
    /// Which value of a tier point this method reads (Netdata's "tier query fetch").
    pub fn field(self) -> Field {
        match self {
            Method::Min => Field::Min,
            Method::Max => Field::Max,
            Method::Sum => Field::Sum,
            _ => Field::Average,
        }
    }

    /// Whether the method can take a rollup point (or a slice's summary)
    /// as the aggregate of its samples, with the same answer as taking the
    /// samples one by one ([`crate::query::kernels::Kernel::add_agg`]).
    /// The others need raw values: higher tiers only approximate them.
    pub fn merges_rollups(self) -> bool {
        matches!(self, Method::Average | Method::Min | Method::Max | Method::Sum | Method::Extremes)
    }

    /// Whether the method's answer depends only on the sum and count of a
    /// bucket's values, so a part of a rollup point is the point minus the
    /// rest of it.
    pub fn sums_only(self) -> bool {
        matches!(self, Method::Average | Method::Sum)
    }
}

/// The value of a storage point a time group consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Average,
    Min,
    Max,
    Sum,
    /// `options=anomaly-bit`: the point's anomaly rate (0..100) instead of its value.
    AnomalyRate,
}

/// A time group with its parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeGroup {
    pub method: Method,
    /// The name the caller used (echoed in responses).
    pub name: String,
    /// Percent parameter from the name's suffix (percentile95 -> 95).
    pub default_param: f64,
    /// `time_group_options` / `group_options`, unparsed.
    pub options: Option<String>,
}

impl Default for TimeGroup {
    fn default() -> Self {
        TimeGroup { method: Method::Average, name: "average".into(), default_param: 0.0, options: None }
    }
}

const PERCENTILES: [u32; 9] = [25, 50, 75, 80, 90, 95, 97, 98, 99];
const TRIMS: [u32; 8] = [1, 2, 3, 5, 10, 15, 20, 25];

impl TimeGroup {
    /// Parses a name; `param` is the request parameter name for errors.
    pub fn parse(name: &str, param: &str) -> Result<TimeGroup> {
        let with = |method, p: f64| TimeGroup { method, name: name.to_string(), default_param: p, options: None };
        let suffixed = |prefix: &str, allowed: &[u32]| -> Option<f64> {
            let n: u32 = name.strip_prefix(prefix)?.parse().ok()?;
            allowed.contains(&n).then_some(f64::from(n))
        };
        Ok(match name {
            "average" | "avg" | "mean" => with(Method::Average, 0.0),
            "min" => with(Method::Min, 0.0),
            "max" => with(Method::Max, 0.0),
            "sum" => with(Method::Sum, 0.0),
            "incremental_sum" | "incremental-sum" => with(Method::IncrementalSum, 0.0),
            "median" => with(Method::Median, 0.0),
            "trimmed-median" => with(Method::Median, 5.0),
            "percentile" => with(Method::Percentile, 95.0),
            "trimmed-mean" => with(Method::TrimmedMean, 5.0),
            "stddev" => with(Method::Stddev, 0.0),
            "cv" | "rsd" | "coefficient-of-variation" => with(Method::Cv, 0.0),
            "ses" | "ema" | "ewma" => with(Method::Ses, 0.0),
            "des" => with(Method::Des, 0.0),
            "countif" => with(Method::CountIf, 0.0),
            "extremes" => with(Method::Extremes, 0.0),
            "latest" => with(Method::Latest, 0.0),
            _ => {
                if let Some(p) = suffixed("percentile", &PERCENTILES) {
                    with(Method::Percentile, p)
                } else if let Some(p) = suffixed("trimmed-median", &TRIMS) {
                    with(Method::Median, p)
                } else if let Some(p) = suffixed("trimmed-mean", &TRIMS) {
                    with(Method::TrimmedMean, p)
                } else {
                    return Err(EngineError::param(
                        param,
                        format!("unknown time_group '{name}' (try average, min, max, sum, median, percentile95, stddev, countif, ...)"),
                    ));
                }
            }
        })
    }
}

impl TimeGroup {
    /// The name of the method this group runs, as Netdata 1.37 prints it in
    /// a v1 answer's `group` (aliases resolved, the default percentage
    /// spelled out): `avg` is `average`, `trimmed-mean` is `trimmed-mean5`.
    pub fn canonical_name(&self) -> String {
        let p = self.default_param as u32;
        match self.method {
            Method::Average => "average".into(),
            Method::Min => "min".into(),
            Method::Max => "max".into(),
            Method::Sum => "sum".into(),
            Method::IncrementalSum => "incremental_sum".into(),
            Method::Median if p == 0 => "median".into(),
            Method::Median => format!("trimmed-median{p}"),
            Method::Percentile => format!("percentile{p}"),
            Method::TrimmedMean => format!("trimmed-mean{p}"),
            Method::Stddev => "stddev".into(),
            Method::Cv => "cv".into(),
            Method::Ses => "ses".into(),
            Method::Des => "des".into(),
            Method::CountIf => "countif".into(),
            Method::Extremes => "extremes".into(),
            Method::Latest => "latest".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names_resolve_aliases_and_defaults() {
        for (asked, printed) in [
            ("avg", "average"),
            ("mean", "average"),
            ("ewma", "ses"),
            ("rsd", "cv"),
            ("incremental-sum", "incremental_sum"),
            ("trimmed-mean", "trimmed-mean5"),
            ("trimmed-median", "trimmed-median5"),
            ("trimmed-median10", "trimmed-median10"),
            ("percentile", "percentile95"),
            ("percentile99", "percentile99"),
            ("median", "median"),
        ] {
            let g = TimeGroup::parse(asked, "group").expect("known");
            assert_eq!(g.canonical_name(), printed, "{asked}");
        }
    }

    #[test]
    fn names_and_aliases() {
        assert_eq!(TimeGroup::parse("avg", "time_group").map(|t| t.method).ok(), Some(Method::Average));
        let p = TimeGroup::parse("percentile99", "g").expect("percentile99");
        assert_eq!((p.method, p.default_param), (Method::Percentile, 99.0));
        let t = TimeGroup::parse("trimmed-median10", "g").expect("tm10");
        assert_eq!((t.method, t.default_param), (Method::Median, 10.0));
        assert!(TimeGroup::parse("percentile42", "g").is_err());
        let e = TimeGroup::parse("avg2", "time_group").expect_err("unknown");
        assert_eq!(e.path(), Some("time_group"));
        assert!(e.to_string().contains("avg2"));
    }
}
