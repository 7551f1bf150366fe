//! Command-line definitions; every flag also reads `STRATA_<FLAG>`.

mod bench_peer;
mod client;
mod export;
mod export_parquet;
mod fixtures;
mod object_dest;
#[cfg(feature = "sql")]
mod object_s3;
mod serve;
mod token;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "strata", version, about = "A time-series metrics engine that answers Netdata-style queries")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (demo history and live local metrics by default).
    Serve(Box<serve::ServeArgs>),
    /// Send a query body (JSON, POST /api/v3/data) and print the response.
    Query(client::QueryArgs),
    /// Run a SQL statement on a server (POST /api/v1/sql; the server needs `--features sql`).
    Sql(client::SqlArgs),
    /// Post an ingest batch (JSON, POST /api/v1/ingest) and print the report.
    Ingest(client::IngestArgs),
    /// Manage API tokens (through the API while the server runs, else on --data-dir).
    Token(token::TokenArgs),
    /// Write deterministic ingest batches (the demo generator) to a directory.
    GenFixtures(fixtures::GenArgs),
    /// Export one tier of a stopped server's data dir to Parquet or Arrow IPC (long format).
    Export(export::ExportArgs),
    /// Export sealed spans as long-format Parquet partitioned by date and hour, incrementally (server may run).
    ExportParquet(export_parquet::ExportParquetArgs),
    /// Bench strata against VictoriaMetrics and Prometheus (when installed) on one dataset.
    BenchPeer(bench_peer::BenchArgs),
}

pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(a) => serve::run(*a),
        Command::Query(a) => client::query(a),
        Command::Ingest(a) => client::ingest(a),
        Command::Sql(a) => client::sql(a),
        Command::GenFixtures(a) => fixtures::run(a),
        Command::Token(a) => token::run(a),
        Command::Export(a) => export::run(a),
        Command::ExportParquet(a) => export_parquet::run(a),
        Command::BenchPeer(a) => bench_peer::run(a),
    }
}

/// The default data dir.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("./strata-data")
}
