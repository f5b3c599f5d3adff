//! reclaimd serves a small MongoDB-backed API in sync-thread or async mode and measures how
//! much of each request's waiting time is reclaimed as productive work.
//!
//! Module map:
//! - [`cli`]: the command line (`serve`, `seed`, `load`, `scenario`, `check-config`).
//! - [`load`]: `reclaimd load`, the open-loop load generator.
//! - [`scenario`]: `reclaimd scenario`, replays fixed request patterns (the lecture's three
//!   requests) and prints a timeline.
//! - [`server_timing`]: the `Server-Timing` header the daemon writes and the tools read.

pub mod cli;
pub mod load;
pub mod scenario;
pub mod server_timing;
