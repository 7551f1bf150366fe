//! Live streams end to end: real WebSocket (tungstenite) and SSE (a raw
//! HTTP/1.1 client) readers against `strata serve` fed with live samples.
//! Ticks carry the values just ingested; an allowlisted token sees only its
//! nodes; `subscribe` narrows; revocation and expiry end a stream within a
//! second; a stalled reader is dropped while another keeps its ticks and
//! the server's memory stays bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

use crate::harness::{Auth, Server, TempDir};

const NODES: [&str; 3] = ["n1", "n2", "n3"];

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// The value every fed metric has at `t` (node, context, dimension known).
fn value(node: usize, dim: usize, t: i64) -> f64 {
    ((t % 1000) * 10 + node as i64 * 3 + dim as i64) as f64 / 4.0
}

const CHARTS: [(&str, &str, &[&str]); 5] = [
    ("system.cpu", "system.cpu", &["user", "system"]),
    ("system.load", "system.load", &["load1"]),
    ("net.net", "net.eth0", &["received", "sent"]),
    ("disk.io", "disk.sda", &["reads", "writes"]),
    ("apps.cpu", "apps.cpu", &["nginx"]),
];

fn batch(t: i64) -> Value {
    let mut series = Vec::new();
    for (ni, node) in NODES.iter().enumerate() {
        let mut d = 0;
        for (ctx, inst, dims) in CHARTS {
            for dim in dims {
                series.push(json!({"node": node, "context": ctx, "instance": inst, "dimension": dim,
                                   "units": "u", "points": [[t, value(ni, d, t)]]}));
                d += 1;
            }
        }
    }
    json!({"nodes": NODES.iter().map(|n| json!({"id": n, "hostname": format!("host-{n}")})).collect::<Vec<_>>(), "series": series})
}

/// Ingests the current second every 300 ms until `stop`.
fn feeder(s: &Server, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let (base, token) = (s.base.clone(), s.token.clone());
    std::thread::spawn(move || {
        let agent = crate::harness::agent();
        while !stop.load(Ordering::Relaxed) {
            let body = serde_json::to_vec(&batch(now())).expect("json");
            let r = crate::harness::call(
                &agent,
                &base,
                "POST",
                "/api/v1/ingest",
                Some(&format!("Bearer {token}")),
                Some(&body),
            );
            assert_eq!(r.status, 200, "feeding: {}", r.text);
            std::thread::sleep(Duration::from_millis(300));
        }
    })
}

/// Checks that every value of a tick is what was fed at the instance's `t`.
fn check_values(tick: &Value) -> usize {
    let mut checked = 0;
    for n in tick["nodes"].as_array().expect("nodes") {
        let ni = NODES.iter().position(|x| n["id"] == json!(x)).unwrap_or_else(|| panic!("unknown node {n}"));
        assert_eq!(n["online"], json!(true), "{n}");
        let mut d = 0;
        for (ctx, inst, dims) in CHARTS {
            for dim in dims {
                if let Some(iv) = n["contexts"][ctx]["instances"].get(inst) {
                    let t = iv["t"].as_i64().expect("t");
                    assert_eq!(iv["values"][dim].as_f64(), Some(value(ni, d, t)), "{} {ctx} {dim} at {t}", n["id"]);
                    checked += 1;
                }
                d += 1;
            }
        }
    }
    checked
}

fn token(s: &Server, scopes: &[&str], nodes: &[&str], ttl: Option<i64>) -> (String, String) {
    let mut b = json!({"name": format!("stream {scopes:?} {nodes:?}"), "scopes": scopes, "nodes": nodes});
    if let Some(t) = ttl {
        b["seconds_to_live"] = json!(t);
    }
    let (st, v) = s.post_json("/api/v1/tokens", &b);
    assert_eq!(st, 201, "{v}");
    (v["id"].as_str().expect("id").to_string(), v["token"].as_str().expect("token").to_string())
}

type Ws = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn ws_connect(s: &Server, path: &str, token: &str) -> Result<Ws, tungstenite::Error> {
    let url = format!("{}{path}", s.base.replacen("http", "ws", 1));
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert("Authorization", format!("Bearer {token}").parse().expect("header"));
    let (ws, _) = tungstenite::connect(req)?;
    if let tungstenite::stream::MaybeTlsStream::Plain(t) = ws.get_ref() {
        t.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    }
    Ok(ws)
}

/// The next JSON text message, or the close frame (code, reason).
fn ws_next(ws: &mut Ws) -> Result<Value, (u16, String)> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return Ok(serde_json::from_str(t.as_str()).expect("json message")),
            Ok(Message::Close(f)) => {
                return Err(f.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string())))
            }
            Ok(_) => {}
            Err(e) => return Err((0, e.to_string())),
        }
    }
}

/// A raw SSE reader.
struct Sse {
    r: BufReader<TcpStream>,
}

fn sse_connect(s: &Server, path: &str, token: &str) -> (u16, Sse) {
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut t = TcpStream::connect(&addr).expect("connect");
    t.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(
        t,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("write");
    let mut r = BufReader::new(t);
    let mut status_line = String::new();
    r.read_line(&mut status_line).expect("status line");
    let status: u16 = status_line.split(' ').nth(1).and_then(|x| x.parse().ok()).expect("status");
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header");
        if h == "\r\n" {
            break;
        }
    }
    (status, Sse { r })
}

impl Sse {
    /// The next event (name, JSON data); None at the end of the stream.
    fn next(&mut self) -> Option<(String, Value)> {
        let (mut event, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line == "0" {
                // The chunked body's last chunk: the response is over.
                return None;
            }
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                return Some((event, serde_json::from_str(&data).expect("event data is JSON")));
            }
            // Chunk-size lines of the chunked body are skipped.
        }
    }
}

fn ids(tick: &Value) -> Vec<String> {
    tick["nodes"].as_array().expect("nodes").iter().map(|n| n["id"].as_str().expect("id").to_string()).collect()
}

#[test]
fn streams_carry_latest_values_to_ws_and_sse_respect_allowlists_and_end_on_revocation() {
    let s = Server::start(None);
    s.ingest_ok(&batch(now()));
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feeder(&s, stop.clone());

    // Admin over WebSocket: three ticks a second apart, every value as fed.
    let mut ws = ws_connect(&s, "/api/v1/ws/nodes", &s.token).expect("ws connect");
    let mut seqs = Vec::new();
    let started = Instant::now();
    for _ in 0..3 {
        let tick = ws_next(&mut ws).expect("tick");
        assert_eq!(tick["type"], "tick");
        assert_eq!(ids(&tick), NODES, "{tick}");
        assert_eq!(check_values(&tick), 3 * 7, "default contexts carry cpu, load, net and disk: {tick}");
        assert!(tick["nodes"][0]["contexts"].get("apps.cpu").is_none(), "apps.cpu is not a default context");
        seqs.push(tick["seq"].as_u64().expect("seq"));
    }
    assert_eq!(seqs, [1, 2, 3]);
    let three = started.elapsed();
    assert!(three >= Duration::from_millis(1800) && three < Duration::from_secs(4), "3 ticks took {three:?}");
    // subscribe narrows to n2's load.
    ws.send(Message::Text(json!({"type": "subscribe", "contexts": "system.load", "nodes": ["n2"]}).to_string().into()))
        .expect("send");
    let mut narrowed = None;
    for _ in 0..4 {
        let m = ws_next(&mut ws).expect("message");
        if m["type"] == "tick" && ids(&m) == ["n2"] {
            narrowed = Some(m);
            break;
        }
    }
    let narrowed = narrowed.expect("a narrowed tick");
    let ctxs: Vec<&String> = narrowed["nodes"][0]["contexts"].as_object().expect("contexts").keys().collect();
    assert_eq!(ctxs, ["system.load"]);
    ws.send(Message::Text("{\"type\":\"nope\"}".into())).expect("send");
    let mut saw_error = false;
    for _ in 0..3 {
        if ws_next(&mut ws).expect("message")["type"] == "error" {
            saw_error = true;
            break;
        }
    }
    assert!(saw_error, "a bad message is answered with an error, the stream goes on");
    // A burst of messages (more than the tick queue holds) is answered
    // whole: the slow-consumer rule is for ticks that are not read.
    let sub = json!({"type": "subscribe", "contexts": "system.load"}).to_string();
    for _ in 0..50 {
        ws.send(Message::Text(sub.clone().into())).expect("send");
    }
    let mut answered = 0;
    while answered < 50 {
        let m = ws_next(&mut ws).unwrap_or_else(|e| panic!("after {answered} answers: {e:?}"));
        answered += usize::from(m["type"] == "subscribed");
    }
    let after_burst = loop {
        let m = ws_next(&mut ws).unwrap_or_else(|e| panic!("the stream goes on after the burst: {e:?}"));
        if m["type"] == "tick" {
            break m;
        }
    };
    assert_eq!(ids(&after_burst), NODES, "{after_burst}");
    // A message over 64 KiB ends the stream saying so (1009), not as the
    // client's own close.
    let mut big = ws_connect(&s, "/api/v1/ws/nodes", &s.token).expect("ws connect");
    big.send(Message::Text("x".repeat(70 << 10).into())).expect("send");
    let code = loop {
        match ws_next(&mut big) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(code.0, 1009, "{code:?}");

    // SSE with query-string patterns.
    let (status, mut sse) =
        sse_connect(&s, "/api/v1/stream/nodes?contexts=system.cpu,apps.*&nodes=host-n1,n3", &s.token);
    assert_eq!(status, 200);
    let (event, tick) = sse.next().expect("an SSE tick");
    assert_eq!(event, "tick");
    assert_eq!(ids(&tick), ["n1", "n3"]);
    assert!(check_values(&tick) >= 2 * 3);
    let keys: Vec<&String> = tick["nodes"][0]["contexts"].as_object().expect("contexts").keys().collect();
    assert_eq!(keys, ["apps.cpu", "system.cpu"]);

    // ticks=N ends cleanly.
    let (_, mut two) = sse_connect(&s, "/api/v1/stream/nodes?ticks=2", &s.token);
    let events: Vec<String> = std::iter::from_fn(|| two.next()).map(|(e, _)| e).collect();
    assert_eq!(events, ["tick", "tick", "close"]);

    // An allowlisted token never sees other nodes.
    let (_, only_n1) = token(&s, &["strata:stream:read"], &["n1"], None);
    let mut ws1 = ws_connect(&s, "/api/v1/ws/nodes?contexts=*", &only_n1).expect("ws");
    ws1.send(Message::Text(json!({"type": "subscribe", "nodes": "*", "contexts": "*"}).to_string().into()))
        .expect("send");
    let (_, mut sse1) = sse_connect(&s, "/api/v1/stream/nodes?nodes=*", &only_n1);
    for _ in 0..3 {
        let t = loop {
            let m = ws_next(&mut ws1).expect("tick");
            if m["type"] == "tick" {
                break m;
            }
        };
        assert_eq!(ids(&t), ["n1"], "{t}");
        let (_, t2) = sse1.next().expect("sse tick");
        assert_eq!(ids(&t2), ["n1"]);
        assert!(!t.to_string().contains("host-n2") && !t2.to_string().contains("n3"));
    }

    // Scope: a data-only token may not stream.
    let (_, data_only) = token(&s, &["strata:data:read"], &[], None);
    let refused = ws_connect(&s, "/api/v1/ws/nodes", &data_only).expect_err("403");
    assert!(matches!(&refused, tungstenite::Error::Http(r) if r.status() == 403), "{refused:?}");
    assert_eq!(sse_connect(&s, "/api/v1/stream/nodes", &data_only).0, 403);
    let plain = s.request("/api/v1/ws/nodes", Auth::Admin, None);
    assert_eq!(plain.status, 400, "a plain GET is told to upgrade: {}", plain.text);
    assert_eq!(s.request("/api/v1/stream/nodes?ticks=x", Auth::Admin, None).status, 400);
    assert_eq!(s.request("/api/v1/stream/nodes?nodes=%21", Auth::Admin, None).status, 400);

    // Revocation ends both streams within a second.
    let (rid, rtok) = token(&s, &["strata:stream:read"], &[], None);
    let mut wsr = ws_connect(&s, "/api/v1/ws/nodes", &rtok).expect("ws");
    let (_, mut sser) = sse_connect(&s, "/api/v1/stream/nodes", &rtok);
    ws_next(&mut wsr).expect("first tick");
    sser.next().expect("first sse tick");
    let revoked_at = Instant::now();
    let r = s.request(&format!("/api/v1/tokens/{rid}"), Auth::Admin, None);
    assert_eq!(r.status, 200);
    let del = crate::harness::call(
        &crate::harness::agent(),
        &s.base,
        "DELETE",
        &format!("/api/v1/tokens/{rid}"),
        Some(&format!("Bearer {}", s.token)),
        None,
    );
    assert_eq!(del.status, 200, "{}", del.text);
    let close = loop {
        match ws_next(&mut wsr) {
            Ok(_) => continue,
            Err(c) => break c,
        }
    };
    let ws_took = revoked_at.elapsed();
    assert_eq!(close, (1008, "token revoked".to_string()));
    let mut last = None;
    while let Some(e) = sser.next() {
        last = Some(e);
    }
    let sse_took = revoked_at.elapsed();
    assert_eq!(last.map(|(e, d)| (e, d["reason"].clone())), Some(("close".into(), json!("token revoked"))));
    assert!(ws_took < Duration::from_secs(1) && sse_took < Duration::from_secs(1), "ws {ws_took:?}, sse {sse_took:?}");
    eprintln!("stream end after revocation: ws {ws_took:?}, sse {sse_took:?}");

    // Expiry ends a stream too.
    let (_, short) = token(&s, &["strata:stream:read"], &[], Some(2));
    let born = Instant::now();
    let mut wse = ws_connect(&s, "/api/v1/ws/nodes", &short).expect("ws");
    let close = loop {
        match ws_next(&mut wse) {
            Ok(_) => continue,
            Err(c) => break c,
        }
    };
    assert_eq!(close, (1008, "token expired".to_string()));
    assert!(born.elapsed() < Duration::from_millis(3200), "expired stream lasted {:?}", born.elapsed());
    let _ = CloseCode::Normal;
    stop.store(true, Ordering::Relaxed);
    feed.join().expect("feeder");
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Many metrics at `t`: ticks of `contexts=*` are about 450 KB.
fn big_batch(t: i64) -> Vec<u8> {
    let mut s = String::from("{\"series\":[");
    for n in 0..100 {
        for m in 0..150 {
            if n + m > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"node\":\"big{n:03}\",\"context\":\"big.c{}\",\"instance\":\"big.i{}\",\"dimension\":\"dimension_{m:03}\",\"points\":[[{t},{}.5]]}}",
                m % 10,
                m % 30,
                n * 1000 + m
            ));
        }
    }
    s.push_str("]}");
    s.into_bytes()
}

#[test]
fn streams_drop_a_stalled_reader_keep_others_ticking_and_memory_bounded() {
    // Its ticks are 0.5 MB each, built on a timer: a neighbour's load would
    // stretch the gaps it measures.
    let _one_at_a_time = crate::harness::exclusive();
    let s = Server::start_with(TempDir::new("stall"), None, &["--stream-queue", "2"]);
    let load = |t: i64| {
        let r = s.request("/api/v1/ingest", Auth::Admin, Some(&big_batch(t)));
        assert_eq!(r.status, 200, "{}", r.snippet());
    };
    load(now());
    let path = "/api/v1/stream/nodes?contexts=*";
    // A healthy reader on the WebSocket, reading every tick on its own thread.
    let mut good = ws_connect(&s, "/api/v1/ws/nodes?contexts=*", &s.token).expect("ws");
    let first = ws_next(&mut good).expect("tick");
    let tick_bytes = first.to_string().len();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_reader = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut gaps = Vec::new();
        let mut last = Instant::now();
        while !stop_reader.load(Ordering::Relaxed) {
            match ws_next(&mut good) {
                Ok(_) => {
                    gaps.push(last.elapsed());
                    last = Instant::now();
                }
                Err(e) => panic!("the healthy reader was dropped: {e:?}"),
            }
        }
        gaps
    });
    let rss_before = rss_kib(s.pid());
    // Two stalled readers: they connect and never read.
    let (status, stalled_sse) = sse_connect(&s, path, &s.token);
    assert_eq!(status, 200);
    let stalled_ws = ws_connect(&s, "/api/v1/ws/nodes?contexts=*", &s.token).expect("ws");
    let mut peak = rss_before;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(25) {
        std::thread::sleep(Duration::from_millis(500));
        peak = peak.max(rss_kib(s.pid()));
    }
    stop.store(true, Ordering::Relaxed);
    let gaps = reader.join().expect("healthy reader");
    // The stalled SSE reader: what the sockets held, then the end.
    let mut r = stalled_sse.r;
    r.get_ref().set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut buf = Vec::new();
    let read = r.read_to_end(&mut buf);
    let sse_ticks = String::from_utf8_lossy(&buf).matches("event: tick").count();
    assert!(read.is_ok() || !buf.is_empty(), "{read:?}");
    assert!(sse_ticks < 25, "the stalled SSE reader kept getting ticks: {sse_ticks}");
    let mut ws = stalled_ws;
    let mut ws_ticks = 0;
    let end = loop {
        match ws_next(&mut ws) {
            Ok(_) => ws_ticks += 1,
            Err(e) => break e,
        }
    };
    assert!(ws_ticks < 25, "the stalled WebSocket reader kept getting ticks: {ws_ticks} ({end:?})");
    let growth_mib = peak.saturating_sub(rss_before) / 1024;
    eprintln!(
        "stalled readers: tick {tick_bytes} B, sse got {sse_ticks} ticks, ws got {ws_ticks} then {end:?}; rss {} -> peak {} MiB (+{growth_mib}); healthy reader {} ticks, max gap {:?}",
        rss_before / 1024,
        peak / 1024,
        gaps.len(),
        gaps.iter().max()
    );
    assert!(gaps.len() >= 20, "the healthy reader got {} ticks in 25 s", gaps.len());
    // The first gap includes the reader thread's start.
    assert!(gaps.iter().skip(1).all(|g| *g < Duration::from_millis(2500)), "healthy reader gaps: {gaps:?}");
    assert!(growth_mib < 64, "server RSS grew by {growth_mib} MiB with two stalled readers");
}

/// The next tick, skipping answers to client messages.
fn ws_tick(ws: &mut Ws) -> Value {
    loop {
        let m = ws_next(ws).unwrap_or_else(|e| panic!("waiting for a tick: {e:?}"));
        if m["type"] == "tick" {
            return m;
        }
    }
}

/// A client-to-server frame (FIN set, masked as clients must), with any
/// payload bytes: tungstenite will not send text that is not UTF-8.
fn raw_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126, "a short frame");
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

fn plain(ws: &mut Ws) -> &mut TcpStream {
    match ws.get_mut() {
        tungstenite::stream::MaybeTlsStream::Plain(t) => t,
        _ => panic!("the tests speak plain ws://"),
    }
}

/// Clients that vanish without a close frame (a reset with ticks still
/// unread, a bare TCP close) disturb no other subscriber, and the server
/// goes on taking new ones; a text frame that is not UTF-8 ends its stream
/// with 1007.
#[test]
fn streams_outlive_abrupt_disconnects_and_close_bad_text_with_1007() {
    let s = Server::start(None);
    s.ingest_ok(&batch(now()));
    let stop = Arc::new(AtomicBool::new(false));
    let feed = feeder(&s, stop.clone());
    let mut steady = ws_connect(&s, "/api/v1/ws/nodes", &s.token).expect("ws connect");
    let mut seq = ws_tick(&mut steady)["seq"].as_u64().expect("seq");

    // Reset: the client stops reading, a tick lands in its socket unread,
    // and closing it then makes the kernel send RST instead of FIN.
    let mut reset = ws_connect(&s, "/api/v1/ws/nodes", &s.token).expect("ws connect");
    ws_tick(&mut reset);
    std::thread::sleep(Duration::from_millis(1500));
    drop(reset);
    // A bare close: TCP FIN with no WebSocket close frame before it.
    let mut gone = ws_connect(&s, "/api/v1/ws/nodes", &s.token).expect("ws connect");
    ws_tick(&mut gone);
    plain(&mut gone).shutdown(std::net::Shutdown::Both).expect("shutdown");
    drop(gone);

    // The steady subscriber misses nothing: consecutive ticks, on time.
    let mut last = Instant::now();
    for _ in 0..4 {
        let tick = ws_tick(&mut steady);
        seq += 1;
        assert_eq!(tick["seq"], json!(seq), "{tick}");
        assert_eq!(ids(&tick), NODES, "{tick}");
        assert!(last.elapsed() < Duration::from_millis(2500), "a tick came {:?} after the last", last.elapsed());
        last = Instant::now();
    }
    // A later client subscribes and gets its ticks.
    let mut later = ws_connect(&s, "/api/v1/ws/nodes", &s.token).expect("a later client connects");
    later
        .send(Message::Text(
            json!({"type": "subscribe", "contexts": "system.load", "nodes": ["n3"]}).to_string().into(),
        ))
        .expect("send");
    let narrowed = (0..4).map(|_| ws_tick(&mut later)).find(|t| ids(t) == ["n3"]);
    let narrowed = narrowed.unwrap_or_else(|| panic!("the later client's subscription took no effect"));
    assert_eq!(check_values(&narrowed), 1, "{narrowed}");
    assert_eq!(s.request("/health", Auth::None, None).status, 200);

    // A text frame that is not UTF-8: closed with 1007, others unaffected.
    let mut bad = ws_connect(&s, "/api/v1/ws/nodes", &s.token).expect("ws connect");
    plain(&mut bad).write_all(&raw_frame(0x1, b"{\"type\":\"subscribe\xff\xfe\"}")).expect("write a raw frame");
    let end = loop {
        match ws_next(&mut bad) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(end.0, 1007, "{end:?}");
    let tick = ws_tick(&mut steady);
    assert!(tick["seq"].as_u64().is_some_and(|n| n > seq), "{tick}");
    assert_eq!(ids(&tick), NODES, "the steady subscriber still ticks: {tick}");
    stop.store(true, Ordering::Relaxed);
    feed.join().expect("feeder");
}

/// A handshake over a raw socket, for frames tungstenite would not let a
/// test send or read as they come.
fn raw_ws(s: &Server, path: &str) -> TcpStream {
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut t = TcpStream::connect(&addr).expect("connect");
    t.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {}\r\n\r\n",
        s.token
    );
    t.write_all(req.as_bytes()).expect("handshake");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        t.read_exact(&mut b).expect("101 head");
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    t
}

/// `ticks=N` sends N ticks, the last one too, before its close (1000,
/// "done"); a client message over 64 KiB gets its 1009 close over a
/// connection that ends cleanly, even when the client reads it late
/// (a reset would discard it).
#[test]
fn ws_ticks_n_sends_n_ticks_and_an_oversized_message_gets_its_close() {
    let s = Server::start(None);
    s.ingest_ok(&batch(now()));
    for n in [1usize, 2] {
        let mut ws = ws_connect(&s, &format!("/api/v1/ws/nodes?ticks={n}"), &s.token).expect("ws connect");
        let mut ticks = 0;
        let end = loop {
            match ws_next(&mut ws) {
                Ok(m) if m["type"] == "tick" => ticks += 1,
                Ok(m) => panic!("unexpected {m}"),
                Err(e) => break e,
            }
        };
        assert_eq!((ticks, end), (n, (1000, "done".to_string())), "ticks={n}");
    }
    // Text and binary (opcodes 1 and 2), just over the limit and well over.
    for (opcode, size) in [(0x81u8, (64 << 10) + 1), (0x81, 200 << 10), (0x82, (64 << 10) + 1)] {
        let mut t = raw_ws(&s, "/api/v1/ws/nodes");
        let mut frame = vec![opcode, 0x80 | 127];
        frame.extend_from_slice(&(size as u64).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend(std::iter::repeat_n(b'x', size));
        t.write_all(&frame).expect("send the message");
        // Read late: the server has closed its side by then.
        std::thread::sleep(Duration::from_millis(300));
        let mut got = Vec::new();
        let read = t.read_to_end(&mut got);
        // Frames back: ticks (text) may come first; the close is last.
        let mut at = 0;
        let mut close = None;
        while at + 2 <= got.len() {
            let (op, len7) = (got[at] & 0x0f, (got[at + 1] & 0x7f) as usize);
            let (len, off) = match len7 {
                126 => (u16::from_be_bytes([got[at + 2], got[at + 3]]) as usize, 4),
                127 => (u64::from_be_bytes(got[at + 2..at + 10].try_into().expect("8 bytes")) as usize, 10),
                n => (n, 2),
            };
            assert!(close.is_none(), "a frame after the close frame ({size} B)");
            if op == 8 {
                close = got.get(at + off..at + off + len).map(|p| p.to_vec());
            }
            at += off + len;
        }
        assert_eq!(at, got.len(), "whole frames only ({size} B)");
        let close = close.unwrap_or_else(|| panic!("no close frame for {size} B ({read:?}, {} B back)", got.len()));
        assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1009, "{}", String::from_utf8_lossy(&close[2..]));
        assert!(read.is_ok(), "the connection ends with FIN, not a reset: {read:?}");
    }
}

/// A client that starts the closing handshake gets the server's close
/// frame back (RFC 6455 5.5.1) before the connection ends, not a bare TCP
/// close (its client would report 1006, an abnormal closure).
#[test]
fn a_client_close_gets_a_close_frame_back() {
    let s = Server::start(None);
    s.ingest_ok(&batch(now()));
    let mut ws = ws_connect(&s, "/api/v1/ws/nodes", &s.token).expect("ws connect");
    ws_tick(&mut ws);
    ws.close(Some(tungstenite::protocol::CloseFrame { code: CloseCode::Normal, reason: "bye".into() }))
        .expect("send close");
    let reply = loop {
        match ws.read() {
            Ok(Message::Close(f)) => break Ok(f),
            Ok(_) => continue,
            Err(e) => break Err(e.to_string()),
        }
    };
    let code = reply.as_ref().map(|f| f.as_ref().map(|f| u16::from(f.code)));
    assert_eq!(code, Ok(Some(1000)), "{reply:?}");
}

/// A handshake in a WebSocket version the server does not speak is a 426
/// naming version 13 (RFC 6455 4.4); an empty `ticks=` is the default (no
/// end), as empty `contexts=` and `nodes=` are.
#[test]
fn a_wrong_websocket_version_is_a_426_and_an_empty_ticks_the_default() {
    let s = Server::start(None);
    s.ingest_ok(&batch(now()));
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut t = TcpStream::connect(&addr).expect("connect");
    t.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let req = format!(
        "GET /api/v1/ws/nodes HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\
         Authorization: Bearer {}\r\nConnection: close\r\n\r\n",
        s.token
    );
    t.write_all(req.as_bytes()).expect("handshake");
    let mut head = [0u8; 512];
    let n = t.read(&mut head).expect("answer");
    let text = String::from_utf8_lossy(&head[..n]).to_lowercase();
    assert!(text.starts_with("http/1.1 426"), "{text}");
    assert!(text.contains("sec-websocket-version: 13"), "{text}");
    let mut ws = ws_connect(&s, "/api/v1/ws/nodes?ticks=&nodes=", &s.token).expect("empty ticks connects");
    assert_eq!(ws_tick(&mut ws)["type"], "tick");
}

/// Connections of one view share each second's snapshot, yet every
/// second gets a fresh one: with the engine's clock pinned (one engine
/// second forever), a sample ingested between ticks shows in a later tick
/// on both connections, and two connections' ticks agree.
#[test]
fn shared_ticks_refresh_every_second_under_a_pinned_clock() {
    let pinned = now() - 100;
    let s = Server::start_with(TempDir::new("shared-ticks"), Some(pinned), &[]);
    let one = |t: i64, v: f64| {
        json!({"series": [{"node": "n1", "context": "system.cpu", "instance": "system.cpu", "dimension": "user",
                           "points": [[t, v]]}]})
    };
    s.ingest_ok(&one(pinned - 10, 1.5));
    let path = "/api/v1/ws/nodes?contexts=system.cpu";
    let mut a = ws_connect(&s, path, &s.token).expect("ws a");
    let mut b = ws_connect(&s, path, &s.token).expect("ws b");
    let user =
        |tick: &Value| tick["nodes"][0]["contexts"]["system.cpu"]["instances"]["system.cpu"]["values"]["user"].as_f64();
    assert_eq!(user(&ws_next(&mut a).expect("tick")), Some(1.5));
    assert_eq!(user(&ws_next(&mut b).expect("tick")), Some(1.5));
    s.ingest_ok(&one(pinned - 9, 2.5));
    // Within a few ticks both see it (each tick a second apart).
    for ws in [&mut a, &mut b] {
        let seen = (0..4).map(|_| ws_next(ws).expect("tick")).find(|t| user(t) == Some(2.5));
        let tick = seen.expect("the new sample within four ticks");
        assert_eq!(tick["t"], json!(pinned), "the engine's time");
    }
}
