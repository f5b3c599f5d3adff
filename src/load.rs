//! `reclaimd load`: the open-loop load generator.

use std::process::ExitCode;

/// Arguments of `reclaimd load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {}

/// Runs `reclaimd load`.
pub fn run(_args: LoadArgs) -> ExitCode {
    eprintln!("reclaimd load: not implemented yet");
    ExitCode::from(2)
}
