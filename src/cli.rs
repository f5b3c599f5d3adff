//! The command line: one binary, several subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// reclaimd: how much of a request's waiting time can a server reclaim as work?
#[derive(Debug, Parser)]
#[command(name = "reclaimd", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open-loop load generator: sends requests on a fixed schedule and reports latency
    /// measured from each request's intended send time.
    Load(crate::load::LoadArgs),
    /// Replay fixed request patterns against a running daemon and print a timeline.
    Scenario(crate::scenario::ScenarioArgs),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Load(args) => crate::load::run(args),
        Command::Scenario(args) => crate::scenario::run(args),
    }
}
