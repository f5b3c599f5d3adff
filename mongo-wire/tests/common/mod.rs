//! Shared test harness: each test gets a fresh `mongo-wire` server, or, when
//! `RECLAIMD_TEST_MONGODB_URI` is set, the real MongoDB at that URI with a database name
//! unique to the test (dropped at the end), so the same assertions keep the double honest.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use mongo_wire::{Handle, MongoWire, Options};

pub const REAL_URI_VAR: &str = "RECLAIMD_TEST_MONGODB_URI";

pub struct Target {
    /// `None` when testing against a real MongoDB.
    pub server: Option<MongoWire>,
    pub uri: String,
    pub db: String,
}

impl Target {
    pub fn handle(&self) -> Option<Handle> {
        self.server.as_ref().map(MongoWire::handle)
    }
}

fn unique_db(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut name = format!(
        "mw_{}_{}_{}_{}",
        test,
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    );
    name.truncate(60);
    name
}

/// The server the driver-level tests run against.
pub fn target(test: &str) -> Target {
    match std::env::var(REAL_URI_VAR) {
        Ok(uri) if !uri.trim().is_empty() => Target {
            server: None,
            uri,
            db: unique_db(test),
        },
        _ => {
            let server = MongoWire::start("127.0.0.1:0", Options::default())
                .expect("mongo-wire starts on a loopback port");
            Target {
                uri: server.uri(),
                server: Some(server),
                db: unique_db(test),
            }
        }
    }
}

/// A fresh `mongo-wire` server only (fault and latency tests cannot run against MongoDB).
pub fn double(opts: Options) -> MongoWire {
    MongoWire::start("127.0.0.1:0", opts).expect("mongo-wire starts on a loopback port")
}

/// Appends query options to a URI that may or may not already have a `?`.
pub fn with_options(uri: &str, opts: &str) -> String {
    if opts.is_empty() {
        uri.to_string()
    } else if uri.contains('?') {
        format!("{uri}&{opts}")
    } else if uri.ends_with('/') {
        format!("{uri}?{opts}")
    } else {
        format!("{uri}/?{opts}")
    }
}
