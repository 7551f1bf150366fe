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

/// Clients that ask for large answers and do not read them. Each answer
/// counts against the budget of unsent answers (`--query-memory`) until
/// the client takes it: with the budget full, another large answer is a
/// JSON 503 that says why, while small requests still pass. At
/// `--send-timeout` after an answer's first byte the server cuts each
/// such connection (the client finds it closed before the answer ended),
/// which frees the budget: the large query answers again. Before, each
/// unread answer stayed in memory for as long as its client kept the
/// socket open (a probe grew RssAnon to 6.3 GiB with 70 clients).
#[test]
fn unread_answers_are_bounded_and_cut_at_the_send_timeout() {
    let _one_at_a_time = crate::harness::exclusive();
    let now: i64 = 1_763_900_000;
    let server = Server::start_with(
        TempDir::new("unread"),
        Some(now),
        // A send timeout long enough for a debug build under a busy CI to
        // build all the unread answers before the first is cut.
        &["--send-timeout", "20s", "--query-memory", "48MiB", "--max-queries", "64"],
    );
    let (series, secs) = (100, 3_000i64);
    let from = now - secs;
    let batch = serde_json::json!({"series": (0..series).map(|d| serde_json::json!({
        "context": "big.answer", "dimension": format!("d{d}"),
        // Long numbers: a large answer for the query memory it needs.
        "points": (from + 1..=now).map(|t| serde_json::json!([t, 1e6 + ((t * 7 + d) % 10_000) as f64 / 1e4 + 1e-7])).collect::<Vec<_>>(),
    })).collect::<Vec<_>>()});
    server.ingest_ok(&batch);
    let query = serde_json::json!({
        "scope": {"contexts": ["big.answer"]},
        "window": {"after": from, "before": now, "points": secs, "tier": 0},
        "aggregations": {"metrics": [{"group_by": ["dimension"], "aggregation": "average"}], "time": {"time_group": "average"}},
    });
    let body = serde_json::to_vec(&query).expect("json");
    let (status, answer) = server.post_json("/api/v3/data", &query);
    assert_eq!(status, 200, "{answer}");
    let size = serde_json::to_vec(&answer).expect("json").len();
    // Larger than what the kernel's socket buffers take from an unread
    // connection on loopback (a few MB): the rest waits in the server.
    assert!(size > 6 << 20, "a large answer: {size} bytes");
    // Asks and never reads, until the budget (48 MiB) is full.
    let ask = || {
        let mut s = TcpStream::connect(addr(&server)).expect("connect");
        let head = format!(
            "POST /api/v3/data HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            server.token,
            body.len()
        );
        s.write_all(head.as_bytes()).and_then(|_| s.write_all(&body)).expect("request");
        s
    };
    // Enough unread answers to fill the budget, asked at once.
    let mut unread: Vec<TcpStream> = (0..(56 << 20) / size + 1).map(|_| ask()).collect();
    let waiting =
        || server.get("/health").1["queries"]["answers_waiting_bytes"].as_u64().expect("answers_waiting_bytes");
    let deadline = Instant::now() + Duration::from_secs(20);
    while waiting() + size as u64 <= 48 << 20 {
        assert!(Instant::now() < deadline, "{} bytes of answers waiting", waiting());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, refused) = server.post_json("/api/v3/data", &query);
    assert_eq!(status, 503, "{refused}");
    let why = refused["error"].as_str().unwrap_or_default();
    assert!(why.contains("waiting for their clients to read them"), "{refused}");
    let (status, health) = server.get("/health");
    assert_eq!(status, 200, "small requests pass meanwhile: {health}");
    // The send timeout cuts every unread answer short.
    std::thread::sleep(Duration::from_secs(21));
    // (Those asked past the budget got their 503 whole.)
    let mut cut = 0;
    for (i, s) in unread.iter_mut().enumerate() {
        let (text, took) = read_until_close(s, Duration::from_secs(10));
        assert!(took < Duration::from_secs(9), "connection {i} still open after {took:?}");
        if text.starts_with("HTTP/1.1 503") {
            assert!(text.contains("waiting for their clients to read them"), "connection {i}: {text}");
            continue;
        }
        assert!(text.starts_with("HTTP/1.1 200"), "connection {i}: {}", &text[..text.len().min(80)]);
        assert!(text.len() < size, "connection {i} got its whole answer ({} of {size} bytes)", text.len());
        cut += 1;
    }
    assert!(cut * size >= (48 << 20) - size, "{cut} answers of {size} bytes were held and cut");
    let (status, v) = server.post_json("/api/v3/data", &query);
    assert_eq!(status, 200, "the budget is free again: {v}");
}

/// `--request-timeout` cuts a slow answer with a 504, but never an ingest
/// whose body has arrived: it is applied whatever the time, and answered
/// with what was written (a 504 would leave its client to guess whether a
/// stored batch needs sending again).
#[test]
fn an_ingest_past_the_request_timeout_is_answered_with_what_it_wrote() {
    const T: i64 = 1_700_000_000;
    let server = Server::start_with(TempDir::new("req-timeout"), Some(T + 100), &["--request-timeout", "1ms"]);
    let series: Vec<serde_json::Value> = (0..2_000)
        .map(|i| {
            let points: Vec<serde_json::Value> = (1..=20).map(|k| serde_json::json!([T + k, k])).collect();
            serde_json::json!({"node": "n", "context": "rt.c", "instance": format!("i{i}"), "dimension": "d", "points": points})
        })
        .collect();
    let (status, body) = server.post_json("/api/v1/ingest", &serde_json::json!({"series": series}));
    assert_eq!((status, body["accepted"].as_u64()), (200, Some(40_000)), "{body}");
    // The timeout holds elsewhere: a query of those 2,000 series takes
    // longer than a millisecond.
    let q = serde_json::json!({"scope": {"contexts": ["rt.c"]}, "window": {"after": T, "before": T + 20, "points": 20},
                               "aggregations": {"metrics": [{"group_by": ["instance"], "aggregation": "sum"}]}});
    let (status, body) = server.post_json("/api/v3/data", &q);
    assert_eq!(status, 504, "{body}");
}

/// What the HTTP layer refuses before any route sees it (README, "One
/// exception"): a request target past about 64 KiB is a 414, more than
/// 100 header fields a 431, a target with a raw `<` a 400; a compressed
/// body a 415 (the routes' body reader); the server serves others
/// afterwards.
#[test]
fn the_http_layer_refuses_oversized_targets_and_headers() {
    let server = Server::start_with(TempDir::new("httplimits"), None, &[]);
    let ask = |request: &[u8]| {
        let mut s = TcpStream::connect(addr(&server)).expect("connect");
        s.write_all(request).expect("request");
        read_until_close(&mut s, Duration::from_secs(10)).0
    };
    let long = format!("GET /api/v3/data?scope_contexts={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70 << 10));
    assert!(ask(long.as_bytes()).starts_with("HTTP/1.1 414"));
    let near = format!(
        "GET /api/v3/data?scope_contexts={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(60 << 10)
    );
    let text = ask(near.as_bytes());
    assert!(text.starts_with("HTTP/1.1 401"), "a 60 KiB target reaches the route: {}", &text[..text.len().min(200)]);
    let fields: String = (0..120).map(|i| format!("X-F{i}: v\r\n")).collect();
    let many = format!("GET /health HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
    assert!(ask(many.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(ask(b"GET /api/v3/data?x=<a> HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 400"));
    // A compressed body is a 415 naming its encoding, not "invalid JSON".
    let gz = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00];
    let head = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.token,
        gz.len()
    );
    let text = ask(&[head.as_bytes(), &gz[..]].concat());
    assert!(text.starts_with("HTTP/1.1 415") && text.contains("Content-Encoding 'gzip'"), "{text}");
    let (status, body) = server.get("/health");
    assert_eq!(status, 200, "{body}");
}
