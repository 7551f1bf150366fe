//! Connection-level limits through a raw socket: slow-loris header
//! dribbling is cut off, slow bodies get 408, and both within their limits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{Server, TempDir};

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_string()
}

/// Reads until EOF or `limit`; returns what arrived and how long it took.
fn read_until_close(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    (String::from_utf8_lossy(&buf).into_owned(), start.elapsed())
}

#[test]
fn slow_headers_are_cut_off_by_the_header_timeout() {
    let server = Server::start_with(TempDir::new("loris"), None, &["--header-timeout", "1s"]);
    let mut s = TcpStream::connect(addr(&server)).expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").expect("partial headers");
    let (_, took) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(took < Duration::from_secs(4), "connection held for {took:?}");
    // The server still serves others.
    let (status, body) = server.get("/health");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn slow_bodies_get_408_json() {
    let server = Server::start_with(TempDir::new("slowbody"), None, &["--body-timeout", "1s"]);
    let mut s = TcpStream::connect(addr(&server)).expect("connect");
    let head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"series\"",
        server.token
    );
    s.write_all(head.as_bytes()).expect("headers and a bit of body");
    let (text, took) = read_until_close(&mut s, Duration::from_secs(5));
    assert!(text.starts_with("HTTP/1.1 408"), "got: {text}");
    assert!(text.contains("\"status\":408"), "JSON error body: {text}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

/// A body trickled one byte per packet costs memory by the bytes received,
/// not by the packets: each packet arrives as a slice of a read buffer of
/// kilobytes, and holding those slices until the body ends (as a plain
/// collect does) grew RSS by about 4 KiB per byte sent. Four connections
/// trickle 6,000 bytes each: at that rate about 100 MB; read as copied
/// bytes, a few hundred KiB.
#[test]
fn trickled_bodies_cost_memory_by_their_bytes() {
    let _one_at_a_time = crate::harness::exclusive();
    let s = Server::start_with(TempDir::new("trickle"), None, &["--body-timeout", "60s"]);
    let before = s.rss_kib().1;
    let (conns, bytes) = (4, 6_000);
    let mut socks: Vec<TcpStream> = (0..conns)
        .map(|_| {
            let c = s.raw_ingest("application/json", 10 << 20);
            c.set_nodelay(true).expect("nodelay");
            c
        })
        .collect();
    for i in 0..bytes {
        for c in &mut socks {
            c.write_all(if i == 0 { b"[" } else { b" " }).expect("one byte");
        }
        // Each byte its own packet: the reader then sees one chunk per byte.
        std::thread::sleep(Duration::from_micros(50));
    }
    let grown = s.rss_kib().1.saturating_sub(before);
    eprintln!("limits: {conns} x {bytes} trickled bytes grew RssAnon by {grown} KiB");
    assert!(grown < 24 * 1024, "RssAnon grew {grown} KiB for {} trickled bytes", conns * bytes);
    drop(socks);
    let (status, body) = s.get("/health");
    assert_eq!(status, 200, "{body}");
}

/// Memory follows the data: 200,000 new series with one sample each cost
/// well under 4 KiB of RSS apiece (open spans allocate a block when a point
/// lands, not a whole span per series).
#[test]
fn many_one_sample_series_cost_little_memory() {
    let _one_at_a_time = crate::harness::exclusive();
    let now = 1_763_900_000;
    let s = Server::start(Some(now + 1));
    let series = |from: usize, n: usize| -> serde_json::Value {
        let list: Vec<serde_json::Value> = (from..from + n)
            .map(|i| {
                serde_json::json!({"node": format!("n{}", i % 100), "context": "card.test",
                    "instance": format!("i{}", i / 8), "dimension": format!("d{}", i % 8), "points": [[now, i as f64]]})
            })
            .collect();
        serde_json::json!({ "series": list })
    };
    s.ingest_ok(&series(0, 1000)); // warm-up: runtime, first spans
    let (before, anon_before, _) = s.rss_kib();
    const N: usize = 200_000;
    for k in (1000..N).step_by(10_000) {
        let (accepted, late) = s.ingest_ok(&series(k, 10_000.min(N - k)));
        assert_eq!((accepted, late), (10_000.min(N - k) as u64, 0));
    }
    let (after, anon_after, _) = s.rss_kib();
    let per_series = (after.saturating_sub(before)) as f64 * 1024.0 / (N - 1000) as f64;
    eprintln!(
        "cardinality: RSS {before} -> {after} KiB (anon {anon_before} -> {anon_after}), {per_series:.0} bytes per series"
    );
    assert!(after - before < 800 * 1024, "RSS grew {} MiB for {N} one-sample series", (after - before) / 1024);
    assert!(per_series < 4096.0, "{per_series:.0} bytes per series");
    let (status, body) = s.get("/health");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metrics"], serde_json::json!(N));
}
