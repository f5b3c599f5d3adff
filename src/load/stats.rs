//! Per-target accounting: counts, HDR latency histograms, server-side phase sums, the
//! headline (reclaimed share of compute, per mode), and the report (table and JSON) built
//! from them.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::api::Mode;
use crate::api::Route;
use crate::server_timing::ServerTiming;

/// Histograms count microseconds, from 1 µs to one hour, at 3 significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

#[allow(
    clippy::expect_used,
    reason = "constant bounds that hdrhistogram accepts"
)]
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// How one scheduled request ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A 2xx response, body fully read.
    Ok,
    /// A non-2xx response (e.g. 503 when the daemon sheds load).
    Status(u16),
    /// Not sent: the target's in-flight cap was reached when the request came due.
    Overflow,
    /// No connection could be made.
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection failed mid-request.
    Io,
}

impl Outcome {
    /// The key under which errors are counted (`"503"`, `"overflow"`, ...).
    pub fn error_key(&self) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::Status(s) => Some(s.to_string()),
            Outcome::Overflow => Some("overflow".into()),
            Outcome::Connect => Some("connect".into()),
            Outcome::Timeout => Some("timeout".into()),
            Outcome::Io => Some("io".into()),
        }
    }
}

/// Running sums of the server-side phases of responses that carried `Server-Timing`.
#[derive(Debug, Clone, Default)]
struct PhaseSums {
    count: u64,
    queue: f64,
    compute: f64,
    db: f64,
    sched: f64,
    total: f64,
}

/// Per mode: the headline sums over responses whose `Server-Timing` named the mode and
/// carried `reclaimed`.
#[derive(Debug, Clone, Copy, Default)]
struct ReclaimSums {
    responses: u64,
    compute: f64,
    reclaimed: f64,
    db: f64,
}

fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Sync => 0,
        Mode::Async => 1,
    }
}

/// Everything counted for one target while the run goes on.
#[derive(Debug, Clone)]
pub struct TargetStats {
    /// Requests that came due on the schedule (sent or not).
    pub scheduled: u64,
    /// Requests answered with a 2xx.
    pub ok: u64,
    /// Failed requests by kind (`connect`, `timeout`, `503`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Completion − intended send time of 2xx responses.
    pub latency: Histogram<u64>,
    /// Actual send time − intended send time, of requests that were sent.
    pub lateness: Histogram<u64>,
    by_route: BTreeMap<Route, Histogram<u64>>,
    phases: PhaseSums,
    /// Indexed by [`mode_index`].
    reclaim: [ReclaimSums; 2],
    bad_server_timing: u64,
    mode: Option<Mode>,
}

impl Default for TargetStats {
    fn default() -> Self {
        TargetStats {
            scheduled: 0,
            ok: 0,
            errors: BTreeMap::new(),
            latency: histogram(),
            lateness: histogram(),
            by_route: BTreeMap::new(),
            phases: PhaseSums::default(),
            reclaim: [ReclaimSums::default(); 2],
            bad_server_timing: 0,
            mode: None,
        }
    }
}

impl TargetStats {
    /// Failed requests of every kind.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Records how late a request was sent after its intended time.
    pub fn record_sent(&mut self, lateness: Duration) {
        self.lateness.saturating_record(micros(lateness));
    }

    /// Records a finished request. `latency` is measured from the intended send time.
    pub fn record(
        &mut self,
        route: Route,
        outcome: &Outcome,
        latency: Duration,
        timing: Option<Result<ServerTiming, String>>,
    ) {
        match outcome.error_key() {
            None => {
                self.ok += 1;
                self.latency.saturating_record(micros(latency));
                self.by_route
                    .entry(route)
                    .or_insert_with(histogram)
                    .saturating_record(micros(latency));
            }
            Some(key) => *self.errors.entry(key).or_default() += 1,
        }
        match timing {
            Some(Ok(t)) => {
                let p = &mut self.phases;
                p.count += 1;
                p.queue += t.queue.as_secs_f64();
                p.compute += t.compute.as_secs_f64();
                p.db += t.db.as_secs_f64();
                p.sched += t.sched.as_secs_f64();
                p.total += t.total.as_secs_f64();
                if t.mode.is_some() {
                    self.mode = t.mode;
                }
                if let (Some(mode), Some(reclaimed)) = (t.mode, t.reclaimed) {
                    let r = &mut self.reclaim[mode_index(mode)];
                    r.responses += 1;
                    r.compute += t.compute.as_secs_f64();
                    r.reclaimed += reclaimed.as_secs_f64();
                    r.db += t.db.as_secs_f64();
                }
            }
            Some(Err(_)) => self.bad_server_timing += 1,
            None => {}
        }
    }

    /// p50 and p99 so far, for the progress line.
    pub fn p50_p99(&self) -> Option<(Duration, Duration)> {
        (!self.latency.is_empty()).then(|| {
            (
                Duration::from_micros(self.latency.value_at_quantile(0.50)),
                Duration::from_micros(self.latency.value_at_quantile(0.99)),
            )
        })
    }

    /// Freezes the stats into a report. `elapsed` is the wall time from the start of the run
    /// to the last completion; `offered_secs` is the span of the schedule that was played.
    pub fn report(&self, url: &str, elapsed: Duration, offered_secs: f64) -> TargetReport {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let p = &self.phases;
        let mean = |sum: f64| {
            if p.count == 0 {
                0.0
            } else {
                sum / p.count as f64 * 1e3
            }
        };
        TargetReport {
            url: url.to_string(),
            mode: self.mode,
            scheduled: self.scheduled,
            sent: self.scheduled - self.errors.get("overflow").copied().unwrap_or(0),
            ok: self.ok,
            errors_total: self.errors_total(),
            errors: self.errors.clone(),
            elapsed_s: secs,
            offered_rps: if offered_secs > 0.0 {
                self.scheduled as f64 / offered_secs
            } else {
                0.0
            },
            throughput_rps: self.ok as f64 / secs,
            latency_ms: Percentiles::of(&self.latency),
            lateness_ms: Percentiles::of(&self.lateness),
            routes: self
                .by_route
                .iter()
                .map(|(r, h)| (*r, Percentiles::of(h)))
                .collect(),
            server_timing_ms: PhaseMeans {
                responses: p.count,
                unparsable: self.bad_server_timing,
                queue: mean(p.queue),
                compute: mean(p.compute),
                db: mean(p.db),
                sched: mean(p.sched),
                total: mean(p.total),
            },
            headline: Mode::ALL
                .into_iter()
                .filter_map(|mode| Headline::of(mode, &self.reclaim[mode_index(mode)], secs))
                .collect(),
        }
    }
}

/// The headline for one mode of one target, from the `Server-Timing` of its 2xx responses.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Headline {
    /// The mode the responses were served in.
    pub mode: Mode,
    /// 2xx responses served in this mode whose `Server-Timing` carried `reclaimed`.
    pub responses: u64,
    /// Σ compute of those responses, in seconds.
    pub compute_s: f64,
    /// Σ reclaimed: the part of that compute that ran while another request of the same mode
    /// was waiting on MongoDB, in seconds.
    pub reclaimed_s: f64,
    /// Reclaimed share of compute: `reclaimed_s / compute_s` (0 when there was no compute).
    pub reclaimed_share: f64,
    /// Σ DB wait of those responses, in seconds.
    pub db_s: f64,
    /// Handler threads parked in DB calls, on average over the run: in sync mode each DB wait
    /// parks its worker thread (`db_s` ÷ run time); async threads never park (0).
    pub parked_threads: f64,
}

impl Headline {
    fn of(mode: Mode, r: &ReclaimSums, elapsed_s: f64) -> Option<Headline> {
        (r.responses > 0).then(|| Headline {
            mode,
            responses: r.responses,
            compute_s: r.compute,
            reclaimed_s: r.reclaimed,
            reclaimed_share: if r.compute > 0.0 {
                (r.reclaimed / r.compute).clamp(0.0, 1.0)
            } else {
                0.0
            },
            db_s: r.db,
            parked_threads: match mode {
                Mode::Sync => r.db / elapsed_s,
                Mode::Async => 0.0,
            },
        })
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// Requests measured.
    pub count: u64,
    /// Mean, in milliseconds.
    pub mean: f64,
    /// Median, in milliseconds.
    pub p50: f64,
    /// 90th percentile, in milliseconds.
    pub p90: f64,
    /// 99th percentile, in milliseconds.
    pub p99: f64,
    /// 99.9th percentile, in milliseconds.
    pub p999: f64,
    /// Maximum, in milliseconds.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1e3;
        if h.is_empty() {
            return Percentiles {
                count: 0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1e3,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Means of the server-side phases (ms) over the responses that carried `Server-Timing`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseMeans {
    /// Responses that carried a `Server-Timing` header.
    pub responses: u64,
    /// Headers that could not be parsed.
    pub unparsable: u64,
    /// Mean queue time, in milliseconds.
    pub queue: f64,
    /// Mean compute time, in milliseconds.
    pub compute: f64,
    /// Mean DB wait, in milliseconds.
    pub db: f64,
    /// Mean sched time, in milliseconds.
    pub sched: f64,
    /// Mean handler total, in milliseconds.
    pub total: f64,
}

/// The final numbers for one target.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TargetReport {
    /// The target's base URL.
    pub url: String,
    /// The mode named by the target's `Server-Timing` headers, if any.
    pub mode: Option<Mode>,
    /// Requests that came due; `scheduled == ok + errors_total` once the run is over.
    pub scheduled: u64,
    /// Requests actually sent (scheduled minus overflow).
    pub sent: u64,
    /// Requests answered with a 2xx.
    pub ok: u64,
    /// Requests that failed, of every kind.
    pub errors_total: u64,
    /// Errors by HTTP status (`"503"`) or by kind (`overflow`, `connect`, `timeout`, `io`).
    pub errors: BTreeMap<String, u64>,
    /// Wall time from the first send to the last completion, in seconds.
    pub elapsed_s: f64,
    /// Requests scheduled per second of schedule played.
    pub offered_rps: f64,
    /// 2xx responses per second of wall time.
    pub throughput_rps: f64,
    /// Of 2xx responses, from the intended send time (coordinated omission corrected).
    pub latency_ms: Percentiles,
    /// How late the generator itself sent requests (its own overhead; should stay small).
    pub lateness_ms: Percentiles,
    /// Latency percentiles of successful requests, per route.
    pub routes: BTreeMap<Route, Percentiles>,
    /// Means of the `Server-Timing` phases of successful requests.
    pub server_timing_ms: PhaseMeans,
    /// The reclaimed share of compute and the threads parked in DB calls, per mode served
    /// (two entries when the target flipped during the run), from `Server-Timing`.
    pub headline: Vec<Headline>,
}

/// The whole run's report, as printed and as written by `--json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadReport {
    /// Offered requests per second, per target.
    pub rate: f64,
    /// How arrivals were spaced.
    pub arrivals: super::schedule::Arrivals,
    /// Route weights, as given.
    pub mix: String,
    /// User ids were drawn from `1..=users`.
    pub users: u64,
    /// RNG seed of the schedule.
    pub seed: u64,
    /// Cap on requests in flight per target.
    pub max_in_flight: usize,
    /// Schedule span actually played (shorter than `--duration` after SIGINT).
    pub duration_s: f64,
    /// One report per target, in command-line order.
    pub targets: Vec<TargetReport>,
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1}s", ms / 1e3)
    } else if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else if ms >= 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{ms:.2}ms")
    }
}

/// Short human duration for the progress line.
pub fn fmt_duration(d: Duration) -> String {
    fmt_ms(d.as_secs_f64() * 1e3)
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(s, "{cell:<w$}");
            } else {
                let _ = write!(s, "  {cell:>w$}");
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(out, &mut header.iter().copied());
    for row in rows {
        line(out, &mut row.iter().map(String::as_str));
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} arrivals at {} req/s per target for {:.1}s, mix {}, users 1..={}, seed {}",
            match self.arrivals {
                super::schedule::Arrivals::Constant => "constant",
                super::schedule::Arrivals::Poisson => "poisson",
            },
            self.rate,
            self.duration_s,
            self.mix,
            self.users,
            self.seed
        );
        out.push_str("latency is from each request's intended send time, over 2xx responses\n\n");
        let name = |i: usize, t: &TargetReport| match t.mode {
            Some(m) => format!("[{}] {} ({m})", i + 1, t.url),
            None => format!("[{}] {}", i + 1, t.url),
        };
        let rows: Vec<Vec<String>> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let l = &t.latency_ms;
                let mut row = vec![
                    name(i, t),
                    t.scheduled.to_string(),
                    t.ok.to_string(),
                    t.errors_total.to_string(),
                    format!("{:.1}", t.throughput_rps),
                ];
                for v in [l.p50, l.p90, l.p99, l.p999, l.max] {
                    row.push(if l.count == 0 { "-".into() } else { fmt_ms(v) });
                }
                row
            })
            .collect();
        table(
            &mut out,
            &[
                "target", "sent", "ok", "errors", "req/s", "p50", "p90", "p99", "p99.9", "max",
            ],
            &rows,
        );
        for (i, t) in self.targets.iter().enumerate() {
            // The generator's own delay is inside every latency above; say when it matters.
            if t.lateness_ms.p99 > 10.0 {
                let _ = writeln!(
                    out,
                    "note: [{}] the generator itself sent late (lateness p99 {}, max {}); \
                     latencies include that delay",
                    i + 1,
                    fmt_ms(t.lateness_ms.p99),
                    fmt_ms(t.lateness_ms.max)
                );
            }
        }
        out.push('\n');
        out.push_str("errors by status / kind:\n");
        for (i, t) in self.targets.iter().enumerate() {
            let errors = if t.errors.is_empty() {
                "none".to_string()
            } else {
                t.errors
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(out, "[{}] {errors}", i + 1);
        }
        out.push('\n');
        let rows: Vec<Vec<String>> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let p = &t.server_timing_ms;
                if p.responses == 0 {
                    let mut row = vec![format!("[{}]", i + 1), "0".into()];
                    row.extend(std::iter::repeat_n("-".to_string(), 5));
                    return row;
                }
                vec![
                    format!("[{}]", i + 1),
                    p.responses.to_string(),
                    fmt_ms(p.queue),
                    fmt_ms(p.compute),
                    fmt_ms(p.db),
                    fmt_ms(p.sched),
                    fmt_ms(p.total),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "server phases (mean)",
                "responses",
                "queue",
                "compute",
                "db",
                "sched",
                "total",
            ],
            &rows,
        );
        out.push('\n');
        render_headline(&mut out, &self.targets);
        f.write_str(&out)
    }
}

/// The headline table: per target and mode, the reclaimed share of compute and the threads
/// parked in DB calls.
fn render_headline(out: &mut String, targets: &[TargetReport]) {
    let mut rows = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        if t.headline.is_empty() {
            rows.push(
                [format!("[{}]", i + 1), "-".into(), "0".into()]
                    .into_iter()
                    .chain(std::iter::repeat_n("-".to_string(), 4))
                    .collect::<Vec<_>>(),
            );
        }
        for h in &t.headline {
            rows.push(vec![
                format!("[{}]", i + 1),
                h.mode.to_string(),
                h.responses.to_string(),
                format!("{:.2}s", h.compute_s),
                format!("{:.2}s", h.reclaimed_s),
                format!("{:.1}%", h.reclaimed_share * 100.0),
                format!("{:.2}", h.parked_threads),
            ]);
        }
    }
    table(
        out,
        &[
            "reclaimed waiting time",
            "mode",
            "responses",
            "compute",
            "reclaimed",
            "share of compute",
            "threads parked in DB calls",
        ],
        &rows,
    );
    out.push_str(
        "share of compute = Σ reclaimed ÷ Σ compute: the compute that ran while another request \
         was waiting on MongoDB\n(0 with one sync worker). threads parked = Σ DB wait ÷ run \
         time in sync mode, where each DB wait parks a worker;\n0 in async mode. From the \
         Server-Timing of 2xx responses.\n",
    );
}
