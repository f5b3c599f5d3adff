//! The command line: one binary, several subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::api::Mode;
use crate::config::parse_socket_addr;
use crate::config::{Config, Overrides, Source};
use crate::process::{self, EX_UNAVAILABLE, EX_USAGE};

/// The exit statuses of every subcommand, as `--help` prints them (`process` defines them).
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0   success (also --help and --version)
  1   the run failed (serve: cannot bind or start; scenario: a request failed)
  64  bad arguments or an invalid configuration, in any subcommand (EX_USAGE)
  69  a needed service is unavailable (seed: MongoDB unreachable; load: no request
      to some target succeeded) (EX_UNAVAILABLE)";

/// reclaimd: how much of a request's waiting time can a server reclaim as work?
///
/// Serves a small MongoDB-backed API in sync-thread or async mode, measures each request's
/// queue / compute / DB-wait split, and exports it as Prometheus metrics, OpenTelemetry spans
/// and a Server-Timing header.
#[derive(Debug, Parser)]
#[command(name = "reclaimd", version, about, long_about, after_help = EXIT_STATUS_HELP)]
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
    /// Override `server.listen`: an IP address and port, e.g. 127.0.0.1:18080.
    #[arg(long, value_name = "ADDR", value_parser = parse_socket_addr)]
    pub listen: Option<SocketAddr>,
    /// Override `admin.listen`: an IP address and port, e.g. 127.0.0.1:19464.
    #[arg(long, value_name = "ADDR", value_parser = parse_socket_addr)]
    pub admin_listen: Option<SocketAddr>,
    #[command(flatten)]
    /// Override `mongodb.uri`.
    pub mongodb: MongoArgs,
}

/// `--mongodb-uri`, shared by `serve` and `seed`.
#[derive(Debug, Args)]
pub struct MongoArgs {
    /// Override `mongodb.uri`, e.g. mongodb://127.0.0.1:27117. Other local users can read
    /// command lines: pass credentials in RECLAIMD_MONGODB__URI instead.
    #[arg(long = "mongodb-uri", value_name = "URI")]
    pub uri: Option<String>,
}

#[derive(Debug, Args)]
/// Arguments of `reclaimd seed`.
pub struct SeedArgs {
    #[command(flatten)]
    /// Where the config comes from (`mongodb.*` is used).
    pub config: ConfigArgs,
    #[command(flatten)]
    /// Override `mongodb.uri`.
    pub mongodb: MongoArgs,
    /// Users to create, with integer ids 1..=N.
    #[arg(long, default_value_t = 1000)]
    pub users: u64,
    /// Orders to create, spread over the users.
    #[arg(long, default_value_t = 10_000)]
    pub orders: u64,
}

/// Parses the command line and runs the chosen subcommand.
///
/// Bad arguments exit with [`EX_USAGE`] (64), as an invalid configuration does, in every
/// subcommand; clap's own default would be 2. `--help` and `--version` exit 0.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Seed(args) => seed(args),
        Command::Load(args) => crate::load::run(args),
        Command::Scenario(args) => crate::scenario::run(args),
        Command::CheckConfig(args) => check_config(args),
        Command::Demo(args) => crate::demo::run(args),
    }
}

/// Prints clap's message and maps its outcome to our exit statuses: help and version go to
/// standard output and exit 0; a usage error goes to standard error and exits 64.
fn usage_error(e: &clap::Error) -> ExitCode {
    // Printing can only fail on a closed stream; the exit status still says what happened.
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(EX_USAGE)
    } else {
        ExitCode::SUCCESS
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
        mongodb_uri: args.mongodb.uri,
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
    let overrides = Overrides {
        mongodb_uri: args.mongodb.uri,
        ..Overrides::default()
    };
    let (config, _) = match load_config(&args.config, overrides) {
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
