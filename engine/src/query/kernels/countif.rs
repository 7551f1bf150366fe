//! `countif`: the percentage of the bucket's values satisfying a
//! comparison (`>`, `>=`/`>:`, `<`, `<=`/`<:`, `=`/`==`/`:`, `!=`/`<>`/`!:`/`!`
//! followed by a number). Empty means `== 0`. strata deviation: a bare
//! number means `== number` (Netdata 1.37 drops its first digit).

use super::Kernel;
use crate::error::{EngineError, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

pub fn parse_condition(opt: Option<&str>) -> Result<(Cmp, f64)> {
    let s = opt.unwrap_or("").trim_start();
    if s.trim().is_empty() {
        return Ok((Cmp::Eq, 0.0));
    }
    let ops: [(&str, Cmp); 14] = [
        (">=", Cmp::Ge),
        (">:", Cmp::Ge),
        ("<=", Cmp::Le),
        ("<:", Cmp::Le),
        ("<>", Cmp::Ne),
        ("!=", Cmp::Ne),
        ("!:", Cmp::Ne),
        ("==", Cmp::Eq),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
        ("!", Cmp::Ne),
        ("=", Cmp::Eq),
        (":", Cmp::Eq),
        ("", Cmp::Eq),
    ];
    let (cmp, rest) = ops.iter().find_map(|(p, c)| s.strip_prefix(p).map(|r| (*c, r))).unwrap_or((Cmp::Eq, s));
    let n: f64 = rest.trim().parse().map_err(|_| {
        EngineError::param(
            "time_group_options",
            format!("countif condition '{s}' must be an operator (>, >=, <, <=, ==, !=) and a number"),
        )
    })?;
    Ok((cmp, n))
}

#[derive(Debug, Clone)]
pub struct CountIf {
    cmp: Cmp,
    target: f64,
    matched: u64,
    n: u64,
}

impl CountIf {
    pub fn new(cmp: Cmp, target: f64) -> Self {
        CountIf { cmp, target, matched: 0, n: 0 }
    }
}

impl Kernel for CountIf {
    fn reset(&mut self) {
        self.matched = 0;
        self.n = 0;
    }

    fn add(&mut self, v: f64) {
        let t = self.target;
        let hit = match self.cmp {
            Cmp::Gt => v > t,
            Cmp::Ge => v >= t,
            Cmp::Lt => v < t,
            Cmp::Le => v <= t,
            Cmp::Eq => v == t,
            Cmp::Ne => v != t,
        };
        self.matched += u64::from(hit);
        self.n += 1;
    }

    fn flush(&mut self) -> Option<f64> {
        let out = (self.n > 0).then(|| self.matched as f64 * 100.0 / self.n as f64);
        self.reset();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::run;
    use super::*;

    #[test]
    fn conditions() {
        assert_eq!(parse_condition(None).expect("empty"), (Cmp::Eq, 0.0));
        assert_eq!(parse_condition(Some(">=5")).expect("ge"), (Cmp::Ge, 5.0));
        assert_eq!(parse_condition(Some(" <>2.5")).expect("ne"), (Cmp::Ne, 2.5));
        assert_eq!(parse_condition(Some("!:0")).expect("ne"), (Cmp::Ne, 0.0));
        assert_eq!(parse_condition(Some("500")).expect("bare"), (Cmp::Eq, 500.0));
        assert_eq!(parse_condition(Some(":-1")).expect("eq"), (Cmp::Eq, -1.0));
        assert!(parse_condition(Some(">x")).is_err());
    }

    #[test]
    fn percentage_of_matches() {
        let mut k = CountIf::new(Cmp::Gt, 1.0);
        assert_eq!(run(&mut k, &[&[0.0, 2.0, 3.0, 1.0], &[]]), vec![Some(50.0), None]);
    }
}
