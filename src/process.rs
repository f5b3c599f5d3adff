//! Process plumbing the subcommands share: exit statuses, tokio runtimes, and the shutdown
//! signal.

/// Exit status for an invalid configuration or usage (sysexits EX_USAGE).
pub const EX_USAGE: u8 = 64;
/// Exit status when a needed service (MongoDB, a load target) is unavailable
/// (sysexits EX_UNAVAILABLE).
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
