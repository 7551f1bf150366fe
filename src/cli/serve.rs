//! `strata serve`: the engine, the HTTP API, the local collector and (on a
//! fresh data dir) the demo history.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use strata_engine::demo::{self, DemoHistory, GenSpec};
use strata_engine::meta::RoomDef;
use strata_engine::model::machine_guid_for;
use strata_engine::persist::PersistOptions;
use strata_engine::storage::segment_file::Compression;
use strata_engine::wal::{SyncPolicy, WalOptions};
use strata_engine::{Clock, Engine, EngineConfig};
use strata_server::admission::{Admission, AdmissionLimits};
use strata_server::auth::{Auth, TokenStore};
use strata_server::{AgentInfo, AppParts, BodyLimits, ServeOptions};

use crate::collector::{hostname, HostCollector};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, env = "STRATA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory: WAL, tier files, snapshots, tokens (see the README).
    #[arg(long, env = "STRATA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Load the deterministic demo history (default on a fresh data dir).
    #[arg(long, env = "STRATA_DEMO", conflicts_with = "no_demo")]
    pub demo: bool,
    /// Do not load the demo history.
    #[arg(long, env = "STRATA_NO_DEMO")]
    pub no_demo: bool,
    /// Do not collect this host's own metrics.
    #[arg(long, env = "STRATA_NO_COLLECTOR")]
    pub no_collector: bool,
    /// TOML config file; flags override it. Keys: listen, data_dir, demo, collector, space_name, [[rooms]].
    #[arg(long, env = "STRATA_CONFIG")]
    pub config: Option<PathBuf>,
    /// How many storage tiers to use (1 = per-second only, 3 = also per-minute and per-hour).
    #[arg(long, env = "STRATA_STORAGE_TIERS", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub storage_tiers: u8,
    /// How long tier 0 (per-second) data is kept, e.g. 14d, 36h, 90m.
    #[arg(long, env = "STRATA_RETENTION_TIER0", default_value = "14d", value_parser = parse_duration)]
    pub retention_tier0: i64,
    /// How long tier 1 (per-minute) data is kept.
    #[arg(long, env = "STRATA_RETENTION_TIER1", default_value = "90d", value_parser = parse_duration)]
    pub retention_tier1: i64,
    /// How long tier 2 (per-hour) data is kept.
    #[arg(long, env = "STRATA_RETENTION_TIER2", default_value = "730d", value_parser = parse_duration)]
    pub retention_tier2: i64,
    /// How far (in data time, not wall time) samples may reach into a new one-hour
    /// tier-0 span before the previous one closes: until then batches from other
    /// clients that are a little behind are written, not counted late. Once
    /// both the data and the server clock reach this far into the new hour,
    /// the old hour closes for every series of its update_every (0 = close
    /// at once).
    #[arg(long, env = "STRATA_LATE_GRACE", default_value = "5m", value_parser = parse_grace)]
    pub late_grace: i64,
    /// Refuse ingested samples more than this far ahead of the server clock
    /// (a 400 naming the point). Samples less far ahead are kept, and close
    /// no hour before the server clock passes it.
    #[arg(long, env = "STRATA_MAX_FUTURE", default_value = "10m", value_parser = parse_duration)]
    pub max_future: i64,
    /// Let requests without a token read data and metadata (a local,
    /// agent-style setup). Never covers ingest or token management.
    #[arg(long, env = "STRATA_ANONYMOUS_READ")]
    pub anonymous_read: bool,
    /// Requests per second and burst per token (tokens may carry their own).
    #[arg(long, env = "STRATA_RATE_LIMIT", default_value = "50:100")]
    pub rate_limit: strata_server::auth::store::RateLimit,
    /// A client must send its request headers within this (slow-loris guard).
    #[arg(long, env = "STRATA_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_std_duration)]
    pub header_timeout: Duration,
    /// A request body must arrive within this (408 otherwise).
    #[arg(long, env = "STRATA_BODY_TIMEOUT", default_value = "60s", value_parser = parse_std_duration)]
    pub body_timeout: Duration,
    /// Every request must be answered within this (504 otherwise), but an
    /// ingest whose body has arrived: it is applied, and answered with what
    /// was written, however long that takes.
    #[arg(long, env = "STRATA_REQUEST_TIMEOUT", default_value = "120s", value_parser = parse_std_duration)]
    pub request_timeout: Duration,
    /// A client must take each answer (each stream message) whole within this of its
    /// first byte; a client that reads too slowly or not at all is disconnected.
    #[arg(long, env = "STRATA_SEND_TIMEOUT", default_value = "60s", value_parser = parse_std_duration)]
    pub send_timeout: Duration,
    /// When an acknowledged batch is safe: `always` (fsync before the answer; loses
    /// nothing) or `interval:<ms>` (fsync every ms; a power loss can lose that much).
    #[arg(long, env = "STRATA_FSYNC", default_value = "always")]
    pub fsync: SyncPolicy,
    /// Compression of sealed tier files: none, lz4 or zstd (none reads zero-copy).
    #[arg(long, env = "STRATA_COMPRESSION", default_value = "none")]
    pub compression: Compression,
    /// Most disk bytes of sealed tier-0 files (e.g. 10GiB); the oldest spans go first.
    #[arg(long, env = "STRATA_MAX_DISK_TIER0", value_parser = parse_size)]
    pub max_disk_tier0: Option<u64>,
    /// Most disk bytes of sealed tier-1 files.
    #[arg(long, env = "STRATA_MAX_DISK_TIER1", value_parser = parse_size)]
    pub max_disk_tier1: Option<u64>,
    /// Most disk bytes of sealed tier-2 files.
    #[arg(long, env = "STRATA_MAX_DISK_TIER2", value_parser = parse_size)]
    pub max_disk_tier2: Option<u64>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "STRATA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "STRATA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Name of the Cloud-style space (what `GET /api/v2/spaces` calls it).
    #[arg(long, env = "STRATA_SPACE_NAME")]
    pub space_name: Option<String>,
    /// Every query ends (504) after this, unless its own `timeout` is shorter; 0 = no limit.
    #[arg(long, env = "STRATA_QUERY_TIMEOUT", default_value = "60s", value_parser = parse_duration_or_zero)]
    pub query_timeout: i64,
    /// Most memory one query may plan to use (estimated before it runs; over it, a 400).
    #[arg(long, env = "STRATA_QUERY_MEMORY", default_value = "1GiB", value_parser = parse_size)]
    pub query_memory: u64,
    /// Most rows one SQL statement may return (`POST /api/v1/sql`, `--features sql`); over it, a 400.
    #[arg(long, env = "STRATA_SQL_MAX_ROWS", default_value_t = 100_000)]
    pub sql_max_rows: usize,
    /// Most bytes one SQL answer may take once encoded; over it, a 400.
    #[arg(long, env = "STRATA_SQL_MAX_BYTES", default_value = "64MiB", value_parser = parse_size)]
    pub sql_max_bytes: u64,
    /// Most metrics one query may touch (selected, plus hidden ones of percentages); over it, a 400.
    #[arg(long, env = "STRATA_MAX_QUERY_METRICS", default_value_t = 200_000)]
    pub max_query_metrics: u64,
    /// Queries running at once (default: 2 per core); more wait in a short queue, then get 503.
    #[arg(long, env = "STRATA_MAX_QUERIES", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_queries: Option<u32>,
    /// Heavy queries (over 10 M samples or 100,000 values) running at once (default: half the
    /// query slots, at most all but one): the other slots stay free for light queries.
    #[arg(long, env = "STRATA_MAX_HEAVY_QUERIES", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_heavy_queries: Option<u32>,
    /// Queries that may wait for a slot (default: 32 per core); past that, 503 at once.
    #[arg(long, env = "STRATA_QUERY_QUEUE", value_parser = clap::value_parser!(u32).range(0..=65536))]
    pub query_queue: Option<u32>,
    /// How long a queued query waits for a slot before its 503.
    #[arg(long, env = "STRATA_QUERY_QUEUE_WAIT", default_value = "2s", value_parser = parse_std_duration)]
    pub query_queue_wait: Duration,
    /// Open connections at most; further ones get a 503.
    #[arg(long, env = "STRATA_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Most series the server holds; a batch that would create more is refused whole.
    #[arg(long, env = "STRATA_MAX_SERIES", default_value_t = strata_engine::engine::DEFAULT_MAX_SERIES)]
    pub max_series: u64,
    /// New series a token may create per hour, for tokens without their own limit (default: unlimited).
    #[arg(long, env = "STRATA_MAX_NEW_SERIES_PER_HOUR")]
    pub max_new_series_per_hour: Option<u64>,
    /// Contexts the live streams carry when a subscriber names none (a simple
    /// pattern, words split on `,` or `|`).
    #[arg(long, env = "STRATA_STREAM_CONTEXTS", default_value = "system.cpu,system.ram,system.load,net.net,disk.io")]
    pub stream_contexts: String,
    /// Ticks a stream connection may have unwritten before it is dropped as a slow consumer.
    #[arg(long, env = "STRATA_STREAM_QUEUE", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub stream_queue: u16,
    /// Bytes of ticks a stream connection may have unwritten before it is dropped as a slow consumer (a single larger tick still goes into an empty queue).
    #[arg(long, env = "STRATA_STREAM_QUEUE_BYTES", default_value = "16MiB", value_parser = parse_size)]
    pub stream_queue_bytes: u64,
    /// A browser origin allowed to call /mcp besides the server's own (repeatable), e.g. http://localhost:6274.
    #[arg(long = "mcp-allowed-origin", env = "STRATA_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub mcp_allowed_origins: Vec<String>,
    /// An MCP tool call longer than this ends as a tool error.
    #[arg(long, env = "STRATA_MCP_CALL_TIMEOUT", default_value = "10s", value_parser = parse_std_duration)]
    pub mcp_call_timeout: Duration,
    /// Test-only: pin the engine's clock to this epoch second.
    #[arg(long, env = "STRATA_TEST_NOW", hide = true)]
    pub test_now: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    demo: Option<bool>,
    collector: Option<bool>,
    space_name: Option<String>,
    /// `[[rooms]]` tables: `name`, `nodes = [patterns]`, `host_labels = ["key:value"]`.
    #[serde(default)]
    rooms: Vec<RoomDef>,
}

fn load_config(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config {}: {e}", path.display()))
}

/// `14d`, `36h`, `90m`, `3600s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'd')) => (&s[..i], 86_400),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 's')) => (&s[..i], 1),
        _ => (s, 1),
    };
    let n: i64 = num.trim().parse().map_err(|_| format!("'{s}' is not a duration (use e.g. 14d, 36h, 90m, 3600s)"))?;
    if n <= 0 {
        return Err(format!("'{s}' must be positive"));
    }
    n.checked_mul(mult).ok_or_else(|| format!("'{s}' is too long"))
}

/// Like [`parse_duration`], also `0`; at most one hour (one tier-0 span).
fn parse_grace(s: &str) -> Result<i64, String> {
    let secs = if s.trim() == "0" { 0 } else { parse_duration(s)? };
    if secs > 3600 {
        return Err(format!("'{s}' is longer than a tier-0 span (1h)"));
    }
    Ok(secs)
}

/// `10GiB`, `500MiB`, `64KiB`, `2GB`, or plain bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let units: [(&str, u64); 8] = [
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("TiB", 1 << 40),
        ("GB", 1_000_000_000),
        ("MB", 1_000_000),
        ("KB", 1000),
        ("B", 1),
    ];
    let (num, mult) = units.iter().find_map(|(u, m)| t.strip_suffix(u).map(|n| (n, *m))).unwrap_or((t, 1));
    let n: f64 = num.trim().parse().map_err(|_| format!("'{s}' is not a size (use e.g. 10GiB, 500MiB)"))?;
    if n.is_nan() || n <= 0.0 {
        return Err(format!("'{s}' must be positive"));
    }
    Ok((n * mult as f64) as u64)
}

/// Like [`parse_duration`], also `0` (no limit).
fn parse_duration_or_zero(s: &str) -> Result<i64, String> {
    if s.trim() == "0" {
        Ok(0)
    } else {
        parse_duration(s)
    }
}

/// A duration flag: `500ms`, or whole seconds and up as [`parse_duration`] reads them.
fn parse_std_duration(s: &str) -> Result<Duration, String> {
    match s.strip_suffix("ms") {
        Some(n) => n
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("'{s}' is not a duration (use e.g. 500ms, 90s, 2m)")),
        None => parse_duration(s).map(|n| Duration::from_secs(n as u64)),
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn run(a: ServeArgs) -> Result<(), String> {
    // A log line that cannot be written (stderr full, or a pipe whose
    // reader is gone) is dropped: the subscriber's fallback would report
    // it with `eprintln!`, which panics on that same failure.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let file = match &a.config {
        Some(p) => load_config(p)?,
        None => FileConfig::default(),
    };
    let listen = a.listen.or(file.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 19999)));
    let data_dir = a.data_dir.or(file.data_dir).unwrap_or_else(super::default_data_dir);
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("creating data dir {}: {e}", data_dir.display()))?;
    let collector_on = !a.no_collector && file.collector.unwrap_or(true);

    let clock = match a.test_now {
        Some(t) => Clock::Fixed(AtomicI64::new(t)),
        None => Clock::System,
    };
    let host = hostname();
    let mut config = EngineConfig {
        default_node: host.clone(),
        max_future_secs: Some(a.max_future),
        max_series: a.max_series,
        ..EngineConfig::default()
    };
    config.limits.tiers = usize::from(a.storage_tiers);
    config.limits.timeout_ms = a.query_timeout as u64 * 1000;
    config.limits.max_memory_bytes = a.query_memory;
    config.limits.max_metrics = a.max_query_metrics;
    config.storage.late_grace_secs = a.late_grace;
    for (tier, secs) in [a.retention_tier0, a.retention_tier1, a.retention_tier2].into_iter().enumerate() {
        config.storage.tiers[tier].retention_secs = secs;
    }
    let opts = PersistOptions {
        dir: data_dir.clone(),
        wal: WalOptions { sync: a.fsync, ..WalOptions::default() },
        compression: a.compression,
        max_disk: [a.max_disk_tier0, a.max_disk_tier1, a.max_disk_tier2],
    };
    let started = std::time::Instant::now();
    let (engine, rec) = Engine::open(config, clock, &opts).map_err(|e| match e.kind() {
        strata_engine::ErrorKind::StorageFull => format!(
            "{e}\nhint: the disk holding {} is full; free space there and start again (every acknowledged \
             batch is in the write-ahead log and is replayed then)",
            opts.dir.display()
        ),
        _ => e.to_string(),
    })?;
    tracing::info!(
        fresh = rec.fresh,
        snapshot_lsn = rec.snapshot_lsn,
        segments = rec.segments,
        segment_bytes = rec.segment_bytes,
        replayed = rec.replayed_records,
        wal_truncated_bytes = rec.wal_truncated_bytes,
        quarantined = rec.quarantined.len(),
        secs = started.elapsed().as_secs_f64(),
        "storage recovered"
    );
    for (path, reason) in &rec.quarantined {
        tracing::error!(file = %path.display(), %reason, "segment quarantined");
    }
    for path in &rec.open_missing {
        tracing::error!(
            file = %path.display(),
            "an open-span file the snapshot lists is missing: the data of its hours not yet sealed is lost"
        );
    }
    let engine = Arc::new(engine);
    let space_name = a.space_name.clone().or(file.space_name.clone()).unwrap_or_else(|| "strata".into());
    let cloud = strata_server::cloud::Cloud::open(Some(&data_dir), &space_name, &file.rooms)?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(strata_server::tls::acceptor(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let demo_on = if a.no_demo { false } else { a.demo || file.demo.unwrap_or(rec.fresh) };
    let (tokens, created) = TokenStore::open(&data_dir, now_secs()).map_err(|e| e.to_string())?;
    if let Some(t) = created {
        // Not `eprintln!`, which panics when stderr cannot be written; the
        // token is in the file either way.
        let _ = writeln!(
            std::io::stderr(),
            "admin token (shown once, also saved to {}): {t}",
            data_dir.join("admin.token").display()
        );
    }
    let stream_contexts = strata_engine::index::SimplePattern::parse_get(&a.stream_contexts)
        .map_err(|e| format!("--stream-contexts: {e}"))?;
    let demo_spec = GenSpec::DEMO;
    if demo_on {
        let started = std::time::Instant::now();
        let (samples, rollups) =
            demo::load(&engine, &demo_spec, &DemoHistory::default(), engine.now(), |m| tracing::info!("{m}"))
                .map_err(|e| format!("loading demo data: {e}"))?;
        engine.checkpoint().map_err(|e| format!("saving demo data: {e}"))?;
        tracing::info!(samples, rollups, secs = started.elapsed().as_secs_f64(), "demo history loaded");
    }
    let state = AppParts {
        engine: engine.clone(),
        auth: Arc::new(Auth {
            tokens,
            limiter: Default::default(),
            inflight: Default::default(),
            mcp_limiter: strata_server::auth::WindowLimiter::mcp(),
            mcp_calls: Default::default(),
            anonymous_read: a.anonymous_read,
            default_rate: a.rate_limit,
            default_new_series: a.max_new_series_per_hour,
            series_budget: Default::default(),
        }),
        agent: Arc::new(AgentInfo {
            machine_guid: machine_guid_for(&host),
            hostname: host.clone(),
            version: env!("CARGO_PKG_VERSION"),
        }),
        limits: BodyLimits {
            read_timeout: a.body_timeout,
            request_timeout: a.request_timeout,
            ..BodyLimits::default()
        },
        cloud: Arc::new(cloud),
        admission: Arc::new(Admission::new({
            let d = AdmissionLimits::default();
            AdmissionLimits {
                running: a.max_queries.map_or(d.running, |n| n as usize),
                queued: a.query_queue.map_or(d.queued, |n| n as usize),
                wait: a.query_queue_wait,
                heavy: a.max_heavy_queries.map(|n| n as usize),
            }
        })),
        stream: strata_server::StreamConfig {
            contexts: stream_contexts,
            queue: usize::from(a.stream_queue),
            queue_bytes: usize::try_from(a.stream_queue_bytes).unwrap_or(usize::MAX),
            ..Default::default()
        },
        mcp: strata_server::McpConfig {
            allowed_origins: a.mcp_allowed_origins.clone(),
            call_timeout: a.mcp_call_timeout,
            loopback_port: None,
            tls: tls.is_some(),
        },
        sql: sql_engine(&engine, a.query_timeout, a.sql_max_rows, a.sql_max_bytes)?,
        // Answers waiting for slow readers share the per-query memory bound.
        unsent: strata_server::unsent::Unsent::new(a.query_memory),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting runtime: {e}"))?;
    let engine_for_exit = engine.clone();
    let auth = state.auth.clone();
    let auth_for_exit = state.auth.clone();
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("binding {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut state = state;
        state.mcp.loopback_port = addr.ip().is_loopback().then_some(addr.port());
        if collector_on || demo_on {
            tokio::spawn(live_feed(engine.clone(), collector_on.then(|| host.clone()), demo_on.then_some(demo_spec)));
        }
        tokio::spawn(flush_token_usage(auth));
        let shutdown = shutdown_signals()?;
        tracing::info!("listening on {scheme}://{addr}");
        let opts = ServeOptions {
            header_read: a.header_timeout,
            send: a.send_timeout,
            max_connections: a.max_connections as usize,
            tls,
        };
        strata_server::serve(listener, state, opts, shutdown).await.map_err(|e| format!("server: {e}"))
    });
    if let Err(e) = auth_for_exit.tokens.flush_usage() {
        tracing::warn!(error = %e, "tokens' last use was not saved");
    }
    // A clean stop leaves a checkpoint, so the next start replays nothing.
    if let Err(e) = engine_for_exit.checkpoint() {
        tracing::warn!(error = %e, "final checkpoint failed; the WAL still holds everything");
    }
    served
}

/// Saves tokens' `last_used_*` every [`USAGE_FLUSH`] when they changed, so a
/// crash loses at most that much of it (a clean stop saves it too).
async fn flush_token_usage(auth: Arc<Auth>) {
    let mut tick = tokio::time::interval(USAGE_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let a = auth.clone();
        match tokio::task::spawn_blocking(move || a.tokens.flush_usage()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "tokens' last use was not saved"),
            Err(e) => tracing::warn!(error = %e, "token usage task failed"),
        }
    }
}

const USAGE_FLUSH: Duration = Duration::from_secs(30);

/// Once a second: the host's own metrics, and the demo nodes' next values.
/// Reading /proc and ingesting both block, so both run on a blocking thread.
async fn live_feed(engine: Arc<Engine>, host: Option<String>, demo: Option<GenSpec>) {
    let mut collector = host.map(|h| HostCollector::new(h, PathBuf::from("/proc")));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_demo = engine.now();
    loop {
        tick.tick().await;
        let now = now_secs();
        let mut batches = Vec::new();
        if let Some(spec) = demo {
            let t = engine.now();
            for s in (last_demo + 1)..=t {
                batches.push(demo::tick(&spec, s));
            }
            last_demo = last_demo.max(t);
        }
        let e = engine.clone();
        let mut c = collector.take();
        let res = tokio::task::spawn_blocking(move || {
            if let Some(c) = c.as_mut() {
                batches.push(c.collect(now));
            }
            (c, batches.iter().map(|b| e.ingest(b)).collect::<Result<Vec<_>, _>>())
        })
        .await;
        match res {
            Ok((c, r)) => {
                collector = c;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "live metrics were not ingested");
                }
            }
            Err(e) => tracing::warn!(error = %e, "live metrics task failed"),
        }
    }
}

/// Installs the SIGINT and SIGTERM handlers now and returns the future that
/// completes on either. They must be in place before "listening on" is
/// logged: a supervisor (or a test) may signal as soon as it reads that line,
/// and a signal that arrives before its handler exists kills the process with
/// the default action instead of stopping it cleanly.
fn shutdown_signals() -> Result<impl std::future::Future<Output = ()> + Send + 'static, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("installing the SIGINT handler: {e}"))?;
        let mut term = signal(SignalKind::terminate()).map_err(|e| format!("installing the SIGTERM handler: {e}"))?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            tracing::info!("shutting down");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
    }
}

/// The SQL surface, in builds with `--features sql`.
#[cfg(feature = "sql")]
fn sql_engine(
    engine: &Arc<Engine>,
    query_timeout: i64,
    max_rows: usize,
    max_bytes: u64,
) -> Result<Option<Arc<strata_server::state::SqlEngine>>, String> {
    let timeout = match query_timeout {
        0 => Duration::from_secs(86_400),
        s => Duration::from_secs(s as u64),
    };
    let limits =
        strata_sql::SqlLimits { max_rows, max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX), timeout };
    let sql = strata_sql::SqlEngine::new(engine.clone(), limits).map_err(|e| e.to_string())?;
    Ok(Some(Arc::new(sql)))
}

#[cfg(not(feature = "sql"))]
fn sql_engine(
    _engine: &Arc<Engine>,
    _query_timeout: i64,
    _max_rows: usize,
    _max_bytes: u64,
) -> Result<Option<Arc<strata_server::state::SqlEngine>>, String> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_std_duration};
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("14d"), Ok(14 * 86_400));
        assert_eq!(parse_duration("36h"), Ok(36 * 3600));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_std_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_std_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_std_duration("fastms").is_err());
        assert_eq!(super::parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(super::parse_size("1.5MiB"), Ok(1_572_864));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert!(super::parse_size("lots").is_err());
    }
}
