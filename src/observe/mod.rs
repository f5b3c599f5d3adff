//! What the daemon measures and how it leaves the process.
//!
//! - [`measure`]: the measurement core (a leaf): per-request phase split, reclaimed time,
//!   per-mode live counts.
//! - [`metrics`]: every Prometheus metric, in one struct; reads `measure`, never the reverse.
//! - `runtime`: tokio runtime metrics and async worker-thread time.
//! - `process`: the `process_*` metrics, with a sub-second CPU counter (Linux).
//! - `spans`: the spans of a request.
//! - [`telemetry`]: logging and OTLP span export setup.

pub mod measure;
pub mod metrics;
#[cfg(target_os = "linux")]
pub(crate) mod process;
pub(crate) mod runtime;
pub(crate) mod spans;
pub mod telemetry;
