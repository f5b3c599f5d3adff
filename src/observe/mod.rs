//! What the daemon measures and how it leaves the process.
//!
//! - [`measure`]: the measurement core (a leaf): per-request phase split, reclaimed time,
//!   per-mode live counts.
//! - [`metrics`]: every Prometheus metric, in one struct; reads `measure`, never the reverse.
//! - `runtime`: tokio runtime metrics and async worker-thread time.
//! - `spans`: the spans of a request.
//! - [`telemetry`]: logging and OTLP span export setup.
//! - [`watch`]: the hook through which the live view follows transitions (`measure` calls it).

pub mod measure;
pub mod metrics;
pub(crate) mod runtime;
pub(crate) mod spans;
pub mod telemetry;
pub mod watch;
