//! The floor of `reclaimd load`'s schedule lateness (benchmark P6): how late tokio's timer
//! alone wakes a task, with no request sent. A current-thread runtime (as `reclaimd load
//! --threads 1` uses one core) walks a constant-rate schedule exactly as the generator's
//! scheduler does (`sleep_until` the intended time when early, no sleep when late) and
//! records actual − intended for each arrival.
//!
//! ```sh
//! cargo run --release --example timer_lateness -- [RATE] [SECONDS]
//! ```
//!
//! Prints `rate=`, `lateness_p50_ms=`, `lateness_p99_ms=`, `lateness_max_ms=`, and the same
//! for a schedule that sleeps until 1 ms before each arrival and then yields until it is due
//! (`spin_lateness_*`, with `spin_cpu_share=` the fraction of wall time the thread was on
//! the CPU): what a timer finer than tokio's 1 ms wheel would give.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn walk(rate: f64, secs: f64, spin: bool) -> (Histogram<u64>, f64) {
    let mut h = Histogram::<u64>::new(3).unwrap();
    let gap = Duration::from_secs_f64(1.0 / rate);
    let n = (rate * secs) as u64;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    for i in 0..n {
        let intended = start + gap * u32::try_from(i).unwrap();
        if Instant::now() < intended {
            if spin {
                let early = intended - Duration::from_millis(1);
                if Instant::now() < early {
                    tokio::time::sleep_until(early).await;
                }
                while Instant::now() < intended {
                    tokio::task::yield_now().await;
                }
            } else {
                tokio::time::sleep_until(intended).await;
            }
        }
        let late = Instant::now().saturating_duration_since(intended);
        h.record(late.as_micros() as u64).unwrap();
    }
    let wall = start.elapsed().as_secs_f64();
    (h, (cpu_seconds() - cpu0) / wall)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rate: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(40_000.0);
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!("rate={rate}");
    for (prefix, spin) in [("", false), ("spin_", true)] {
        let (h, cpu) = rt.block_on(walk(rate, secs, spin));
        println!("{prefix}lateness_p50_ms={:.3}", ms(&h, 0.5));
        println!("{prefix}lateness_p99_ms={:.3}", ms(&h, 0.99));
        println!("{prefix}lateness_max_ms={:.3}", h.max() as f64 / 1e3);
        println!("{prefix}cpu_share={cpu:.2}");
    }
}
