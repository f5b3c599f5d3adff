//! Shedding by time. A request is admitted only if the wait it is predicted to see for a
//! handler thread fits in the budget (`limits.max_queue_wait`, at most half of
//! `limits.request_timeout`); otherwise it gets 503 + `Retry-After` at once, instead of a
//! 504 after waiting, and the work it would have cost goes to requests that can still
//! finish in time.
//!
//! The prediction adds up the stages a request waits at, each a [`Stage`]: a fixed number
//! of servers with a queue in front, predicting `ahead × cost / servers`, where `cost` is a
//! moving average of what one request occupies a server for.
//! - sync: `ahead` is the requests queued for a worker (plus the worker to be freed when all
//!   are busy); `cost` is a job's whole time on its worker, DB calls included, since a
//!   blocked worker serves nobody. When every worker has been on its current job for
//!   longer than `cost` (a stalled database), the shortest such time is used instead, so
//!   requests stop queueing behind a stall.
//! - async, two stages: the handler threads (`ahead` is the requests waiting for their first
//!   poll or runnable after a wake-up; `cost` is a request's compute, its time inside
//!   polls), and the driver's connections (`ahead` is the calls waiting for one of the
//!   `mongodb.max_pool_size` permits in front of the driver; `cost` is how long a call holds
//!   one). A request passes the second stage once per driver call it makes (the most a
//!   request of its route has made so far), so a report's two calls count twice. When every
//!   permit is held and none has come back for a while (a stalled database), that while is
//!   the least wait predicted. A slow but unsaturated database sheds nothing: a call that
//!   finds a free connection does not wait for one.
//!
//! Until the first request has finished there is no estimate and every request is admitted
//! (the queue and in-flight caps still apply).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Weight of a new sample in the moving average of the cost.
const ALPHA: f64 = 0.1;

/// One stage of a request's path: `servers` identical servers (threads, connections) with
/// a queue in front.
#[derive(Debug)]
pub(crate) struct Stage {
    servers: usize,
    /// Moving average of a request's cost in nanoseconds, as `f64` bits; 0 until measured.
    cost: AtomicU64,
}

impl Stage {
    pub(crate) fn new(servers: usize) -> Stage {
        Stage {
            servers: servers.max(1),
            cost: AtomicU64::new(0),
        }
    }

    /// The moving average of a request's cost; zero until one has been recorded.
    pub(crate) fn cost(&self) -> Duration {
        Duration::from_secs_f64(f64::from_bits(self.cost.load(Ordering::Relaxed)) / 1e9)
    }

    /// Adds one finished request's cost to the average.
    pub(crate) fn record(&self, cost: Duration) {
        let sample = cost.as_secs_f64() * 1e9;
        let _ = self
            .cost
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let old = f64::from_bits(bits);
                let new = if old == 0.0 {
                    sample
                } else {
                    old + ALPHA * (sample - old)
                };
                Some(new.max(1.0).to_bits())
            });
    }

    /// The wait predicted for a request with `ahead` requests' worth of work in front of
    /// it, each costing at least `floor` (see the module docs).
    pub(crate) fn predicted_wait(&self, ahead: usize, floor: Duration) -> Duration {
        if ahead == 0 {
            return Duration::ZERO;
        }
        let cost = self.cost().max(floor);
        let servers = u32::try_from(self.servers).unwrap_or(u32::MAX);
        let ahead = u32::try_from(ahead).unwrap_or(u32::MAX);
        cost.saturating_mul(ahead) / servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_is_predicted_until_a_cost_is_known() {
        let a = Stage::new(1);
        assert_eq!(a.predicted_wait(1_000_000, Duration::ZERO), Duration::ZERO);
        assert_eq!(a.cost(), Duration::ZERO);
    }

    #[test]
    fn the_wait_is_the_work_ahead_over_the_servers() {
        let a = Stage::new(2);
        a.record(MS * 10);
        assert_eq!(a.predicted_wait(20, Duration::ZERO), MS * 100);
        assert_eq!(a.predicted_wait(0, MS * 300), Duration::ZERO);
        // A stalled server: its time on the current job is the floor of the cost.
        assert_eq!(a.predicted_wait(1, MS * 300), MS * 150);
    }

    #[test]
    fn the_average_follows_a_changed_cost() {
        let a = Stage::new(1);
        a.record(MS * 10);
        for _ in 0..100 {
            a.record(MS * 40);
        }
        let cost = a.cost();
        assert!(cost > MS * 39 && cost <= MS * 40, "{cost:?}");
    }
}
