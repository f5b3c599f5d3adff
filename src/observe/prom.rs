//! Prometheus plumbing the collectors share: the `reclaimd` namespace and how a counter
//! follows a running sum kept elsewhere.

use std::time::Duration;

use prometheus::Opts;

const NAMESPACE: &str = "reclaimd";

/// Options of a metric in the `reclaimd` namespace.
pub(crate) fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

/// Moves a counter up to `total` (a monotonic running sum kept elsewhere). Callers
/// serialise calls per counter.
pub(crate) fn advance_to(counter: &prometheus::Counter, total: Duration) {
    let delta = total.as_secs_f64() - counter.get();
    if delta > 0.0 {
        counter.inc_by(delta);
    }
}
