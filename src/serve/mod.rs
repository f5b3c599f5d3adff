//! `reclaimd serve`: the daemon.
//!
//! - [`server`]: listeners, accept loops, config reload watchers, graceful shutdown;
//!   [`Server::start`] is the entry point of `main` and the tests.
//! - `http`: the hyper services of the app and admin listeners: body limits, JSON
//!   responses, `Server-Timing`, the admin routes; the one place responses are counted.
//! - [`app`]: shared state, live settings and reloads; [`App::serve`] runs one request.
//! - `dispatch`: the two dispatchers (`SyncPool`, `AsyncRuntime`).
//! - `admission`: shedding by time: the wait a request is predicted to see.
//! - `handlers`: each route's logic, written once for both modes.
//! - `db`: MongoDB access for both modes through one instrumentation point.
//! - `error`: the error type and its HTTP mapping.
//! - [`seed`]: demo data; `workload`: the CPU cost of compute segments.

mod admission;
pub mod app;
mod db;
mod dispatch;
pub(crate) mod error;
mod handlers;
mod http;
pub mod seed;
pub mod server;
mod workload;

pub use app::App;
pub use server::Server;
