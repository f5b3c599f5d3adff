//! The client side of `ci/reliability.sh`: what curl and `reclaimd load` cannot do. Each
//! subcommand prints its figures on standard output and exits 1 when its check fails.
//!
//! - `probe`: one GET after another, each one's times and status to a file (a time series of
//!   what a user sees through an overload or a fault); `recovery` reads it back.
//! - `capacity`: closed-loop throughput of a route mix, the figure overload is relative to.
//! - `hostile`: thousands of malformed, oversized, incomplete and adversarial requests on raw
//!   sockets, each answer checked for being well-formed.
//! - `slowloris`: connections that trickle a head or a body and never finish.
//! - `orders`, `check-orders`: order writes, then what MongoDB stored, write by write.
//!
//! ```sh
//! cargo build --release --example reliability
//! target/release/examples/reliability hostile --app 127.0.0.1:8080 --admin 127.0.0.1:9464
//! ```
#![allow(unreachable_pub)]

mod hostile;
mod orders;
mod probe;
mod raw;
mod slow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Client side of ci/reliability.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// GET a URL one request at a time; one line per request to --out.
    Probe(probe::ProbeArgs),
    /// Closed-loop throughput of a route mix.
    Capacity(probe::CapacityArgs),
    /// How long after an event a probe's answers were back to normal.
    Recovery(probe::RecoveryArgs),
    /// Hostile HTTP requests, each answer checked.
    Hostile(hostile::Args),
    /// Slow-header or slow-body connections.
    Slowloris(slow::Args),
    /// Order writes with traceable amounts.
    Orders(orders::WriteArgs),
    /// Order writes against the stored documents.
    CheckOrders(orders::CheckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("reliability: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let passed = runtime.block_on(async {
        match cli.command {
            Command::Probe(a) => probe::probe(a).await,
            Command::Capacity(a) => probe::capacity(a).await,
            Command::Recovery(a) => probe::recovery(a),
            Command::Hostile(a) => hostile::run(a).await,
            Command::Slowloris(a) => slow::run(a).await,
            Command::Orders(a) => orders::write(a).await,
            Command::CheckOrders(a) => orders::check(a).await,
        }
    });
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
