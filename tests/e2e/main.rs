//! End-to-end tests: a real `strata serve` per test, driven over HTTP and
//! through the CLI. Expected values come from an independent reference
//! model of the query semantics (`dataset.rs`).

mod arrow_ingest;
mod auth;
mod bench_peer;
mod cli;
mod dataset;
mod durability;
mod export;
mod export_parquet;
mod fuzz;
mod grafana;
mod harness;
mod ingest;
mod lifecycle;
mod limits;
mod load;
mod mcp;
mod meta;
mod nezha;
mod oracle;
mod queries;
mod sql;
mod streams;
mod tiers;
mod tls;
mod tokens;
