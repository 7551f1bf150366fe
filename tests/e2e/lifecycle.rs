//! The server's life around its requests: a prompt, clean exit on SIGTERM
//! with keep-alive connections open, logging that can fail without taking
//! the server down, and a write-ahead log failure that `/health` reports.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{agent, call, sigterm_and_wait, Server, TempDir, BIN};

const NOW: i64 = 1_763_906_000;

/// Reads one HTTP/1.1 answer with a `Content-Length` body off `s`.
fn read_answer(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).expect("read the head"), 1, "closed mid-head: {got:?}");
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("read the body");
    head + &String::from_utf8_lossy(&body)
}

/// An idle keep-alive connection used to hold the exit for the whole grace
/// period (10 s) while the server went on answering requests on it.
#[test]
fn sigterm_closes_idle_keep_alive_connections_at_once() {
    let s = Server::start(Some(NOW));
    let mut idle = TcpStream::connect(s.base.trim_start_matches("http://")).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let answer = read_answer(&mut idle);
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(!answer.contains("connection: close"), "kept alive: {answer}");
    let (took, _dir) = s.stop_gracefully_timed();
    // The old bug held the exit for the 10 s grace period; the exit itself
    // writes a checkpoint, which a busy disk can stretch.
    assert!(took < Duration::from_secs(8), "SIGTERM took {took:?} with an idle connection open");
    // The server closed it rather than leaving it to the client.
    let mut rest = Vec::new();
    assert!(matches!(idle.read_to_end(&mut rest), Ok(0) | Err(_)), "{rest:?}");
}

/// An open SSE stream used to hold the exit for the whole grace period
/// (its response never ends): it now gets a `close` event naming the
/// shutdown, and the server exits promptly.
#[test]
fn sigterm_ends_open_sse_streams() {
    let s = Server::start(Some(NOW));
    let mut sse = TcpStream::connect(s.base.trim_start_matches("http://")).expect("connect");
    sse.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let ask = format!("GET /api/v1/stream/nodes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n", s.token);
    sse.write_all(ask.as_bytes()).expect("send");
    let mut lines = BufReader::new(sse);
    let mut seen = String::new();
    while !seen.contains("event: tick") {
        let mut line = String::new();
        assert!(lines.read_line(&mut line).expect("read") > 0, "closed before a tick: {seen}");
        seen.push_str(&line);
    }
    let stop = std::thread::spawn(move || s.stop_gracefully_timed().0);
    let mut rest = String::new();
    let _ = lines.read_to_string(&mut rest);
    let took = stop.join().expect("stopper");
    assert!(took < Duration::from_secs(8), "SIGTERM took {took:?} with an SSE stream open");
    assert!(rest.contains("event: close") && rest.contains("server shutting down"), "{rest}");
}

/// A free loopback port (for servers whose stderr says nothing).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn serve_args(dir: &TempDir, listen: &str) -> Vec<String> {
    let dir = dir.path.to_str().expect("UTF-8 path").to_string();
    [
        "serve",
        "--listen",
        listen,
        "--data-dir",
        &dir,
        "--no-demo",
        "--no-collector",
        "--rate-limit",
        "100000:100000",
        "--test-now",
        &NOW.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn health(base: &str) -> Option<(u16, Value)> {
    let r = call(&agent(), base, "GET", "/health", None, None);
    Some((r.status, r.json_opt()?))
}

/// Waits for `/health` on `listen` to answer 200; panics after 30 s.
fn wait_healthy(child: &mut Child, listen: &str) {
    let t = Instant::now();
    loop {
        if TcpStream::connect(listen).is_ok() {
            assert_eq!(health(&format!("http://{listen}")).map(|h| h.0), Some(200));
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("strata serve exited with {status} before it served /health");
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no /health within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server process that is killed if the test ends before it exits.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// With stderr on a full device every log line fails to write; the server
/// used to panic (exit 101) on the first of them, the admin token's notice.
#[test]
fn a_full_stderr_does_not_stop_the_server() {
    let _turn = crate::harness::shared_turn();
    let dir = TempDir::new("devfull");
    let listen = format!("127.0.0.1:{}", free_port());
    let full = std::fs::File::create("/dev/full").expect("/dev/full");
    let mut child = Proc(
        Command::new(BIN)
            .args(serve_args(&dir, &listen))
            .env_remove("STRATA_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(full))
            .spawn()
            .expect("spawn strata serve"),
    );
    wait_healthy(&mut child.0, &listen);
    assert!(dir.path.join("admin.token").exists());
    let (status, took) = sigterm_and_wait(&mut child.0, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "exit {status:?} after {took:?}");
}

/// Starts `cmd` (a `strata serve` with stderr piped) and reads its stderr
/// up to the `listening on` line; returns the base URL and the pipe.
fn started(cmd: &mut Command) -> (Proc, String, BufReader<std::process::ChildStderr>) {
    let mut child = Proc(
        cmd.env_remove("STRATA_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn"),
    );
    let mut err = BufReader::new(child.0.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).expect("read stderr") > 0, "stderr ended before 'listening on'");
        if let Some(pos) = line.find("listening on ") {
            let url = line[pos + "listening on ".len()..].split_whitespace().next().expect("url").to_string();
            return (child, url, err);
        }
    }
}

/// stderr a pipe whose reader has gone: the "shutting down" line fails
/// with EPIPE, which used to panic (exit 101, no final checkpoint).
#[test]
fn a_closed_stderr_pipe_does_not_spoil_the_shutdown() {
    let _turn = crate::harness::shared_turn();
    let dir = TempDir::new("epipe");
    let (mut child, base, err) = started(Command::new(BIN).args(serve_args(&dir, "127.0.0.1:0")));
    drop(err);
    let token = std::fs::read_to_string(dir.path.join("admin.token")).expect("token").trim().to_string();
    let body = serde_json::to_vec(&batch(0)).expect("json");
    let r = call(&agent(), &base, "POST", "/api/v1/ingest", Some(&format!("Bearer {token}")), Some(&body));
    assert_eq!(r.status, 200, "{}", r.text);
    let (status, took) = sigterm_and_wait(&mut child.0, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "exit {status:?} after {took:?}");
    // The clean stop left its checkpoint: the next start replays nothing.
    let s = Server::start_in(dir, Some(NOW));
    assert!(s.stderr_text().contains("replayed=0"), "{}", s.stderr_text());
}

/// One new series (`d{i}`) with the last 100 seconds: the WAL grows by a
/// record per batch while no span closes (nothing else is written).
fn batch(i: u64) -> Value {
    let points: Vec<Value> = (NOW - 99..=NOW).map(|t| json!([t, (t % 97) as f64])).collect();
    json!({"series": [{"node": "n", "context": "c.x", "instance": "i", "dimension": format!("d{i}"), "points": points}]})
}

/// A write the WAL cannot make (here: past the file size limit, EFBIG; a
/// full disk behaves the same and answers 507) stops ingest until a
/// restart. `/health` says so (503, `degraded`, a reason naming the
/// failure), the errors say to restart, and the restart recovers every
/// acknowledged batch.
#[test]
fn a_failed_wal_write_degrades_health_until_a_restart() {
    let _turn = crate::harness::shared_turn();
    let dir = TempDir::new("walfail");
    let args = serve_args(&dir, "127.0.0.1:0");
    // SIGXFSZ ignored (inherited through exec), so the write fails instead.
    let script = format!("trap '' XFSZ; exec prlimit --fsize={} -- \"$0\" \"$@\"", 32 << 10);
    let (mut child, base, err) = started(Command::new("sh").arg("-c").arg(script).arg(BIN).args(&args));
    std::thread::spawn(move || err.lines().count());
    let token = std::fs::read_to_string(dir.path.join("admin.token")).expect("token").trim().to_string();
    let bearer = format!("Bearer {token}");
    let a = agent();
    let ingest = |i: u64| {
        let body = serde_json::to_vec(&batch(i)).expect("json");
        call(&a, &base, "POST", "/api/v1/ingest", Some(&bearer), Some(&body))
    };
    let mut acked = 0;
    let first = loop {
        let r = ingest(acked);
        if r.status != 200 {
            break r;
        }
        acked += 1;
        assert!(acked < 1000, "the WAL never hit the size limit");
    };
    assert!(acked > 0, "nothing was acknowledged: {}", first.text);
    eprintln!("lifecycle: {acked} batches acknowledged before the WAL write failed");
    assert_eq!(first.status, 500, "{}", first.text);
    assert!(first.text.contains("WAL write failed"), "{}", first.text);
    let later = ingest(acked + 1);
    assert_eq!(later.status, 500, "{}", later.text);
    let body = later.json();
    assert!(body["error"].as_str().is_some_and(|e| e.contains("restart strata")), "{body}");
    assert!(body["hint"].as_str().is_some_and(|h| h.contains("restart strata")), "{body}");
    let (status, h) = health(&base).expect("health answers");
    assert_eq!(status, 503, "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    let reason = h["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("write on") && reason.contains("restart"), "{h}");
    assert_eq!(h["metrics"], json!(acked), "no refused batch was applied: {h}");
    // Queries still work while ingest cannot.
    let q = json!({"scope": {"contexts": ["c.x"]}, "window": {"after": NOW - 99, "before": NOW, "points": 1}});
    let r = call(&a, &base, "POST", "/api/v3/data", Some(&bearer), Some(&serde_json::to_vec(&q).expect("json")));
    assert_eq!(r.status, 200, "{}", r.text);
    let (status, _) = sigterm_and_wait(&mut child.0, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}");
    // Restarted without the limit: healthy, every acknowledged batch there,
    // and ingest works again.
    let s = Server::start_in(dir, Some(NOW));
    let (status, h) = s.get("/health");
    assert_eq!((status, h["status"].clone(), h["metrics"].clone()), (200, json!("ok"), json!(acked)), "{h}");
    assert_eq!(s.ingest_ok(&batch(acked)), (100, 0));
}

/// A checkpoint that cannot be written (here the snapshot directory is a
/// plain file; a full disk or a read-only data dir behave the same) makes
/// `/health` say `degraded`, naming it (a 200: a restart would not cure
/// it), while ingest and queries go on; once the cause is gone, the next
/// checkpoint succeeds and health is `ok` again. Before, health said `ok`
/// while every checkpoint failed and the WAL grew.
#[test]
fn a_failing_checkpoint_degrades_health_until_one_succeeds() {
    let hour0: i64 = 1_763_900_000 / 3600 * 3600;
    let s = Server::start_with(TempDir::new("ckptfail"), Some(hour0 + 3 * 3600), &[]);
    // Points up to `to`: past an hour's end by more than the late grace, which closes it.
    let upto = |from: i64, to: i64| {
        let points: Vec<Value> = (from..=to).map(|t| json!([t, (t % 97) as f64])).collect();
        json!({"series": [{"context": "c.ckpt", "dimension": "d", "points": points}]})
    };
    let health_until = |want: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, h) = s.get("/health");
            assert_eq!(status, 200, "{h}");
            if h["status"] == want {
                return h;
            }
            assert!(std::time::Instant::now() < deadline, "health stayed {h}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let meta = s.data_dir().join("meta");
    std::fs::remove_dir_all(&meta).ok();
    std::fs::write(&meta, b"not a directory").expect("sabotage");
    assert_eq!(s.ingest_ok(&upto(hour0 + 1, hour0 + 3600 + 400)), (3600 + 400, 0));
    let h = health_until("degraded");
    let reason = h["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("checkpoint failed") && reason.contains("grows"), "{h}");
    // Ingest and queries go on meanwhile.
    assert_eq!(s.ingest_ok(&upto(hour0 + 3600 + 401, hour0 + 3600 + 500)), (100, 0));
    let q = json!({"scope": {"contexts": ["c.ckpt"]}, "window": {"after": hour0, "before": hour0 + 3600, "points": 1}});
    assert_eq!(s.query_ok(&q)["result"]["data"].as_array().map(Vec::len), Some(1));
    // The cause fixed, the next hour's checkpoint succeeds. (Every ingest
    // meanwhile retries the checkpoint, which may create the dir first.)
    std::fs::remove_file(&meta).expect("undo");
    std::fs::create_dir_all(&meta).expect("meta");
    assert_eq!(s.ingest_ok(&upto(hour0 + 3600 + 501, hour0 + 7200 + 400)), (3600 - 100, 0));
    health_until("ok");
}
