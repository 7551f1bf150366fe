//! Network bandwidth from `/proc/net/dev` as `net.net`, one instance per
//! interface (`net.<iface>`, label `device`), loopback excluded because it is
//! not traffic in or out of the host.
//!
//! Dimensions are `received` (positive) and `sent` (negative, as Netdata draws
//! the outbound half of an area chart), in kilobits/s: the byte counters'
//! delta * 8 / 1000 divided by the seconds between readings.

use std::collections::BTreeMap;

use super::{negate, rate, Chart, Metric};

static NET: Chart = Chart { context: "net.net", units: "kilobits/s", title: "Bandwidth", chart_type: "area" };

/// One interface's cumulative byte counters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NetCounters {
    pub iface: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Every interface except `lo`. The two header lines have no `:` and are
/// skipped; an interface line without its 16 numeric columns makes the whole
/// file unparsable (`None`) rather than silently charting half of it.
pub(crate) fn parse_net_dev(text: &str) -> Option<Vec<NetCounters>> {
    let mut out = Vec::new();
    for line in text.lines() {
        // Big counters can touch the colon ("eth0:123"), so split on it,
        // not on whitespace.
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let iface = name.trim();
        let fields: Vec<u64> = rest.split_ascii_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
        if iface.is_empty() || fields.len() < 16 {
            return None;
        }
        if iface == "lo" {
            continue;
        }
        out.push(NetCounters { iface: iface.to_string(), rx_bytes: fields[0], tx_bytes: fields[8] });
    }
    Some(out)
}

/// Rates for interfaces present in both readings over `elapsed` seconds.
pub(crate) fn metrics(prev: &[NetCounters], cur: &[NetCounters], elapsed: i64) -> Vec<Metric> {
    let mut out = Vec::new();
    for now in cur {
        let Some(before) = prev.iter().find(|p| p.iface == now.iface) else {
            continue;
        };
        let kilobits = |b: f64| b * 8.0 / 1000.0;
        let received = rate(before.rx_bytes, now.rx_bytes, elapsed).map(kilobits);
        let sent = rate(before.tx_bytes, now.tx_bytes, elapsed).map(|r| negate(kilobits(r)));
        for (dimension, value) in [("received", received), ("sent", sent)] {
            let Some(value) = value else { continue };
            out.push(Metric {
                chart: &NET,
                instance: format!("net.{}", now.iface),
                labels: BTreeMap::from([("device".to_string(), now.iface.clone())]),
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

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 2776770   11307    0    0    0     0          0         0  2776770   11307    0    0    0     0       0          0
  eth0: 1215645    2751    0    0    0     0          0         0  1782404    4324    0    0    0     0       0          0
";

    fn counters(iface: &str, rx: u64, tx: u64) -> NetCounters {
        NetCounters { iface: iface.to_string(), rx_bytes: rx, tx_bytes: tx }
    }

    #[test]
    fn parses_interfaces_without_loopback() {
        let got = parse_net_dev(NET_DEV).expect("parses");
        assert_eq!(got, [counters("eth0", 1_215_645, 1_782_404)]);
    }

    #[test]
    fn counter_touching_the_colon() {
        let text = "eth1:123456789012 1 0 0 0 0 0 0 42 1 0 0 0 0 0 0\n";
        let got = parse_net_dev(text).expect("parses");
        assert_eq!(got, [counters("eth1", 123_456_789_012, 42)]);
    }

    #[test]
    fn rejects_truncated_or_garbage_lines() {
        assert_eq!(parse_net_dev("eth0: 1 2 3\n"), None);
        assert_eq!(parse_net_dev("eth0: 1 2 3 4 5 6 7 8 x 1 2 3 4 5 6 7\n"), None);
        assert_eq!(parse_net_dev(""), Some(Vec::new()));
    }

    #[test]
    fn kilobits_per_second_with_sent_negative() {
        let before = [counters("eth0", 1000, 5000)];
        // +2500 bytes in, +1250 out over 2 s.
        let now = [counters("eth0", 3500, 6250)];
        let ms = metrics(&before, &now, 2);
        let got: Vec<(&str, f64)> = ms.iter().map(|m| (m.dimension, m.value)).collect();
        assert_eq!(got, [("received", 10.0), ("sent", -5.0)]);
        assert_eq!(ms[0].instance, "net.eth0");
        assert_eq!(ms[0].labels.get("device").map(String::as_str), Some("eth0"));
    }

    #[test]
    fn idle_sent_is_plain_zero_and_elapsed_is_at_least_one() {
        let ms = metrics(&[counters("eth0", 0, 7)], &[counters("eth0", 125, 7)], 0);
        assert_eq!(ms[0].value, 1.0);
        assert!(ms[1].value.is_sign_positive());
    }

    #[test]
    fn reset_counter_and_new_interface_are_skipped() {
        let before = [counters("eth0", 9000, 100)];
        let now = [counters("eth0", 10, 200), counters("wlan0", 1, 1)];
        let ms = metrics(&before, &now, 1);
        let got: Vec<(&str, &str)> = ms.iter().map(|m| (m.instance.as_str(), m.dimension)).collect();
        assert_eq!(got, [("net.eth0", "sent")]);
    }

    #[test]
    fn never_panics_on_mangled_input() {
        for text in crate::collector::tests::mangled(NET_DEV) {
            let _ = parse_net_dev(&text);
        }
    }
}
