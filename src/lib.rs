//! reclaimd serves a small MongoDB-backed API in sync-thread or async mode and measures how
//! much of each request's waiting time is reclaimed as productive work.
//!
//! Module map (each module's first lines say what it owns):
//! - [`api`]: the shared vocabulary: `Mode`, `Route` (template, method, path), request
//!   matching, order statuses.
//! - [`server_timing`]: the `Server-Timing` header codec.
//! - [`config`]: the typed config, layered file → env → flags, validated; live keys.
//! - [`cli`]: the command line (`serve`, `seed`, `load`, `scenario`, `check-config`).
//! - [`serve`]: the daemon: listeners, HTTP, app state, dispatchers, handlers, MongoDB.
//! - [`observe`]: measurement core, Prometheus metrics, runtime metrics, spans, telemetry.
//! - [`load`]: `reclaimd load`, the open-loop load generator.
//! - [`scenario`]: `reclaimd scenario`, replays the lecture's three requests.
//! - `live`: the live view (`/live` on the admin listener): thread lanes and requests as they
//!   happen, streamed to the browser.
//! - [`demo`]: `reclaimd demo`, the live view without Docker or MongoDB.
//! - [`process`]: exit statuses, runtimes, the shutdown signal.

#![warn(missing_docs)]

pub mod api;
pub mod cli;
pub mod config;
pub mod demo;
mod live;
pub mod load;
pub mod observe;
pub mod process;
pub mod scenario;
pub mod serve;
pub mod server_timing;
