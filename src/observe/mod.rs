//! What the daemon measures and how it leaves the process.
//!
//! - [`measure`]: the measurement core (a leaf): per-request phase split, reclaimed time,
//!   per-mode live counts.
//! - [`metrics`]: every Prometheus metric, in one struct; reads `measure`, never the reverse.
//! - `runtime`: tokio runtime metrics and async worker-thread time.
//! - `process`: the `process_*` metrics, with a sub-second CPU counter (Linux).
//! - `spans`: the spans of a request.
//! - [`telemetry`]: logging and OTLP span export setup.
//! - [`watch`]: the hook through which the live view follows transitions (`measure` calls it).

pub mod measure;
pub mod metrics;
#[cfg(target_os = "linux")]
pub(crate) mod process;
mod prom;
pub(crate) mod runtime;
pub(crate) mod spans;
pub mod telemetry;
pub mod watch;

/// Every metric family name the daemon exposes (histograms without `_bucket`/`_sum`/`_count`),
/// for the dashboard lint and the catalogue in `docs/ARCHITECTURE.md`.
pub fn exported_metric_names() -> Vec<String> {
    let metrics = metrics::Metrics::new();
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() {
        let runtime = runtime::Runtime::new("handlers", rt.handle().clone(), None);
        let _ = metrics.register(Box::new(runtime::RuntimeCollector::new(vec![runtime])));
    }
    // Make every labelled family appear at least once.
    let t = measure::Timing::default();
    for mode in crate::api::Mode::ALL {
        metrics.observe_request(mode, "/api/users/{id}", 200, std::time::Duration::ZERO, &t);
    }
    metrics
        .db_errors_total
        .with_label_values(&["find", "unavailable"]);
    metrics.set_mode(crate::api::Mode::Sync);
    let mut names: Vec<String> = metrics
        .gather()
        .into_iter()
        .map(|f| f.name().to_string())
        .collect();
    names.sort();
    names
}
