//! The shared test harness.
//!
//! - [`app`]: `TestApp`, the daemon in-process on a seeded mongo-wire, with an HTTP client.
//! - [`daemon`]: `reclaimd serve` as a subprocess, its log collected, stopped by SIGTERM.
//! - [`fake`]: a stand-in app server with known delays, for the load and scenario tests.
//! - [`wire`]: a seeded mongo-wire and a base daemon config.
//! - [`raw`]: one HTTP GET over a fresh TCP connection.
//! - [`poll`]: `eventually()`, waiting for a condition up to a deadline.
//! - [`tools`]: external programs on PATH (`promtool`, ...), see build.rs.
//! - [`temp`]: temporary files removed on drop.
//!
//! `wire`, `raw` and `poll` use no other harness module, so `tests/telemetry_spans.rs` (its
//! own binary) includes just those.

pub mod app;
pub mod daemon;
pub mod fake;
pub mod poll;
pub mod raw;
pub mod temp;
pub mod tools;
pub mod wire;

pub use poll::eventually;
