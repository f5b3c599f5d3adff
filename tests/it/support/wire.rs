//! A seeded mongo-wire (the MongoDB test double) and a daemon config pointing at it.
//! Standalone (no other harness module), so `tests/telemetry_spans.rs` can include it.

use std::time::Duration;

use mongo_wire::{MongoWire, Options};
use reclaimd::config::Config;

/// Users `start_wire` seeds: ids 1..=50.
pub const USERS: u64 = 50;
/// Orders `start_wire` seeds: 10 per user.
pub const ORDERS: u64 = 500;

/// Starts mongo-wire with `latency_ms` per data command and seeds it with `USERS` users and
/// `ORDERS` orders through the daemon's own seeding code.
pub fn start_wire(latency_ms: u64) -> MongoWire {
    let wire = MongoWire::start(
        "127.0.0.1:0",
        Options {
            latency: Duration::from_millis(latency_ms),
            ..Options::default()
        },
    )
    .expect("mongo-wire starts");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(wire.uri()).await.unwrap();
        let db = client.database("reclaimd");
        reclaimd::serve::seed::seed(&db, USERS, ORDERS, false)
            .await
            .unwrap();
    });
    wire
}

/// A test daemon config: port 0 listeners, fast MongoDB failure, no spans.
pub fn base_config(wire: &MongoWire) -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = "127.0.0.1:0".parse().unwrap();
    c.mongodb.uri = wire.uri();
    c.mongodb.server_selection_timeout = Duration::from_millis(500);
    c.mongodb.connect_timeout = Duration::from_millis(500);
    c.telemetry.spans = false;
    c.server.drain_timeout = Duration::from_secs(10);
    c
}
