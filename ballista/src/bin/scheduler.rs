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
    let addr = match parsed {
        Ok((false, addr)) => addr,
        Ok((true, _)) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    strata_ballista::init_logging();
    match strata_ballista::scheduler(addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata-ballista-scheduler: {e}");
            ExitCode::FAILURE
        }
    }
}
