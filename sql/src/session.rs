//! Running a statement: a per-request `SessionContext` (strata's tables,
//! functions and pushdown rule, bound to the caller's allowlist), on the
//! SQL surface's own small tokio runtime so a heavy statement never stalls
//! the HTTP server's workers, with the limits applied as the answer is
//! collected (rows, time) and encoded (bytes).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryLimit, MemoryPool, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use futures_util::StreamExt;
use strata_engine::index::SimplePattern;
use strata_engine::Engine;

use crate::error::SqlError;
use crate::functions;
use crate::nd_query::{self, NdQuery};
use crate::pushdown::BucketPushdown;
use crate::tables::metrics::MetricsTable;
use crate::tables::samples::SamplesTable;
use crate::tables::schema::Tier;
use crate::tables::Source;

/// Limits of one statement.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits { max_rows: 100_000, max_bytes: 64 << 20, timeout: Duration::from_secs(60) }
    }
}

/// A collected answer.
#[derive(Debug, Clone)]
pub struct SqlAnswer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
}

/// The SQL surface of one engine.
pub struct SqlEngine {
    engine: Arc<Engine>,
    /// Dropped with `shutdown_background` (see `Drop`), so dropping the
    /// engine inside another runtime cannot panic.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pub limits: SqlLimits,
    /// Whether per-bucket aggregates go through the engine ([`crate::pushdown`]).
    pub pushdown: bool,
    threads: usize,
}

impl SqlEngine {
    pub fn new(engine: Arc<Engine>, limits: SqlLimits) -> Result<Self, SqlError> {
        let threads = engine.config().limits.threads.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("strata-sql")
            .thread_stack_size(crate::complexity::STACK_BYTES)
            .enable_all()
            .build()
            .map_err(|e| SqlError::Internal(format!("starting the SQL runtime: {e}")))?;
        let handle = runtime.handle().clone();
        Ok(SqlEngine { engine, runtime: Some(runtime), handle, limits, pushdown: true, threads })
    }

    /// A session for one caller: `allow` is its node allowlist.
    pub fn context(&self, allow: Option<SimplePattern>, cancel: Arc<AtomicBool>) -> Result<SessionContext, SqlError> {
        self.context_holding(allow, cancel, Box::new(()))
    }

    /// [`SqlEngine::context`], whose memory pool keeps `held` until the
    /// last piece of work that can reserve memory is gone.
    fn context_holding(
        &self,
        allow: Option<SimplePattern>,
        cancel: Arc<AtomicBool>,
        held: Box<dyn std::any::Any + Send>,
    ) -> Result<SessionContext, SqlError> {
        let src = Source { engine: self.engine.clone(), allow, cancel };
        let config = SessionConfig::new()
            .with_target_partitions(self.threads)
            .with_information_schema(true)
            .with_default_catalog_and_schema("strata", "public");
        // DataFusion's operators that buffer (joins, sorts, DISTINCT,
        // grouping) reserve their memory from this pool: one statement
        // gets the query memory limit (`--query-memory`), past which it
        // fails with a 400 naming the limit rather than grow the server;
        // nothing spills to temporary files.
        let memory = self.engine.config().limits.max_memory_bytes;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(HeldPool {
                inner: GreedyMemoryPool::new(usize::try_from(memory).unwrap_or(usize::MAX)),
                _held: std::sync::Mutex::new(held),
            }))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled))
            .build_arc()?;
        let mut builder =
            SessionStateBuilder::new().with_config(config).with_runtime_env(runtime).with_default_features();
        if self.pushdown {
            builder = builder.with_optimizer_rule(Arc::new(BucketPushdown::new(src.clone())));
        }
        let ctx = SessionContext::new_with_state(builder.build());
        for tier in [Tier::Raw, Tier::Minute, Tier::Hour] {
            ctx.register_table(tier.table(), Arc::new(SamplesTable::new(src.clone(), tier)))?;
        }
        ctx.register_table("metrics", Arc::new(MetricsTable::new(src.clone())))?;
        for f in functions::aggregates() {
            ctx.register_udaf(f);
        }
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::from(functions::NdBucket::new()));
        ctx.register_udtf(nd_query::NAME, Arc::new(NdQuery::new(src)));
        Ok(ctx)
    }

    /// Runs `sql` for a caller with node allowlist `allow`; `cancel` stops it.
    pub async fn run(
        &self,
        sql: &str,
        allow: Option<SimplePattern>,
        cancel: Arc<AtomicBool>,
    ) -> Result<SqlAnswer, SqlError> {
        self.run_holding(sql, allow, cancel, ()).await
    }

    /// [`SqlEngine::run`], holding `held` (a query slot) until the work
    /// itself ends, not only until this future does. DataFusion stops a
    /// statement only where an operator yields: a cross join's batch can
    /// compute for seconds after a timeout, a disconnect or a revocation,
    /// in tasks of its own, and that work keeps its slot, so abandoned
    /// statements cannot pile up past the server's concurrency limit.
    pub async fn run_holding<H: Send + 'static>(
        &self,
        sql: &str,
        allow: Option<SimplePattern>,
        cancel: Arc<AtomicBool>,
        held: H,
    ) -> Result<SqlAnswer, SqlError> {
        crate::complexity::check(sql)?;
        // What the caller holds (its query slot) lives in the statement's
        // memory pool: every piece of its work (the main task and the
        // tasks DataFusion spawns for partitions, joins, repartitions)
        // keeps the pool through its task context or reservations.
        let ctx = self.context_holding(allow, cancel.clone(), Box::new(held))?;
        let limits = self.limits;
        let sql = sql.to_string();
        let stop = cancel.clone();
        let work = self.handle.spawn(async move {
            let opts = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
            let df = ctx.sql_with_options(&sql, opts).await.map_err(|e| match SqlError::from(e) {
                SqlError::Invalid(m)
                    if ["DDL not supported", "DML not supported", "Statement not supported"]
                        .iter()
                        .any(|p| m.contains(p)) =>
                {
                    SqlError::NotAQuery(m)
                }
                e => e,
            })?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let mut stream = df.execute_stream().await?;
            let (mut batches, mut rows) = (Vec::new(), 0usize);
            while let Some(b) = stream.next().await {
                if stop.load(Ordering::Relaxed) {
                    return Err(SqlError::Cancelled);
                }
                let b = b?;
                rows += b.num_rows();
                if rows > limits.max_rows {
                    return Err(SqlError::TooManyRows { limit: limits.max_rows });
                }
                if b.num_rows() > 0 {
                    batches.push(b);
                }
            }
            Ok(SqlAnswer { schema, batches, rows })
        });
        let abort = work.abort_handle();
        // The work stops when this future is dropped (client gone) too.
        let _guard = AbortOnDrop(abort.clone());
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
            }
        };
        tokio::select! {
            r = work => r.map_err(|e| if e.is_cancelled() { SqlError::Cancelled } else { SqlError::Internal(format!("SQL task failed: {e}")) })?,
            _ = tokio::time::sleep(limits.timeout) => {
                cancel.store(true, Ordering::Relaxed);
                Err(SqlError::Timeout { timeout_ms: limits.timeout.as_millis() as u64 })
            }
            _ = watch => Err(SqlError::Cancelled),
        }
    }

    /// [`SqlEngine::run`] from synchronous code (the CLI, tests, benches).
    pub fn run_blocking(&self, sql: &str, allow: Option<SimplePattern>) -> Result<SqlAnswer, SqlError> {
        let cancel = Arc::new(AtomicBool::new(false));
        self.handle.block_on(self.run(sql, allow, cancel))
    }
}

impl Drop for SqlEngine {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A statement's memory pool, which also keeps what the statement holds
/// (its query slot) until DataFusion drops the pool with the last piece of
/// the statement's work.
struct HeldPool {
    inner: GreedyMemoryPool,
    _held: std::sync::Mutex<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for HeldPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldPool").field("inner", &self.inner).finish()
    }
}

impl std::fmt::Display for HeldPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.inner, f)
    }
}

impl MemoryPool for HeldPool {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn register(&self, consumer: &datafusion::execution::memory_pool::MemoryConsumer) {
        self.inner.register(consumer)
    }
    fn unregister(&self, consumer: &datafusion::execution::memory_pool::MemoryConsumer) {
        self.inner.unregister(consumer)
    }
    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional)
    }
    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }
    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> datafusion::error::Result<()> {
        self.inner.try_grow(reservation, additional)
    }
    fn reserved(&self) -> usize {
        self.inner.reserved()
    }
    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
