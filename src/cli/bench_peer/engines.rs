//! Starting and stopping the engines under test, each on a free loopback
//! port with its own temp data dir: strata (this very binary, `serve`),
//! VictoriaMetrics (`victoria-metrics`) and Prometheus (`prometheus`, with
//! `promtool` for the backfill), the last two only when on PATH.
//!
//! Invariant: every child is registered while it runs, so a normal end, an
//! error (drop) and Ctrl-C (the handler) all kill it; nothing outlives us.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Pids of running children, and the temp root, for the Ctrl-C handler.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static ROOT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// On Ctrl-C (or SIGTERM): kill every child, remove the temp root, exit 130.
pub fn install_interrupt_handler(root: &Path) {
    if let Ok(mut r) = ROOT.lock() {
        *r = Some(root.to_path_buf());
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return eprintln!("bench-peer: cannot watch for Ctrl-C ({e}); an interrupt may leave engines running")
        }
    };
    // Registered here, before any child starts, so no signal can slip past.
    let _guard = rt.enter();
    let (term, int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    };
    let (mut term, mut int) = match (term, int) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            return eprintln!("bench-peer: cannot watch for Ctrl-C ({e}); an interrupt may leave engines running")
        }
    };
    drop(_guard);
    std::thread::spawn(move || {
        rt.block_on(async {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        });
        eprintln!("bench-peer: interrupted; stopping the engines");
        for pid in LIVE.lock().map(|l| l.clone()).unwrap_or_default() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        if let Some(root) = ROOT.lock().ok().and_then(|r| r.clone()) {
            let _ = std::fs::remove_dir_all(root);
        }
        std::process::exit(130);
    });
}

/// A running engine process.
pub struct Proc {
    pub name: &'static str,
    child: Child,
    pub base: String,
    pub data: PathBuf,
    /// Bearer token (strata only).
    pub token: Option<String>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn register(child: Child, name: &'static str, base: String, data: PathBuf, token: Option<String>) -> Proc {
        if let Ok(mut l) = LIVE.lock() {
            l.push(child.id());
        }
        Proc { name, child, base, data, token }
    }

    /// SIGTERM, then wait (up to `grace`) for a clean exit; SIGKILL after.
    pub fn stop_gracefully(mut self, grace: Duration) -> Result<(), String> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("{} exited with {status} on SIGTERM", self.name)),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Err(format!("{} did not stop within {} s of SIGTERM", self.name, grace.as_secs()))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(mut l) = LIVE.lock() {
            l.retain(|&p| p != self.child.id());
        }
    }
}

/// The first `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("finding a free port: {e}"))
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File, String> {
    let p = dir.join(format!("{name}.log"));
    std::fs::File::create(&p).map_err(|e| format!("creating {}: {e}", p.display()))
}

/// Polls `url` until it answers 200 (or the child dies, or `limit` passes).
fn wait_ready(p: &mut Proc, url: &str, limit: Duration) -> Result<(), String> {
    let agent = super::http::agent(Duration::from_secs(2));
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = p.child.try_wait() {
            return Err(format!(
                "{} exited with {status} while starting (see its log in {})",
                p.name,
                p.data.display()
            ));
        }
        if agent.get(url).call().is_ok_and(|r| r.status() == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{} did not become ready at {url} within {} s", p.name, limit.as_secs()))
}

/// `strata serve` (this binary) on a fresh or existing data dir: no demo, no
/// collector, no rate limit (the harness is the only client).
pub fn start_strata(data: &Path) -> Result<Proc, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding the strata binary: {e}"))?;
    std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--no-demo", "--no-collector", "--rate-limit", "1000000:1000000"])
        .arg("--data-dir")
        .arg(data)
        .env("STRATA_LOG", "warn,strata=info,strata_server=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("STRATA_") && k != "STRATA_LOG") {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().map_err(|e| format!("starting strata serve: {e}"))?;
    let stderr = child.stderr.take().ok_or("strata serve has no stderr pipe")?;
    let mut p = Proc::register(child, "strata", String::new(), data.to_path_buf(), None);
    let (tx, rx) = mpsc::channel();
    let log = log_file(data.parent().unwrap_or(data), "strata")?;
    std::thread::spawn(move || {
        use std::io::Write;
        let mut log = log;
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(pos) = line.find("listening on http://") {
                let url: String = line[pos + 13..].chars().take_while(|c| !c.is_whitespace()).collect();
                if let Some(tx) = tx.take() {
                    let _ = tx.send(url);
                }
            }
            let _ = writeln!(log, "{line}");
        }
    });
    p.base = rx.recv_timeout(Duration::from_secs(120)).map_err(|_| "strata serve did not start within 120 s")?;
    let tok = std::fs::read_to_string(data.join("admin.token")).map_err(|e| format!("reading admin.token: {e}"))?;
    p.token = Some(tok.trim().to_string());
    Ok(p)
}

/// VictoriaMetrics single-node, query cache off, no latency offset (the
/// data is in the past anyway), long query limit for the 24 h scans.
pub fn start_vm(bin: &Path, root: &Path) -> Result<Proc, String> {
    let data = root.join("vm-data");
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("-storageDataPath={}", data.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .args(["-retentionPeriod=1y", "-search.latencyOffset=0s", "-search.disableCache"])
        .args(["-search.maxQueryDuration=600s", "-search.maxSamplesPerQuery=10000000000", "-loggerLevel=ERROR"]);
    spawn_peer(cmd, "VictoriaMetrics", root, port, data, "/health", Duration::from_secs(60))
}

/// Starts a peer logging into `root`, waits until `ready` answers 200.
fn spawn_peer(
    mut cmd: Command,
    name: &'static str,
    root: &Path,
    port: u16,
    data: PathBuf,
    ready: &str,
    limit: Duration,
) -> Result<Proc, String> {
    let log = name.to_lowercase();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log_file(root, &log)?)
        .stderr(log_file(root, &format!("{log}.err"))?)
        .spawn()
        .map_err(|e| format!("starting {name}: {e}"))?;
    let base = format!("http://127.0.0.1:{port}");
    let mut p = Proc::register(child, name, base.clone(), data, None);
    wait_ready(&mut p, &format!("{base}{ready}"), limit)?;
    Ok(p)
}

/// Prometheus with no scrape targets over a backfilled TSDB; the sample
/// limit is raised so 24 h of 1,000 series fits one query.
pub fn start_prometheus(bin: &Path, root: &Path, tsdb: &Path) -> Result<Proc, String> {
    let cfg = root.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").map_err(|e| format!("writing {}: {e}", cfg.display()))?;
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(["--storage.tsdb.retention.time=3650d", "--query.max-samples=2000000000", "--query.timeout=10m"])
        .args(["--log.level=error"]);
    spawn_peer(cmd, "Prometheus", root, port, tsdb.to_path_buf(), "/-/ready", Duration::from_secs(300))
}

/// Runs a command to completion, registered like the engines, returning its
/// pid to the `watch` callback (memory sampling) before waiting.
pub fn run_tool(cmd: &mut Command, name: &'static str, watch: impl FnOnce(u32)) -> Result<(), String> {
    let child = cmd.stdin(Stdio::null()).spawn().map_err(|e| format!("starting {name}: {e}"))?;
    let mut p = Proc::register(child, name, String::new(), PathBuf::new(), None);
    watch(p.pid());
    let status = p.child.wait().map_err(|e| format!("waiting for {name}: {e}"))?;
    if !status.success() {
        return Err(format!("{name} failed with {status}"));
    }
    Ok(())
}
