//! `strata`: the command-line entry point (`serve`, `query`, `ingest`,
//! `gen-fixtures`). Exit codes: 0 ok, 2 bad usage, 1 runtime failure with a
//! one-line reason on stderr.

mod alloc;
mod cli;
mod collector;

use std::io::Write;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        // Not `eprintln!`: it panics (exit 101) when stderr cannot be written.
        let _ = writeln!(std::io::stderr(), "strata: {e}");
        std::process::exit(1);
    }
}
