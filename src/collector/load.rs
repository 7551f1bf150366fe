//! The kernel's load averages from `/proc/loadavg` as `system.load`:
//! dimensions `load1`, `load5`, `load15`, passed through unchanged (they are
//! already averages, so no previous reading is needed).

use std::collections::BTreeMap;

use super::{Chart, Metric};

static SYSTEM_LOAD: Chart =
    Chart { context: "system.load", units: "load", title: "System Load Average", chart_type: "line" };

/// The first three fields (1, 5 and 15 minute averages); `None` when any is
/// missing, not a number, or not finite.
pub(crate) fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut words = text.split_ascii_whitespace();
    let mut avg = [0.0; 3];
    for slot in &mut avg {
        let v: f64 = words.next()?.parse().ok()?;
        // "inf"/"nan" parse as f64 but are not a load; refuse the whole line.
        if !v.is_finite() {
            return None;
        }
        *slot = v;
    }
    Some(avg)
}

pub(crate) fn metrics(avg: [f64; 3]) -> Vec<Metric> {
    ["load1", "load5", "load15"]
        .into_iter()
        .zip(avg)
        .map(|(dimension, value)| Metric {
            chart: &SYSTEM_LOAD,
            instance: "system.load".to_string(),
            labels: BTreeMap::new(),
            dimension,
            value,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOADAVG: &str = "0.52 0.58 0.59 2/1024 123456\n";

    #[test]
    fn parses_three_averages() {
        assert_eq!(parse_loadavg(LOADAVG), Some([0.52, 0.58, 0.59]));
        let ms = metrics([0.52, 0.58, 0.59]);
        let got: Vec<(&str, f64)> = ms.iter().map(|m| (m.dimension, m.value)).collect();
        assert_eq!(got, [("load1", 0.52), ("load5", 0.58), ("load15", 0.59)]);
        assert_eq!(ms[0].chart.context, "system.load");
    }

    #[test]
    fn rejects_short_or_garbage() {
        assert_eq!(parse_loadavg("0.52 0.58\n"), None);
        assert_eq!(parse_loadavg("0.52 x 0.59 1/2 3\n"), None);
        assert_eq!(parse_loadavg("nan 0 0 1/2 3\n"), None);
        assert_eq!(parse_loadavg(""), None);
    }

    #[test]
    fn never_panics_on_mangled_input() {
        for text in crate::collector::tests::mangled(LOADAVG) {
            let _ = parse_loadavg(&text);
        }
    }
}
