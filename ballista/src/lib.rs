//! Ballista scheduler and executor processes with strata's SQL functions
//! (`nd_median`, `nd_percentile`, ..., `nd_bucket`; see
//! `strata_sql::functions`) registered on both sides, so a plan that uses
//! them is planned on the scheduler and decoded and run on the executors.
//!
//! The binaries `strata-ballista-scheduler` and `strata-ballista-executor`
//! are thin mains over [`scheduler`] and [`executor`]; this crate is a
//! workspace of its own (see the README, "Past one machine: Ballista").

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionState;
use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionConfig;

pub mod args;

pub use ballista_core::error::{BallistaError, Result};

/// Ballista's default scheduler session with the `nd_*` functions: the
/// scheduler plans (and decodes the client's logical plans) with it.
pub fn scheduler_session(config: SessionConfig) -> datafusion::common::Result<SessionState> {
    let mut state = default_session_builder(config)?;
    strata_sql::functions::register(&mut state)?;
    Ok(state)
}

/// Ballista's default executor function registry plus the `nd_*`
/// functions: executors resolve the functions of the plans they decode
/// here. (`BallistaFunctionRegistry` does not implement the registering
/// half of `FunctionRegistry`, so the maps are filled directly, under each
/// name and alias.)
pub fn executor_registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for f in strata_sql::functions::aggregates() {
        let f = Arc::new(f);
        for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
            registry.aggregate_functions.insert(name.to_string(), Arc::clone(&f));
        }
    }
    let bucket = Arc::new(ScalarUDF::from(strata_sql::functions::NdBucket::new()));
    registry.scalar_functions.insert(bucket.name().to_string(), bucket);
    registry
}

/// Runs a scheduler on `addr` until the process ends.
pub async fn scheduler(addr: SocketAddr) -> Result<()> {
    let config = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        external_host: addr.ip().to_string(),
        bind_port: addr.port(),
        ..SchedulerConfig::default()
    }
    .with_override_session_builder(Arc::new(scheduler_session));
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, addr, Arc::new(config)).await
}

/// Where an executor listens and which scheduler it joins.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub bind_host: String,
    /// Arrow Flight port (shuffle reads).
    pub port: u16,
    /// gRPC port (task launches from the scheduler).
    pub grpc_port: u16,
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// Shuffle files; a temporary directory when `None`.
    pub work_dir: Option<String>,
    /// Concurrent tasks; every core when `None`.
    pub concurrent_tasks: Option<usize>,
}

/// Runs an executor until the process ends.
pub async fn executor(opts: ExecutorOptions) -> Result<()> {
    let mut config = ExecutorProcessConfig {
        bind_host: opts.bind_host.clone(),
        external_host: Some(opts.bind_host),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host: opts.scheduler_host,
        scheduler_port: opts.scheduler_port,
        work_dir: opts.work_dir,
        override_function_registry: Some(Arc::new(executor_registry())),
        ..ExecutorProcessConfig::default()
    };
    if let Some(n) = opts.concurrent_tasks {
        config.vcores = n;
    }
    start_executor_process(Arc::new(config)).await
}

/// A binary's main after its flags are parsed (`Ok((help, options))`):
/// `--help` prints `usage` (exit 0), a bad flag prints the error and
/// `usage` (exit 2); otherwise it logs to stderr and runs `serve`, exiting
/// 1 with `name: error` if that fails.
pub async fn main_with<T, F>(
    name: &str,
    usage: &str,
    parsed: std::result::Result<(bool, T), String>,
    serve: impl FnOnce(T) -> F,
) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<()>>,
{
    use std::process::ExitCode;
    let opts = match parsed {
        Ok((false, opts)) => opts,
        Ok((true, _)) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n{usage}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    match serve(opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use datafusion::execution::FunctionRegistry;

    use super::*;

    #[test]
    fn both_sides_know_every_nd_function() -> datafusion::common::Result<()> {
        let state = scheduler_session(SessionConfig::new())?;
        let registry = executor_registry();
        for f in strata_sql::functions::aggregates() {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                assert!(state.udaf(name).is_ok(), "scheduler: {name}");
                assert!(registry.udaf(name).is_ok(), "executor: {name}");
            }
        }
        assert!(state.udf("nd_bucket").is_ok() && registry.udf("nd_bucket").is_ok());
        // DataFusion's own functions stay.
        assert!(state.udaf("sum").is_ok() && registry.udaf("sum").is_ok() && registry.udf("date_bin").is_ok());
        Ok(())
    }
}
