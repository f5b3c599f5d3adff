//! Process plumbing the subcommands share: exit statuses, tokio runtimes, and the shutdown
//! signal.

// Exit statuses, the same in every subcommand (`reclaimd --help` lists them, and so does the
// README). 0 is success, including `--help` and `--version`; 1 is a run that failed for
// another reason (serve cannot bind, a scenario request failed).

/// Bad arguments, in any subcommand, or an invalid configuration (sysexits EX_USAGE). Clap's
/// own status for bad arguments, 2, is mapped to this.
pub const EX_USAGE: u8 = 64;
/// A needed service is unavailable (sysexits EX_UNAVAILABLE): `seed` cannot reach MongoDB,
/// or `load` got no successful response from a target.
pub const EX_UNAVAILABLE: u8 = 69;

/// A multi-thread runtime with `threads` workers (`None`: one per core) named `name`, or
/// a current-thread runtime when `threads` is `Some(1)` and `name` is empty.
pub(crate) fn runtime(
    name: &str,
    threads: Option<usize>,
) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = match (name, threads) {
        ("", Some(1)) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Some(n) = threads {
        builder.worker_threads(n);
    }
    if !name.is_empty() {
        builder.thread_name(name);
    }
    builder.enable_all().build().map_err(|e| {
        format!(
            "cannot start a runtime ({}): {e}",
            if name.is_empty() { "main" } else { name }
        )
    })
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
