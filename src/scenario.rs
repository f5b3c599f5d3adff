//! `reclaimd scenario`: replays fixed request patterns and prints a timeline.

use std::process::ExitCode;

/// Arguments of `reclaimd scenario`.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {}

/// Runs `reclaimd scenario`.
pub fn run(_args: ScenarioArgs) -> ExitCode {
    eprintln!("reclaimd scenario: not implemented yet");
    ExitCode::from(2)
}
