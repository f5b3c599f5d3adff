//! Every Prometheus metric the daemon exports, in one struct.
//!
//! Names are in base units under the `reclaimd` namespace. Label sets are small and bounded:
//! `mode` ∈ sync|async, `route` is the route template, `phase` ∈ queue|compute|db|sched,
//! `state` is a fixed set per metric. Per-response metrics are recorded by the HTTP layer
//! ([`Metrics::observe_request`]); live counts (requests in each state, reclaimed time,
//! worker time) are read from the measurement core's [`Stats`] at scrape time. Nothing here
//! depends on span sampling.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    CounterVec, Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Registry, TextEncoder,
};

use crate::api::Mode;
use crate::observe::measure::{ModeStats, Phase, Stats, Timing, WorkerState};
use crate::observe::prom::{advance_to, opts};

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
    /// `reclaimd_queue_capacity`: `limits.max_queue`.
    pub queue_capacity: IntGauge,
    /// `reclaimd_shed_total{mode,reason}`: requests refused with 503 (queue_wait|queue_full|in_flight|shutdown) or 504 (timeout).
    pub shed_total: IntCounterVec,
    /// `reclaimd_db_errors_total{operation,kind}`: failed MongoDB calls.
    pub db_errors_total: IntCounterVec,
    /// `reclaimd_mode{mode}`: 1 for the active mode, 0 for the other.
    pub mode: IntGaugeVec,
    /// `reclaimd_config_reloads_total{result}`: ok|error.
    pub config_reloads_total: IntCounterVec,
    /// `reclaimd_build_info{version}`: always 1.
    pub build_info: IntGaugeVec,
    /// The measurement core's live counts, exported by [`StatsCollector`].
    stats: Arc<Stats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the metrics in a fresh registry (one per daemon, so tests don't share state).
    #[allow(
        clippy::expect_used,
        reason = "fixed, valid definitions: failing here is a bug"
    )]
    pub fn new() -> Metrics {
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
        let queue_capacity = IntGauge::with_opts(opts(
            "queue_capacity",
            "Requests allowed to wait before new ones are shed (limits.max_queue).",
        ))?;
        let shed_total = IntCounterVec::new(
            opts(
                "shed_total",
                "Requests refused with 503 (queue_wait: predicted wait over the budget; queue_full; in_flight; shutdown) or timed out with 504 (timeout).",
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
            Box::new(queue_capacity.clone()),
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
            crate::observe::process::ProcessCollector::for_self()?,
        ))?;

        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for result in ["ok", "error"] {
            config_reloads_total.with_label_values(&[result]).reset();
        }

        for mode in Mode::ALL.map(Mode::as_str) {
            for phase in Phase::ALL {
                phase_seconds_total.with_label_values(&[mode, phase.as_str()]);
            }
            for reason in [
                "queue_wait",
                "queue_full",
                "in_flight",
                "shutdown",
                "timeout",
            ] {
                shed_total.with_label_values(&[mode, reason]);
            }
        }
        let stats = Arc::new(Stats::default());
        registry.register(Box::new(StatsCollector::new(stats.clone())?))?;

        Ok(Metrics {
            registry,
            requests_total,
            request_duration,
            phase_seconds,
            phase_seconds_total,
            queue_capacity,
            shed_total,
            db_errors_total,
            mode,
            config_reloads_total,
            build_info,
            stats,
        })
    }

    /// The measurement core's live counts of `mode`, which trackers update.
    pub fn stats(&self, mode: Mode) -> &Arc<ModeStats> {
        self.stats.mode(mode)
    }

    /// Marks `active` as the active mode.
    pub fn set_mode(&self, active: Mode) {
        for m in Mode::ALL {
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
        408 => "408",
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

/// Exports the measurement core's [`Stats`] at scrape time: requests in each state, queue
/// depth, reclaimed and compute time, and handler thread time.
///
/// The two headline measures are ratios and rates of these counters (README, *What is
/// measured*):
/// - reclaimed share of compute = `rate(reclaimd_reclaimed_seconds_total)` ÷
///   `rate(reclaimd_compute_seconds_total)`;
/// - handler threads parked in DB calls = `rate(reclaimd_worker_seconds_total{state="blocked"})`.
struct StatsCollector {
    stats: Arc<Stats>,
    requests_in_state: IntGaugeVec,
    queue_depth: IntGaugeVec,
    reclaimed_seconds_total: CounterVec,
    compute_seconds_total: CounterVec,
    worker_seconds_total: CounterVec,
    /// Serialises scrapes: counters are advanced by the difference since the last one.
    scrape: Mutex<()>,
}

impl StatsCollector {
    fn new(stats: Arc<Stats>) -> prometheus::Result<StatsCollector> {
        let c = StatsCollector {
            stats,
            requests_in_state: IntGaugeVec::new(
                opts(
                    "requests_in_state",
                    "Requests in each state right now: queued, computing, waiting_db, runnable.",
                ),
                &["mode", "state"],
            )?,
            queue_depth: IntGaugeVec::new(
                opts(
                    "queue_depth",
                    "Requests waiting for a worker thread (sync) or their first poll (async).",
                ),
                &["mode"],
            )?,
            reclaimed_seconds_total: CounterVec::new(
                opts(
                    "reclaimed_seconds_total",
                    "Compute seconds that ran while at least one other request of the same mode was waiting on MongoDB: waiting time made productive. Reclaimed share of compute = rate(this) / rate(reclaimd_compute_seconds_total): 0 with one sync worker.",
                ),
                &["mode"],
            )?,
            compute_seconds_total: CounterVec::new(
                opts(
                    "compute_seconds_total",
                    "Compute seconds of this mode's requests, credited as each compute segment ends, together with reclaimd_reclaimed_seconds_total (which never exceeds it); reclaimd_phase_seconds_total{phase=\"compute\"} counts the same time when each request ends.",
                ),
                &["mode"],
            )?,
            worker_seconds_total: CounterVec::new(
                opts(
                    "worker_seconds_total",
                    "Handler thread time: busy (running code), blocked (parked inside a MongoDB call; sync mode only, async threads never block), idle. rate(...{state=\"blocked\"}) = handler threads parked in DB calls, on average.",
                ),
                &["mode", "state"],
            )?,
            scrape: Mutex::new(()),
        };
        c.update();
        Ok(c)
    }

    fn update(&self) {
        let _one_at_a_time = self.scrape.lock();
        for mode in Mode::ALL {
            let s = self.stats.mode(mode);
            let m = mode.as_str();
            for phase in Phase::ALL {
                self.requests_in_state
                    .with_label_values(&[m, phase.state()])
                    .set(s.in_phase(phase));
            }
            self.queue_depth
                .with_label_values(&[m])
                .set(s.in_phase(Phase::Queue));
            let (reclaimed, compute) = s.reclaimed_and_compute();
            advance_to(
                &self.reclaimed_seconds_total.with_label_values(&[m]),
                reclaimed,
            );
            advance_to(&self.compute_seconds_total.with_label_values(&[m]), compute);
            for state in WorkerState::ALL {
                advance_to(
                    &self
                        .worker_seconds_total
                        .with_label_values(&[m, state.as_str()]),
                    s.worker(state),
                );
            }
        }
    }
}

impl Collector for StatsCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.requests_in_state.desc();
        d.extend(self.queue_depth.desc());
        d.extend(self.reclaimed_seconds_total.desc());
        d.extend(self.compute_seconds_total.desc());
        d.extend(self.worker_seconds_total.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.update();
        let mut f = self.requests_in_state.collect();
        f.extend(self.queue_depth.collect());
        f.extend(self.reclaimed_seconds_total.collect());
        f.extend(self.compute_seconds_total.collect());
        f.extend(self.worker_seconds_total.collect());
        f
    }
}
