//! The `reclaimd` binary: everything lives in the library (`reclaimd::cli::main`), so tests reach it.
fn main() -> std::process::ExitCode {
    reclaimd::cli::main()
}
