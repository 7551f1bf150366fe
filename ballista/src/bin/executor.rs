//! `strata-ballista-executor [--bind 127.0.0.1] [--port 50051] [--grpc-port 50052]
//! [--scheduler-host 127.0.0.1] [--scheduler-port 50050] [--work-dir D] [--concurrent-tasks N]`:
//! a Ballista executor whose function registry holds strata's `nd_*` functions.

use std::process::ExitCode;

use strata_ballista::args::Args;
use strata_ballista::ExecutorOptions;

const USAGE: &str = "usage: strata-ballista-executor [--bind 127.0.0.1] [--port 50051] [--grpc-port 50052] \
[--scheduler-host 127.0.0.1] [--scheduler-port 50050] [--work-dir DIR] [--concurrent-tasks N]";

fn options(a: &Args) -> Result<ExecutorOptions, String> {
    Ok(ExecutorOptions {
        bind_host: a.get("bind", "127.0.0.1".to_string())?,
        port: a.get("port", 50051u16)?,
        grpc_port: a.get("grpc-port", 50052u16)?,
        scheduler_host: a.get("scheduler-host", "127.0.0.1".to_string())?,
        scheduler_port: a.get("scheduler-port", 50050u16)?,
        work_dir: a.opt("work-dir"),
        concurrent_tasks: a
            .opt("concurrent-tasks")
            .map(|n| n.parse())
            .transpose()
            .map_err(|e| format!("--concurrent-tasks: {e}"))?,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let known = ["bind", "port", "grpc-port", "scheduler-host", "scheduler-port", "work-dir", "concurrent-tasks"];
    let parsed = Args::parse(std::env::args().skip(1), &known).and_then(|a| Ok((a.help, options(&a)?)));
    strata_ballista::main_with("strata-ballista-executor", USAGE, parsed, strata_ballista::executor).await
}
