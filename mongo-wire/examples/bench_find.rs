//! Benchmark: `find` by `_id` (the daemon's quick request) through the real async `mongodb`
//! driver, N concurrent clients, zero injected latency. Prints ops/s.
//!
//! cargo run --release -p mongo-wire --example bench_find -- [--clients 64] [--secs 10]
//!     [--uri mongodb://127.0.0.1:27017/?directConnection=true]
//!
//! Without `--uri` the server runs in this process (its own 2-thread runtime); with `--uri`
//! it measures a separately started `mongo-wire` (or any MongoDB).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use mongo_wire::{MongoWire, Options};
use mongodb::bson::{doc, Document};
use mongodb::Client;

#[derive(Parser)]
struct Args {
    /// Concurrent clients (tasks issuing find_one back to back).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Measured duration, after a 1 s warm-up.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Documents in the collection (`_id` 1..=N).
    #[arg(long, default_value_t = 1000)]
    docs: i64,
    /// Server to measure; default: an in-process mongo-wire on a loopback port.
    #[arg(long)]
    uri: Option<String>,
    /// Client runtime worker threads.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
}

fn main() {
    let args = Args::parse();
    let server = match &args.uri {
        Some(_) => None,
        None => {
            Some(MongoWire::start("127.0.0.1:0", Options::default()).expect("start mongo-wire"))
        }
    };
    let uri = args
        .uri
        .clone()
        .or_else(|| server.as_ref().map(MongoWire::uri))
        .expect("a uri");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(run(args, uri));
    if let Some(s) = server {
        let h = s.handle();
        println!(
            "server: find commands {} max in flight {}",
            h.command_count("find"),
            h.max_in_flight()
        );
    }
}

async fn run(args: Args, uri: String) {
    let pool = args.clients.max(1) as u32;
    let client = Client::with_uri_str(format!(
        "{uri}{}maxPoolSize={pool}&minPoolSize={pool}",
        if uri.contains('?') { "&" } else { "/?" }
    ))
    .await
    .expect("client");
    let users = client
        .database("bench_find")
        .collection::<Document>("users");
    users.drop().await.expect("drop");
    let docs: Vec<Document> = (1..=args.docs)
        .map(|i| doc! { "_id": i, "name": format!("user{i}"), "email": format!("user{i}@example.com"), "tier": "free" })
        .collect();
    users.insert_many(docs).await.expect("seed");

    let ops = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (users, ops, stop) = (users.clone(), ops.clone(), stop.clone());
        let n = args.docs;
        tasks.push(tokio::spawn(async move {
            let mut id = (c as i64 * 7919) % n;
            while !stop.load(Ordering::Relaxed) {
                id = (id * 31 + 17) % n;
                let found = users
                    .find_one(doc! { "_id": id + 1 })
                    .await
                    .expect("find_one");
                assert!(found.is_some(), "seeded user found");
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start_ops = ops.load(Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.secs)).await;
    let done = ops.load(Ordering::Relaxed) - start_ops;
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client task");
    }
    println!(
        "bench_find: clients={} docs={} secs={:.1} finds={} ops/s={:.0}",
        args.clients,
        args.docs,
        elapsed.as_secs_f64(),
        done,
        done as f64 / elapsed.as_secs_f64()
    );
    users.drop().await.expect("drop");
}
