fn main() -> std::process::ExitCode {
    reclaimd::cli::main()
}
