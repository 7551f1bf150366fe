//! Starts a real `strata serve` on a free port with a fresh data dir, and
//! talks to it over HTTP with the admin token.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Held by tests that load the machine or time the server (load, memory,
/// stalled streams): while one holds it, no other test's [`Server`] runs, so
/// its timing and memory figures are its own, not a neighbour's. Every
/// `Server` takes a shared turn (see [`shared_turn`]).
pub fn exclusive() -> Exclusive {
    let mut g = GATE.state.lock().unwrap_or_else(|p| p.into_inner());
    while g.writer || g.readers > 0 {
        g = GATE.freed.wait(g).unwrap_or_else(|p| p.into_inner());
    }
    g.writer = true;
    HOLDS_EXCLUSIVE.with(|h| h.set(true));
    Exclusive(std::marker::PhantomData)
}

/// The machine to oneself; see [`exclusive`]. Released on drop, on the
/// thread that took it (not `Send`: the flag it clears is that thread's).
pub struct Exclusive(std::marker::PhantomData<*const ()>);

impl Drop for Exclusive {
    fn drop(&mut self) {
        HOLDS_EXCLUSIVE.with(|h| h.set(false));
        GATE.state.lock().unwrap_or_else(|p| p.into_inner()).writer = false;
        GATE.freed.notify_all();
    }
}

/// A turn shared with other ordinary tests, held by each [`Server`]. It waits
/// only while an exclusive test runs; a waiting exclusive test does not
/// block it (a test may start a second server while one waits, and waiting
/// then would deadlock), so exclusive tests may wait until the ordinary
/// ones thin out. `None` on the exclusive test's own thread. Tests that
/// start `strata` without a [`Server`] hold one too.
pub fn shared_turn() -> Option<SharedTurn> {
    if HOLDS_EXCLUSIVE.with(|h| h.get()) {
        return None;
    }
    let mut g = GATE.state.lock().unwrap_or_else(|p| p.into_inner());
    let start = Instant::now();
    while g.writer {
        // An exclusive test runs for a minute or two; waiting far longer
        // means its own server was started on another thread (which would
        // wait for it forever).
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "waited 15 min for an exclusive test: start its servers on its own thread"
        );
        g = GATE.freed.wait_timeout(g, Duration::from_secs(1)).unwrap_or_else(|p| p.into_inner()).0;
    }
    g.readers += 1;
    Some(SharedTurn(()))
}

pub struct SharedTurn(());

impl Drop for SharedTurn {
    fn drop(&mut self) {
        GATE.state.lock().unwrap_or_else(|p| p.into_inner()).readers -= 1;
        GATE.freed.notify_all();
    }
}

struct GateState {
    writer: bool,
    readers: usize,
}

struct Gate {
    state: Mutex<GateState>,
    freed: std::sync::Condvar,
}

static GATE: Gate =
    Gate { state: Mutex::new(GateState { writer: false, readers: 0 }), freed: std::sync::Condvar::new() };

thread_local! {
    static HOLDS_EXCLUSIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The strata binary built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_strata");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, unique directory under the system temp dir; removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("strata-e2e-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a temp dir for the test");
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Which bearer token to send.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    Admin,
    None,
    /// Sent verbatim as the whole `Authorization` header value.
    Header(&'a str),
}

/// An HTTP answer: status, selected headers and the raw body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub www_authenticate: Option<String>,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub connection: Option<String>,
    pub allow: Option<String>,
    pub text: String,
}

impl Resp {
    /// Status, the headers tests check, and the body (lossy UTF-8).
    pub fn from_http(mut resp: ureq::http::Response<ureq::Body>) -> Result<Resp, String> {
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (www_authenticate, retry_after) = (header("www-authenticate"), header("retry-after"));
        let (content_type, connection, allow) = (header("content-type"), header("connection"), header("allow"));
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(512 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| format!("status {status}, but reading the body failed: {e}"))?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Resp { status, www_authenticate, retry_after, content_type, connection, allow, text })
    }

    /// The body as JSON; panics (naming the body) when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response (status {}) is not JSON ({e}): {}", self.status, self.text))
    }

    pub fn json_opt(&self) -> Option<Value> {
        serde_json::from_str(&self.text).ok()
    }

    /// The body, cut short for failure messages.
    pub fn snippet(&self) -> String {
        let mut s: String = self.text.chars().take(300).collect();
        if s.len() < self.text.len() {
            s.push('…');
        }
        s
    }
}

/// One request with any method; `authorization` is the whole header value
/// (None = no header); a body is sent as JSON.
pub fn call(
    a: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<&[u8]>,
) -> Resp {
    let url = format!("{base}{path}");
    let res = match method {
        "GET" | "DELETE" => {
            let mut r = if method == "GET" { a.get(&url) } else { a.delete(&url) };
            if let Some(h) = authorization {
                r = r.header("Authorization", h);
            }
            r.call()
        }
        "POST" => {
            let mut r = a.post(&url).header("Content-Type", "application/json");
            if let Some(h) = authorization {
                r = r.header("Authorization", h);
            }
            r.send(body.unwrap_or_default())
        }
        other => panic!("unsupported method {other}"),
    };
    let resp = res.unwrap_or_else(|e| panic!("HTTP {method} {url} failed: {e}"));
    Resp::from_http(resp).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

pub struct Server {
    child: Child,
    dir: Option<TempDir>,
    pub base: String,
    pub token: String,
    pub stderr: Arc<Mutex<Vec<String>>>,
    agent: ureq::Agent,
    /// Declared last: released after the child is stopped in `Drop`.
    _turn: Option<SharedTurn>,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

impl Server {
    /// `strata serve` on 127.0.0.1:0, no demo, no collector, the engine
    /// clock pinned to `test_now` when given.
    pub fn start(test_now: Option<i64>) -> Server {
        Server::start_in(TempDir::new("serve"), test_now)
    }

    /// Like [`Server::start`] on an existing data dir (e.g. for a restart).
    pub fn start_in(dir: TempDir, test_now: Option<i64>) -> Server {
        Server::start_with(dir, test_now, &[])
    }

    /// Like [`Server::start_in`] with extra `serve` flags.
    pub fn start_with(dir: TempDir, test_now: Option<i64>, extra: &[&str]) -> Server {
        Server::launch(dir, test_now, extra, false)
    }

    /// `strata serve --demo` (three nodes of Netdata-like charts with
    /// history in every tier, loaded relative to `test_now`) plus `extra`.
    pub fn start_demo(dir: TempDir, test_now: i64, extra: &[&str]) -> Server {
        Server::launch(dir, Some(test_now), extra, true)
    }

    fn launch(dir: TempDir, test_now: Option<i64>, extra: &[&str], demo: bool) -> Server {
        let turn = shared_turn();
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path.to_str().expect("temp dir path is UTF-8"),
            if demo { "--demo" } else { "--no-demo" },
            "--no-collector",
            // Tests fire hundreds of requests; rate limits have their own tests.
            "--rate-limit",
            "100000:100000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        if let Some(t) = test_now {
            args.push("--test-now".into());
            args.push(t.to_string());
        }
        let mut child = Command::new(BIN)
            .args(&args)
            .env_remove("STRATA_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning strata serve");
        let stderr = child.stderr.take().expect("child stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    // http:// or https:// (with --tls-cert).
                    if let Some(pos) = line.find("listening on http") {
                        let rest = &line[pos + "listening on ".len()..];
                        let url: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(url);
                        }
                    }
                    lines.lock().expect("stderr lines lock").push(line);
                }
            });
        }
        // The demo history takes ~20 s to load in a debug build.
        let base = match rx.recv_timeout(Duration::from_secs(if demo { 180 } else { 30 })) {
            Ok(url) => url,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                let got = lines.lock().expect("stderr lines lock").join("\n");
                panic!("strata serve did not report 'listening on' ({e:?}); stderr so far:\n{got}");
            }
        };
        let token = std::fs::read_to_string(dir.path.join("admin.token"))
            .expect("admin.token written on first start")
            .trim()
            .to_string();
        assert!(!token.is_empty(), "admin.token is empty");
        Server { child, dir: Some(dir), base, token, stderr: lines, agent: agent(), _turn: turn }
    }

    /// The server's process id (memory checks read /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A raw connection to the server, with the head of a `POST
    /// /api/v1/ingest` declaring `len` body bytes of `content_type` already
    /// sent: for bodies no HTTP client would send (oversized, cut short).
    pub fn raw_ingest(&self, content_type: &str, len: usize) -> std::net::TcpStream {
        use std::io::Write;
        let addr = self.base.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        let head = format!(
            "POST /api/v1/ingest HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n",
            self.token
        );
        conn.write_all(head.as_bytes()).expect("send the head");
        conn
    }

    /// Everything the server wrote on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().expect("stderr lines lock").join("\n")
    }

    fn auth_value(&self, auth: Auth) -> Option<String> {
        match auth {
            Auth::Admin => Some(format!("Bearer {}", self.token)),
            Auth::None => None,
            Auth::Header(h) => Some(h.to_string()),
        }
    }

    /// A raw request. `body` = None sends a GET, Some a POST.
    pub fn request(&self, path: &str, auth: Auth, body: Option<&[u8]>) -> Resp {
        let method = if body.is_some() { "POST" } else { "GET" };
        call(&self.agent, &self.base, method, path, self.auth_value(auth).as_deref(), body)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_json_auth(path, body, Auth::Admin)
    }

    pub fn post_json_auth(&self, path: &str, body: &Value, auth: Auth) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).expect("encoding a JSON body");
        let r = self.request(path, auth, Some(&bytes));
        (r.status, r.json())
    }

    pub fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let r = self.request(path, Auth::Admin, Some(body));
        (r.status, r.json())
    }

    pub fn get(&self, path_and_query: &str) -> (u16, Value) {
        self.get_auth(path_and_query, Auth::Admin)
    }

    pub fn get_auth(&self, path_and_query: &str, auth: Auth) -> (u16, Value) {
        let r = self.request(path_and_query, auth, None);
        (r.status, r.json())
    }

    /// POST /api/v1/ingest; panics unless 200; returns (accepted, rejected_late).
    pub fn ingest_ok(&self, batch: &Value) -> (u64, u64) {
        let (status, body) = self.post_json("/api/v1/ingest", batch);
        assert_eq!(status, 200, "ingest failed: {body}");
        let accepted = body["accepted"].as_u64().unwrap_or_else(|| panic!("no 'accepted' in {body}"));
        let late = body["rejected_late"].as_u64().unwrap_or_else(|| panic!("no 'rejected_late' in {body}"));
        (accepted, late)
    }

    /// POST /api/v3/data; panics unless 200.
    pub fn query_ok(&self, body: &Value) -> Value {
        let (status, resp) = self.post_json("/api/v3/data", body);
        assert_eq!(status, 200, "query {body} failed: {resp}");
        resp
    }

    /// The server's Cloud-style space id (`GET /api/v2/spaces`).
    pub fn space_id(&self) -> String {
        let (status, v) = self.get("/api/v2/spaces");
        assert_eq!(status, 200, "spaces: {v}");
        v[0]["id"].as_str().unwrap_or_else(|| panic!("no space id in {v}")).to_string()
    }

    /// The room data route of the `All nodes` room.
    pub fn room_data_path(&self) -> String {
        format!("/api/v3/spaces/{}/rooms/all-nodes/data", self.space_id())
    }

    /// The server's resident memory in KiB: (VmRSS, RssAnon, RssFile).
    pub fn rss_kib(&self) -> (u64, u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .and_then(|l| l[k.len()..].split_whitespace().next().and_then(|v| v.parse().ok()))
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
    }

    /// Waits (up to 60 s) until the background work of every acknowledged
    /// ingest is on disk: closed hours laid out and their checkpoints
    /// written (`/health` reads the follow-ups before the checkpoints).
    pub fn settle(&self) {
        let start = Instant::now();
        loop {
            let (status, h) = self.get("/health");
            assert_eq!(status, 200, "{h}");
            if h["ingest_followups_pending"] == 0 && h["checkpoints_pending"] == 0 {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "background work still pending after 60 s: {h}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir.as_ref().expect("the server owns its data dir").path
    }

    /// Stops the server and hands back its data dir (kept on disk).
    pub fn stop(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().expect("the server owns its data dir")
    }
}

impl Server {
    /// Stops the server the way an operator does (SIGTERM), waits for it to
    /// exit on its own, and hands back its data dir.
    pub fn stop_gracefully(self) -> TempDir {
        self.stop_gracefully_timed().1
    }

    /// [`Server::stop_gracefully`], also saying how long the exit took.
    pub fn stop_gracefully_timed(mut self) -> (Duration, TempDir) {
        let (status, took) = sigterm_and_wait(&mut self.child, Duration::from_secs(30));
        match status {
            Some(s) => assert!(s.success(), "the server exited with {s} on SIGTERM:\n{}", self.stderr_text()),
            None => panic!("the server did not stop within 30 s of SIGTERM"),
        }
        (took, self.dir.take().expect("the server owns its data dir"))
    }
}

/// Sends SIGTERM to `child` and waits up to `limit` for it to exit: its
/// exit status (`None` if it is still running) and how long it took.
pub fn sigterm_and_wait(child: &mut Child, limit: Duration) -> (Option<std::process::ExitStatus>, Duration) {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
    assert!(sent.success(), "kill -TERM {pid} failed");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the server") {
            return (Some(status), start.elapsed());
        }
        if start.elapsed() >= limit {
            return (None, start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Numbers as the server rounds them (7 decimals): relative 1e-6, absolute 1e-7.
pub fn approx_eq(a: f64, b: f64) -> bool {
    let diff = (a - b).abs();
    diff <= 1e-7 || diff <= 1e-6 * a.abs().max(b.abs())
}

/// Runs the `strata` CLI with no `STRATA_*` variables from the caller's
/// environment (they would change flag defaults), optional stdin.
pub fn run_cli(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let _turn = shared_turn();
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("STRATA_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning strata {args:?}: {e}"));
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("piped stdin");
        w.write_all(input).expect("writing stdin");
    }
    child.wait_with_output().expect("waiting for strata")
}

/// Exit code, stdout and stderr of a CLI run, for failure messages.
pub fn describe(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
