//! reclaimd serves a small MongoDB-backed API in sync-thread or async mode and measures how
//! much of each request's waiting time is reclaimed as productive work.
//!
//! Module map:
//! - [`cli`]: the command line (`serve`, `seed`, `load`, `scenario`, `check-config`).
//! - [`config`]: the typed config, layered file → env → flags, validated; live keys.
//! - [`server`]: listeners, accept loops, reload watchers, graceful shutdown; `run` and
//!   `Server::start` are the entry points tests use.
//! - [`http`]: the hyper layer shared by both modes: body limits, JSON responses,
//!   `Server-Timing`, the admin routes.
//! - [`app`]: shared state and the two dispatchers, `SyncPool` (OS threads, blocking
//!   driver) and `AsyncRuntime` (tokio, async driver); mode flips.
//! - [`handlers`]: the routes and their logic, written once for both modes.
//! - [`db`]: MongoDB access for both modes through one instrumentation point.
//! - [`measure`]: the measurement model: per-request queue/compute/db/sched tracking and
//!   reclaimed time.
//! - [`metrics`]: every Prometheus metric, in one struct.
//! - [`workload`]: the CPU cost of compute segments (real hashing work).
//! - [`error`]: the error type and its HTTP mapping.
//! - [`seed`]: demo data.
//! - [`telemetry`]: logging and span export setup.
//! - [`load`]: `reclaimd load`, the open-loop load generator.
//! - [`scenario`]: `reclaimd scenario`, replays the lecture's three requests.
//! - [`server_timing`]: the `Server-Timing` header the daemon writes and the tools read.

pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod handlers;
pub mod http;
pub mod load;
pub mod measure;
pub mod metrics;
pub mod scenario;
pub mod seed;
pub mod server;
pub mod server_timing;
pub mod telemetry;
pub mod workload;
