//! Every Prometheus metric the daemon exports, in one struct (DESIGN.md §4).
//!
//! Names are in base units under the `reclaimd` namespace. Label sets are small and bounded:
//! `mode` ∈ sync|async, `route` is the route template, `phase` ∈ queue|compute|db|sched,
//! `state` is a fixed set per metric. Metrics are updated from a few instrumentation points —
//! the request tracker (`measure`), the sync pool, the HTTP layer and the DB layer — never
//! from handlers. Nothing here depends on span sampling.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Counter, CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::measure::{DbWaitClock, Phase, Timing};
use crate::server_timing::Mode;

const NAMESPACE: &str = "reclaimd";

/// Latency buckets, 0.5 ms to 30 s.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

/// The daemon's metrics. Cheap to share (`Arc`); per-mode handles are resolved once.
pub struct Metrics {
    registry: Registry,
    /// `reclaimd_requests_total{mode,route,status}`: responses sent.
    pub requests_total: IntCounterVec,
    /// `reclaimd_request_duration_seconds{mode,route}`: arrival to response, what the client felt.
    pub request_duration: HistogramVec,
    /// `reclaimd_phase_seconds{mode,route,phase}`: per-request time in each phase.
    pub phase_seconds: HistogramVec,
    /// `reclaimd_phase_seconds_total{mode,phase}`: the same, summed, for stackable rates.
    pub phase_seconds_total: CounterVec,
    /// `reclaimd_requests_in_state{mode,state}`: requests queued|computing|waiting_db|runnable now.
    pub requests_in_state: IntGaugeVec,
    /// `reclaimd_queue_depth{mode}`: requests waiting for a worker (sync) or first poll (async).
    pub queue_depth: IntGaugeVec,
    /// `reclaimd_queue_capacity`: `limits.max_queue`.
    pub queue_capacity: IntGauge,
    /// `reclaimd_worker_seconds_total{mode,state}`: handler thread time busy|blocked|idle.
    pub worker_seconds_total: CounterVec,
    /// `reclaimd_reclaimed_seconds_total{mode}`: compute run while another request waited on the DB.
    pub reclaimed_seconds_total: CounterVec,
    /// `reclaimd_shed_total{mode,reason}`: requests refused with 503 (queue_full|in_flight|shutdown) or 504 (timeout).
    pub shed_total: IntCounterVec,
    /// `reclaimd_db_errors_total{operation,kind}`: failed MongoDB calls.
    pub db_errors_total: IntCounterVec,
    /// `reclaimd_mode{mode}`: 1 for the active mode, 0 for the other.
    pub mode: IntGaugeVec,
    /// `reclaimd_config_reloads_total{result}`: ok|error.
    pub config_reloads_total: IntCounterVec,
    /// `reclaimd_build_info{version}`: always 1.
    pub build_info: IntGaugeVec,
    sync: Arc<ModeMetrics>,
    async_: Arc<ModeMetrics>,
}

/// Handles for one mode, resolved once, used on every phase transition.
pub struct ModeMetrics {
    in_state: [IntGauge; 4],
    queue_depth: IntGauge,
    reclaimed: Counter,
    /// Integrates "at least one request of this mode waits on the DB".
    pub db_clock: DbWaitClock,
    worker: [Counter; 3],
}

/// Thread states of `reclaimd_worker_seconds_total`.
#[derive(Debug, Clone, Copy)]
pub enum WorkerState {
    Busy = 0,
    Blocked = 1,
    Idle = 2,
}

impl WorkerState {
    pub const ALL: [WorkerState; 3] = [WorkerState::Busy, WorkerState::Blocked, WorkerState::Idle];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Busy => "busy",
            WorkerState::Blocked => "blocked",
            WorkerState::Idle => "idle",
        }
    }
}

impl ModeMetrics {
    pub(crate) fn enter_state(&self, phase: Phase) {
        self.in_state[phase as usize].inc();
        if phase == Phase::Queue {
            self.queue_depth.inc();
        }
    }

    pub(crate) fn leave_state(&self, phase: Phase) {
        self.in_state[phase as usize].dec();
        if phase == Phase::Queue {
            self.queue_depth.dec();
        }
    }

    pub(crate) fn add_reclaimed(&self, d: Duration) {
        if !d.is_zero() {
            self.reclaimed.inc_by(d.as_secs_f64());
        }
    }

    /// Adds thread time in `state`.
    pub fn add_worker(&self, state: WorkerState, d: Duration) {
        if !d.is_zero() {
            self.worker[state as usize].inc_by(d.as_secs_f64());
        }
    }

    /// Requests of this mode in `phase` right now.
    pub fn in_state(&self, phase: Phase) -> i64 {
        self.in_state[phase as usize].get()
    }

    /// `reclaimd_reclaimed_seconds_total` for this mode.
    pub fn reclaimed_seconds(&self) -> f64 {
        self.reclaimed.get()
    }

    /// `reclaimd_worker_seconds_total` for this mode and state.
    pub fn worker_seconds(&self, state: WorkerState) -> f64 {
        self.worker[state as usize].get()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

impl Metrics {
    /// Creates the metrics in a fresh registry (one per daemon, so tests don't share state).
    pub fn new() -> Metrics {
        // The descriptions and label names are fixed and valid; failing here is a bug.
        Self::try_new().expect("metric definitions are valid")
    }

    fn try_new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let requests_total = IntCounterVec::new(
            opts(
                "requests_total",
                "App responses sent, by mode, route template and status.",
            ),
            &["mode", "route", "status"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::from(opts(
                "request_duration_seconds",
                "Arrival of the request head to response: the latency the client felt.",
            ))
            .buckets(DURATION_BUCKETS.to_vec()),
            &["mode", "route"],
        )?;
        let phase_seconds = HistogramVec::new(
            HistogramOpts::from(opts(
                "phase_seconds",
                "Per-request time in each phase: queue (waiting for a worker or first poll), compute (own code on a CPU), db (waiting on MongoDB), sched (runnable, waiting for the thread).",
            ))
            .buckets(DURATION_BUCKETS.to_vec()),
            &["mode", "route", "phase"],
        )?;
        let phase_seconds_total = CounterVec::new(
            opts(
                "phase_seconds_total",
                "Sum of per-request phase times, for stackable rates.",
            ),
            &["mode", "phase"],
        )?;
        let requests_in_state = IntGaugeVec::new(
            opts(
                "requests_in_state",
                "Requests in each state right now: queued, computing, waiting_db, runnable.",
            ),
            &["mode", "state"],
        )?;
        let queue_depth = IntGaugeVec::new(
            opts(
                "queue_depth",
                "Requests waiting for a worker thread (sync) or their first poll (async).",
            ),
            &["mode"],
        )?;
        let queue_capacity = IntGauge::with_opts(opts(
            "queue_capacity",
            "Requests allowed to wait before new ones are shed (limits.max_queue).",
        ))?;
        let worker_seconds_total = CounterVec::new(
            opts(
                "worker_seconds_total",
                "Handler thread time: busy (running code), blocked (parked in a driver call), idle.",
            ),
            &["mode", "state"],
        )?;
        let reclaimed_seconds_total = CounterVec::new(
            opts(
                "reclaimed_seconds_total",
                "Compute executed while at least one other request was waiting on MongoDB: waiting time made productive.",
            ),
            &["mode"],
        )?;
        let shed_total = IntCounterVec::new(
            opts(
                "shed_total",
                "Requests refused (503: queue_full, in_flight, shutdown) or timed out (504: timeout).",
            ),
            &["mode", "reason"],
        )?;
        let db_errors_total = IntCounterVec::new(
            opts(
                "db_errors_total",
                "Failed MongoDB calls, by operation and kind.",
            ),
            &["operation", "kind"],
        )?;
        let mode = IntGaugeVec::new(
            opts("mode", "1 for the active execution mode, 0 for the other."),
            &["mode"],
        )?;
        let config_reloads_total = IntCounterVec::new(
            opts(
                "config_reloads_total",
                "Config reloads, by result (ok, error).",
            ),
            &["result"],
        )?;
        let build_info = IntGaugeVec::new(
            opts("build_info", "Always 1; the version label names the build."),
            &["version"],
        )?;

        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(requests_total.clone()),
            Box::new(request_duration.clone()),
            Box::new(phase_seconds.clone()),
            Box::new(phase_seconds_total.clone()),
            Box::new(requests_in_state.clone()),
            Box::new(queue_depth.clone()),
            Box::new(queue_capacity.clone()),
            Box::new(worker_seconds_total.clone()),
            Box::new(reclaimed_seconds_total.clone()),
            Box::new(shed_total.clone()),
            Box::new(db_errors_total.clone()),
            Box::new(mode.clone()),
            Box::new(config_reloads_total.clone()),
            Box::new(build_info.clone()),
        ];
        for c in collectors {
            registry.register(c)?;
        }
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for result in ["ok", "error"] {
            config_reloads_total.with_label_values(&[result]).reset();
        }

        let mode_metrics = |m: Mode| -> Arc<ModeMetrics> {
            let mode = m.as_str();
            for phase in Phase::ALL {
                phase_seconds_total.with_label_values(&[mode, phase.as_str()]);
            }
            for reason in ["queue_full", "in_flight", "shutdown", "timeout"] {
                shed_total.with_label_values(&[mode, reason]);
            }
            Arc::new(ModeMetrics {
                in_state: Phase::ALL
                    .map(|p| requests_in_state.with_label_values(&[mode, p.state()])),
                queue_depth: queue_depth.with_label_values(&[mode]),
                reclaimed: reclaimed_seconds_total.with_label_values(&[mode]),
                db_clock: DbWaitClock::default(),
                worker: WorkerState::ALL
                    .map(|s| worker_seconds_total.with_label_values(&[mode, s.as_str()])),
            })
        };
        let sync = mode_metrics(Mode::Sync);
        let async_ = mode_metrics(Mode::Async);

        Ok(Metrics {
            registry,
            requests_total,
            request_duration,
            phase_seconds,
            phase_seconds_total,
            requests_in_state,
            queue_depth,
            queue_capacity,
            worker_seconds_total,
            reclaimed_seconds_total,
            shed_total,
            db_errors_total,
            mode,
            config_reloads_total,
            build_info,
            sync,
            async_,
        })
    }

    /// The per-mode handles.
    pub fn mode(&self, mode: Mode) -> &Arc<ModeMetrics> {
        match mode {
            Mode::Sync => &self.sync,
            Mode::Async => &self.async_,
        }
    }

    /// Marks `active` as the active mode.
    pub fn set_mode(&self, active: Mode) {
        for m in [Mode::Sync, Mode::Async] {
            self.mode
                .with_label_values(&[m.as_str()])
                .set(i64::from(m == active));
        }
    }

    /// Records a finished request: one response, its latency and its phases.
    pub fn observe_request(
        &self,
        mode: Mode,
        route: &str,
        status: u16,
        latency: Duration,
        timing: &Timing,
    ) {
        let m = mode.as_str();
        self.requests_total
            .with_label_values(&[m, route, status_label(status)])
            .inc();
        self.request_duration
            .with_label_values(&[m, route])
            .observe(latency.as_secs_f64());
        for phase in Phase::ALL {
            let secs = timing.get(phase).as_secs_f64();
            self.phase_seconds
                .with_label_values(&[m, route, phase.as_str()])
                .observe(secs);
            self.phase_seconds_total
                .with_label_values(&[m, phase.as_str()])
                .inc_by(secs);
        }
    }

    /// Registers another collector (runtime metrics) in this registry.
    pub fn register(&self, c: Box<dyn Collector>) -> prometheus::Result<()> {
        self.registry.register(c)
    }

    /// Every metric family, gathered now.
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        if let Err(e) = TextEncoder::new().encode(&self.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        500 => "500",
        503 => "503",
        504 => "504",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// Every metric family name the daemon exposes (histograms without `_bucket`/`_sum`/`_count`),
/// for the dashboard lint.
pub fn exported_metric_names() -> Vec<String> {
    let metrics = Metrics::new();
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() {
        let runtime = Runtime::new("handlers", rt.handle().clone(), None);
        let _ = metrics.register(Box::new(RuntimeCollector::new(vec![runtime])));
    }
    // Make every labelled family appear at least once.
    let t = Timing::default();
    for mode in [Mode::Sync, Mode::Async] {
        metrics.observe_request(mode, "/api/users/{id}", 200, Duration::ZERO, &t);
    }
    metrics
        .db_errors_total
        .with_label_values(&["find", "unavailable"]);
    metrics.set_mode(Mode::Sync);
    let mut names: Vec<String> = metrics
        .gather()
        .into_iter()
        .map(|f| f.name().to_string())
        .collect();
    names.sort();
    names
}

/// Exports tokio runtimes' stable metrics at scrape time, and the async handler runtime's
/// worker threads' busy and idle time as `reclaimd_worker_seconds_total{mode="async"}`
/// (from tokio's per-worker busy duration; async threads never block, by design).
pub struct RuntimeCollector {
    runtimes: Vec<Runtime>,
    workers: IntGaugeVec,
    alive_tasks: IntGaugeVec,
    global_queue_depth: IntGaugeVec,
}

/// One runtime watched by [`RuntimeCollector`].
pub struct Runtime {
    pub name: &'static str,
    pub handle: tokio::runtime::Handle,
    /// The mode whose worker seconds are this runtime's busy/idle time, if any.
    pub worker_time: Option<Arc<ModeMetrics>>,
    clock: Mutex<WorkerClock>,
}

impl Runtime {
    pub fn new(
        name: &'static str,
        handle: tokio::runtime::Handle,
        worker_time: Option<Arc<ModeMetrics>>,
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
    pub fn new(runtimes: Vec<Runtime>) -> RuntimeCollector {
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
    pub fn update(&self) {
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
                let mut c = rt.clock.lock().unwrap_or_else(|e| e.into_inner());
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
