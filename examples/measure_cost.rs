//! CPU cost of the per-request measurement path with spans off (benchmark P3): what every
//! request pays for being measured, on top of serving it.
//!
//! One simulated request = what the daemon does for an async request with two DB calls:
//! `Tracker::new`, an `Instrumented` future polled three times through its waker wrapper
//! (compute → db → sched → compute, twice), the `TaskMonitor` wrapper, `finish`, the metrics
//! update (`Metrics::observe_request`) and the `Server-Timing` header. Prints ns per request.
//!
//! ```sh
//! cargo run --release --example measure_cost
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use reclaimd::api::Mode;
use reclaimd::observe::measure::{Instrumented, Tracker};
use reclaimd::observe::metrics::Metrics;

/// Returns `Pending` `waits` times, waking itself each time (as a DB reply would).
struct Waits(u32);

impl Future for Waits {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn main() {
    let metrics = Metrics::new();
    let monitor = tokio_metrics::TaskMonitor::new();
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut header_bytes = 0usize;
    let run = |count: u32, header_bytes: &mut usize, cx: &mut Context<'_>| {
        let start = Instant::now();
        for _ in 0..count {
            let arrival = Instant::now();
            let tracker = Tracker::new(metrics.stats(Mode::Async).clone(), arrival);
            let mut fut = Box::pin(monitor.instrument(Instrumented::new(Waits(2), tracker)));
            let timing = loop {
                if let Poll::Ready(((), timing)) = fut.as_mut().poll(cx) {
                    break timing;
                }
            };
            metrics.observe_request(
                Mode::Async,
                "/api/users/{id}/report",
                200,
                arrival.elapsed(),
                &timing,
            );
            *header_bytes += timing.server_timing(Mode::Async).to_string().len();
        }
        start.elapsed()
    };
    run(n / 10, &mut header_bytes, &mut cx); // warm-up
    let elapsed = run(n, &mut header_bytes, &mut cx);
    let ns = elapsed.as_nanos() as f64 / f64::from(n);
    println!("requests={n}");
    println!("ns_per_request={ns:.0}");
    eprintln!("measurement path: {ns:.0} ns per request ({header_bytes} header bytes written)");
}
