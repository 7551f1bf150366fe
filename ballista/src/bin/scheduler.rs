//! `strata-ballista-scheduler [--bind 127.0.0.1] [--port 50050]`: a Ballista
//! scheduler whose sessions know strata's `nd_*` functions.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use strata_ballista::args::Args;

const USAGE: &str = "usage: strata-ballista-scheduler [--bind 127.0.0.1] [--port 50050]";

#[tokio::main]
async fn main() -> ExitCode {
    let parsed = Args::parse(std::env::args().skip(1), &["bind", "port"]).and_then(|a| {
        let ip: IpAddr = a.get("bind", IpAddr::from([127, 0, 0, 1]))?;
        Ok((a.help, SocketAddr::new(ip, a.get("port", 50050u16)?)))
    });
    strata_ballista::main_with("strata-ballista-scheduler", USAGE, parsed, strata_ballista::scheduler).await
}
