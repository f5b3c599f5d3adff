//! Memory floor of the `mongodb` driver alone: RSS with N `find_one` calls waiting at once
//! (benchmark P4's "driver floor" row). Run against a mongo-wire with a long latency:
//!
//! ```sh
//! cargo run --release -p mongo-wire -- --listen 127.0.0.1:27300 --latency-ms 5000 &
//! cargo run --release --example driver_floor -- mongodb://127.0.0.1:27300/?directConnection=true 10000 200
//! ```
//!
//! Arguments: the URI, the number of calls (default 10,000) and the pool size (default 200,
//! the daemon's `mongodb.max_pool_size`). Prints `rss_idle_kb=` and `rss_kb=` (after the
//! calls have been waiting for 3 s), one task per call on a one-thread runtime — as the
//! daemon's async mode has them.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use mongodb::bson::{doc, Document};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let uri = args
        .next()
        .ok_or("usage: driver_floor MONGODB_URI [CALLS] [POOL]")?;
    let calls: u64 = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let pool: u32 = args.next().map_or(Ok(200), |n| n.parse())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut opts = mongodb::options::ClientOptions::parse(&uri).await?;
        opts.max_pool_size = Some(pool);
        let users = mongodb::Client::with_options(opts)?
            .database("reclaimd")
            .collection::<Document>("users");
        // One call first, so the connection and the driver's monitors exist before "idle".
        users.find_one(doc! {"_id": 1i64}).await?;
        println!("rss_idle_kb={}", rss_kb());
        for i in 0..calls {
            let users = users.clone();
            tokio::spawn(async move {
                let _ = users.find_one(doc! {"_id": (i % 1000 + 1) as i64}).await;
            });
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        println!("rss_kb={}", rss_kb());
        println!("calls={calls}");
        println!("pool={pool}");
        Ok(())
    })
}
