//! tokio runtime metrics: the stable `RuntimeMetrics` of the HTTP and handler runtimes,
//! exported at scrape time, and the async handler threads' busy/idle time fed into
//! [`ModeStats`] (async threads never block, by design).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::IntGaugeVec;

use crate::observe::measure::{ModeStats, WorkerState};
use crate::observe::prom::opts;

/// Exports tokio runtimes' stable metrics at scrape time, and the async handler runtime's
/// worker threads' busy and idle time as `reclaimd_worker_seconds_total{mode="async"}`
/// (from tokio's per-worker busy duration; async threads never block, by design).
pub(crate) struct RuntimeCollector {
    runtimes: Vec<Runtime>,
    workers: IntGaugeVec,
    alive_tasks: IntGaugeVec,
    global_queue_depth: IntGaugeVec,
}

/// One runtime watched by [`RuntimeCollector`].
pub(crate) struct Runtime {
    pub(crate) name: &'static str,
    pub(crate) handle: tokio::runtime::Handle,
    /// The mode whose worker seconds are this runtime's busy/idle time, if any.
    pub(crate) worker_time: Option<Arc<ModeStats>>,
    clock: Mutex<WorkerClock>,
}

impl Runtime {
    pub(crate) fn new(
        name: &'static str,
        handle: tokio::runtime::Handle,
        worker_time: Option<Arc<ModeStats>>,
    ) -> Runtime {
        Runtime {
            name,
            handle,
            worker_time,
            clock: Mutex::new(WorkerClock {
                start: Instant::now(),
                busy: Duration::ZERO,
                idle: Duration::ZERO,
            }),
        }
    }
}

struct WorkerClock {
    start: Instant,
    busy: Duration,
    idle: Duration,
}

impl RuntimeCollector {
    #[allow(
        clippy::expect_used,
        reason = "fixed, valid definitions: failing here is a bug"
    )]
    pub(crate) fn new(runtimes: Vec<Runtime>) -> RuntimeCollector {
        let vec = |name: &str, help: &str| {
            IntGaugeVec::new(opts(name, help), &["runtime"]).expect("valid metric")
        };
        RuntimeCollector {
            runtimes,
            workers: vec(
                "tokio_worker_threads",
                "Worker threads of the tokio runtime.",
            ),
            alive_tasks: vec("tokio_alive_tasks", "Tasks alive in the tokio runtime."),
            global_queue_depth: vec(
                "tokio_global_queue_depth",
                "Tasks waiting in the tokio runtime's global queue.",
            ),
        }
    }

    /// Brings the gauges and worker-time counters up to date.
    pub(crate) fn update(&self) {
        for rt in &self.runtimes {
            let m = rt.handle.metrics();
            let labels = [rt.name];
            let workers = m.num_workers();
            self.workers.with_label_values(&labels).set(workers as i64);
            self.alive_tasks
                .with_label_values(&labels)
                .set(m.num_alive_tasks() as i64);
            self.global_queue_depth
                .with_label_values(&labels)
                .set(m.global_queue_depth() as i64);
            if let Some(mode) = &rt.worker_time {
                let busy: Duration = (0..workers).map(|w| m.worker_total_busy_duration(w)).sum();
                let mut c = rt.clock.lock();
                let wall = c.start.elapsed() * workers as u32;
                let idle = wall.saturating_sub(busy);
                mode.add_worker(WorkerState::Busy, busy.saturating_sub(c.busy));
                mode.add_worker(WorkerState::Idle, idle.saturating_sub(c.idle));
                c.busy = c.busy.max(busy);
                c.idle = c.idle.max(idle);
            }
        }
    }
}

impl Collector for RuntimeCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.workers.desc();
        d.extend(self.alive_tasks.desc());
        d.extend(self.global_queue_depth.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.update();
        let mut f = self.workers.collect();
        f.extend(self.alive_tasks.collect());
        f.extend(self.global_queue_depth.collect());
        f
    }
}
