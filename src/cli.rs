//! The command line: one binary, several subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::api::Mode;
use crate::config::{Config, Overrides, Source};
use crate::process::{self, EX_UNAVAILABLE, EX_USAGE};

/// reclaimd: how much of a request's waiting time can a server reclaim as work?
///
/// Serves a small MongoDB-backed API in sync-thread or async mode, measures each request's
/// queue / compute / DB-wait split, and exports it as Prometheus metrics, OpenTelemetry spans
/// and a Server-Timing header.
#[derive(Debug, Parser)]
#[command(name = "reclaimd", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    /// The subcommand to run.
    pub command: Command,
}

#[derive(Debug, Subcommand)]
/// The subcommands.
pub enum Command {
    /// Run the daemon: the app listener (/api/...) and the admin listener (/metrics,
    /// /healthz, /readyz, /admin/mode). Reloads the config on SIGHUP and on file change.
    Serve(ServeArgs),
    /// Load demo data into MongoDB: users 1..=N, their orders, and the indexes. Idempotent.
    Seed(SeedArgs),
    /// Open-loop load generator: sends requests on a fixed schedule and reports latency
    /// measured from each request's intended send time.
    Load(crate::load::LoadArgs),
    /// Replay fixed request patterns (the lecture's three requests) against a running
    /// daemon and print a timeline.
    Scenario(crate::scenario::ScenarioArgs),
    /// Validate a config file (with RECLAIMD_* environment overrides) and print the result.
    CheckConfig(ConfigArgs),
    /// The live view without Docker or MongoDB: a MongoDB test double, a sync and an async
    /// daemon under one identical load, and the URL of a page that shows both as they run.
    Demo(crate::demo::DemoArgs),
}

/// Where the config comes from.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML config file [default: config/reclaimd.toml, optional when not given].
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
/// Arguments of `reclaimd serve`.
pub struct ServeArgs {
    #[command(flatten)]
    /// Where the config comes from.
    pub config: ConfigArgs,
    /// Override `mode` (sync or async).
    #[arg(long)]
    pub mode: Option<Mode>,
    /// Override `server.listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Override `admin.listen`.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
/// Arguments of `reclaimd seed`.
pub struct SeedArgs {
    #[command(flatten)]
    /// Where the config comes from (`mongodb.*` is used).
    pub config: ConfigArgs,
    /// Users to create, with integer ids 1..=N.
    #[arg(long, default_value_t = 1000)]
    pub users: u64,
    /// Orders to create, spread over the users.
    #[arg(long, default_value_t = 20_000)]
    pub orders: u64,
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Seed(args) => seed(args),
        Command::Load(args) => crate::load::run(args),
        Command::Scenario(args) => crate::scenario::run(args),
        Command::CheckConfig(args) => check_config(args),
        Command::Demo(args) => crate::demo::run(args),
    }
}

fn load_config(args: &ConfigArgs, overrides: Overrides) -> Result<(Config, Source), ExitCode> {
    let source = Source::new(args.config.as_deref(), overrides);
    match source.load() {
        Ok(config) => Ok((config, source)),
        Err(e) => {
            eprintln!("reclaimd: invalid configuration: {e}");
            Err(ExitCode::from(EX_USAGE))
        }
    }
}

fn check_config(args: ConfigArgs) -> ExitCode {
    match load_config(&args, Overrides::default()) {
        Ok((config, source)) => {
            println!(
                "{}: ok (mode = {}, sync.workers = {}, async.worker_threads = {})",
                source.path.display(),
                config.mode,
                config.sync.workers,
                config.async_.worker_threads
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let overrides = Overrides {
        mode: args.mode,
        listen: args.listen,
        admin_listen: args.admin_listen,
    };
    let (config, source) = match load_config(&args.config, overrides) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let telemetry = crate::observe::telemetry::init(config.telemetry.spans);
    let server = match crate::serve::Server::start(config, Some(source)) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot start: {e}");
            eprintln!("reclaimd: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    server.run_until(process::shutdown_signal());
    tracing::info!("stopped");
    drop(telemetry);
    ExitCode::SUCCESS
}

fn seed(args: SeedArgs) -> ExitCode {
    let (config, _) = match load_config(&args.config, Overrides::default()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match process::runtime("", Some(1)) {
        Ok(rt) => rt.block_on(crate::serve::seed::seed_database(
            &config.mongodb,
            args.users,
            args.orders,
        )),
        Err(e) => Err(e),
    };
    match result {
        Ok((users, orders)) => {
            println!(
                "seeded: users {} new, {} existing; orders {} new, {} existing",
                users.inserted, users.existing, orders.inserted, orders.existing
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("reclaimd seed: {e}");
            ExitCode::from(EX_UNAVAILABLE)
        }
    }
}
