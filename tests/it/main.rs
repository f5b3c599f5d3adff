//! The integration tests, one binary (one link, one process, tests run in parallel).
//!
//! - [`serve`]: `reclaimd serve` against mongo-wire: routes, errors, mode flips, outages,
//!   shutdown, and the core claim.
//! - [`http_errors`]: the headers of 405 and 401 responses, 404 bodies that echo nothing.
//! - [`cli`]: exit statuses and configuration error messages from the real binary.
//! - [`architecture`]: docs/ARCHITECTURE.md's metric catalogue against what the daemon exports.
//! - [`measurement`]: the measurement model on a live daemon; promtool reads `/metrics`.
//! - [`headline`]: the reclaimed share of compute from `Server-Timing`, `/metrics` and
//!   `reclaimd load`; the sub-second process CPU counter.
//! - [`telemetry_export`]: span export over OTLP from the real binary to a test receiver.
//! - [`load_accounting`], [`load_args`], [`load_cli`]: `reclaimd load`.
//! - [`scenario_daemon`], [`scenario_lecture`]: `reclaimd scenario lecture`.
//! - [`live`]: the live view (`/live`) and `reclaimd demo`, with a headless-browser test.
//! - [`reliability`]: the admin-token matrix (the rest of the reliability suite is
//!   `ci/reliability.sh`).
//! - [`deploy`]: static checks of docker-compose.yml, Prometheus and Grafana files.
//! - [`harness`]: the harness's own helpers.
//! - [`support`]: the harness.
//!
//! Only `tests/telemetry_spans.rs` is a binary of its own: it installs a global tracing
//! subscriber, which would see every other test's spans.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod architecture;
mod cli;
mod deploy;
mod harness;
mod headline;
mod http_errors;
mod k8s;
mod live;
mod load_accounting;
mod load_args;
mod load_cli;
mod measurement;
mod reliability;
mod scenario_daemon;
mod scenario_lecture;
mod serve;
mod support;
mod telemetry_export;
mod wedge;
