//! `reclaimd load`: the open-loop load generator.
//!
//! One scheduler task walks a reproducible [`Schedule`] and, at each arrival's intended send
//! time, spawns the same request against every target. Latency is completion − intended send
//! time, so a server that falls behind is charged for the queue it builds (no coordinated
//! omission). The schedule never slows down: when a target's in-flight cap is reached the
//! request is counted as an `overflow` error instead of waiting.
//!
//! - [`schedule`]: arrival times, route mix, user ids.
//! - [`stats`]: per-target counts and histograms, the final table and the JSON report.

pub mod schedule;
pub mod stats;

use std::future::Future;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use schedule::{Arrival, Arrivals, Mix, Schedule};
pub use stats::{LoadReport, Outcome, TargetReport, TargetStats};

use crate::api::Route;
use crate::process::{self, EX_UNAVAILABLE, EX_USAGE};
use crate::server_timing::ServerTiming;

/// The in-flight cap's upper bound: each in-flight request may hold a connection (a file
/// descriptor), so a larger cap is a typo rather than a plan.
const MAX_IN_FLIGHT_LIMIT: u32 = 1_000_000;

/// Arguments of `reclaimd load`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Example:\n  reclaimd load --target http://127.0.0.1:8080 --rate 200 \
    --duration 30s --mix report=2,user=1\n\n\
    Once the schedule is played, the run waits for the requests still in flight, each for at \
    most --timeout, before printing the table.\n\n\
    Exit status: 0 when every target answered at least one request with a 2xx; 64 for bad \
    arguments (including an unwritable --json file); 69 when no request to some target \
    succeeded (nothing listening, every request failed or timed out)."
)]
pub struct LoadArgs {
    /// Base URL of a daemon's app listener; repeat to drive several targets with the identical
    /// schedule (a fair side-by-side).
    #[arg(long = "target", value_name = "URL", value_parser = parse_target,
          default_value = "http://127.0.0.1:8080")]
    pub targets: Vec<String>,
    /// Offered load in requests per second, per target.
    #[arg(long, value_name = "N", value_parser = parse_rate, default_value = "100")]
    pub rate: f64,
    /// How long to send, e.g. `30s`, `2m`, `500ms`; `0` runs until SIGINT/SIGTERM.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "30s")]
    pub duration: Duration,
    /// How arrivals are spaced.
    #[arg(long, value_enum, default_value_t = Arrivals::Poisson)]
    pub arrival: Arrivals,
    /// Route weights, e.g. `report=2,user=1,order=0` (routes: user, report, order).
    #[arg(long, value_name = "ROUTE=W,...", default_value = "user=1,report=1")]
    pub mix: Mix,
    /// User ids are drawn uniformly from 1..=N (`reclaimd seed` creates 1..=1000).
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub users: u64,
    /// Cap on requests in flight (and so on open connections) per target; requests due
    /// while the cap is reached are counted as `overflow` errors, never delayed.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_IN_FLIGHT_LIMIT)))]
    pub max_in_flight: u32,
    /// A request with no complete response after this long is counted as a `timeout` error.
    #[arg(long, value_name = "D", value_parser = parse_timeout, default_value = "30s")]
    pub timeout: Duration,
    /// Also write the final report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// RNG seed: the same seed gives the same schedule (default: random, printed).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Runtime threads of the generator itself (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

/// Validates a target base URL (`http://HOST[:PORT][/PREFIX]`) and drops a trailing slash.
pub fn parse_target(s: &str) -> Result<String, String> {
    let uri: hyper::Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => {
            return Err(format!(
                "{s:?}: only http:// targets are supported, not {other}://"
            ))
        }
        None => return Err(format!("{s:?} has no scheme: write it as http://HOST:PORT")),
    }
    if uri.authority().is_none() {
        return Err(format!("{s:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{s:?}: a target is a base URL and takes no query"));
    }
    Ok(s.trim_end_matches('/').to_string())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of requests per second"))?;
    if !rate.is_finite() || rate <= 0.0 {
        return Err(format!(
            "the rate must be above 0 requests per second, not {s}"
        ));
    }
    if rate > 10_000_000.0 {
        return Err(format!(
            "{s} requests per second is beyond what one process can send"
        ));
    }
    Ok(rate)
}

use crate::config::parse_duration;

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("the timeout must be above 0".to_string());
    }
    Ok(d)
}

/// How long an idle connection to a target is kept for reuse.
const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// A validated run: what to send, where, for how long.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Base URLs, without a trailing slash.
    pub targets: Vec<String>,
    /// Requests per second, per target.
    pub rate: f64,
    /// `None`: until the shutdown future completes.
    pub duration: Option<Duration>,
    /// How arrivals are spaced.
    pub arrivals: Arrivals,
    /// Route weights.
    pub mix: Mix,
    /// User ids are drawn from `1..=users`.
    pub users: u64,
    /// Cap on requests in flight per target.
    pub max_in_flight: u32,
    /// Per-request timeout.
    pub timeout: Duration,
    /// RNG seed of the schedule.
    pub seed: u64,
}

impl LoadPlan {
    /// The plan `reclaimd load` runs for these arguments.
    pub fn from_args(args: &LoadArgs) -> Self {
        LoadPlan {
            targets: args.targets.clone(),
            rate: args.rate,
            duration: (!args.duration.is_zero()).then_some(args.duration),
            arrivals: args.arrival,
            mix: args.mix,
            users: args.users,
            max_in_flight: args.max_in_flight,
            timeout: args.timeout,
            seed: args.seed.unwrap_or_else(rand::random),
        }
    }
}

/// Where the live progress line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// No progress output (tests).
    Off,
    /// Redraw one line on stderr every second.
    Redraw,
    /// A log line on stderr every 5 s (stderr is not a terminal).
    Log,
}

/// One target's connection pool, in-flight cap and counters.
struct TargetState {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    /// One permit per request in flight; `max_in_flight` permits in all.
    in_flight: Arc<Semaphore>,
    stats: Mutex<TargetStats>,
    /// When the last request finished; the run's wall time ends there.
    last_completion: Mutex<Option<Instant>>,
}

impl TargetState {
    fn new(base: &str, plan: &LoadPlan) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(plan.timeout));
        // HTTP/1.1 carries one request at a time per connection, so capping in-flight requests
        // caps connections too; the pool keeps them all reusable. An idle connection is
        // dropped well before the daemon drops it (`server.header_read_timeout`, 5 s by
        // default), so a request is never sent on a connection the server is closing.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(plan.max_in_flight as usize)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .build(connector);
        TargetState {
            base: base.to_string(),
            client,
            in_flight: Arc::new(Semaphore::new(plan.max_in_flight as usize)),
            stats: Mutex::new(TargetStats::default()),
            last_completion: Mutex::new(None),
        }
    }

    fn stats(&self) -> MutexGuard<'_, TargetStats> {
        self.stats.lock()
    }
}

/// Builds the HTTP request for one arrival.
pub fn build_request(base: &str, a: &Arrival) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
    let body = match a.route {
        Route::Order => Bytes::from(format!(
            r#"{{"user_id":{},"amount_cents":{}}}"#,
            a.user_id, a.amount_cents
        )),
        Route::User | Route::Report => Bytes::new(),
    };
    let user_id = i64::try_from(a.user_id).unwrap_or(i64::MAX);
    let mut builder = Request::builder()
        .method(a.route.method())
        .uri(format!("{base}{}", a.route.path(user_id)))
        .header(hyper::header::USER_AGENT, "reclaimd-load");
    if !body.is_empty() {
        builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
    }
    builder.body(Full::new(body))
}

/// Sends one request and records its outcome; `permit` holds its in-flight slot.
async fn send(
    target: Arc<TargetState>,
    arrival: Arrival,
    intended: Instant,
    timeout: Duration,
    permit: OwnedSemaphorePermit,
) {
    let sent_at = Instant::now();
    let exchange = async {
        let request = build_request(&target.base, &arrival).map_err(|_| Outcome::Io)?;
        let response = target.client.request(request).await.map_err(|e| {
            if e.is_connect() {
                Outcome::Connect
            } else {
                Outcome::Io
            }
        })?;
        let status = response.status();
        let timing = response.headers().get("server-timing").map(|v| {
            v.to_str()
                .map_err(|e| e.to_string())
                .and_then(ServerTiming::parse)
        });
        // The response is complete once its body is read; that also frees the connection.
        response
            .into_body()
            .collect()
            .await
            .map_err(|_| Outcome::Io)?;
        Ok::<_, Outcome>((status, timing))
    };
    let result = tokio::time::timeout(timeout, exchange).await;
    let done = Instant::now();
    let (outcome, timing) = match result {
        Err(_) => (Outcome::Timeout, None),
        Ok(Err(outcome)) => (outcome, None),
        Ok(Ok((status, timing))) if status.is_success() => (Outcome::Ok, timing),
        Ok(Ok((status, _))) => (Outcome::Status(status.as_u16()), None),
    };
    {
        let mut stats = target.stats();
        stats.record_sent(sent_at - intended);
        stats.record(arrival.route, &outcome, done - intended, timing);
    }
    let mut last = target.last_completion.lock();
    *last = Some(last.map_or(done, |l| l.max(done)));
    // Released only once the outcome is counted: the end of the run waits for all permits.
    drop(permit);
}

/// One target's share of the progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ProgressCounts {
    ok: u64,
    errors: u64,
    in_flight: u64,
    /// p50 and p99 over every 2xx response since the start.
    p50_p99: Option<(Duration, Duration)>,
}

impl ProgressCounts {
    fn of(t: &TargetState) -> Self {
        let s = t.stats();
        let errors = s.errors_total();
        ProgressCounts {
            ok: s.ok,
            errors,
            in_flight: s.scheduled.saturating_sub(s.ok + errors),
            p50_p99: s.p50_p99(),
        }
    }
}

/// At most four characters: `9999`, `123k`, `1.2M`, `123M`, `12G`, `1T+`.
fn fmt_count(n: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // a display rounding, of counts far below 2^52
    let x = n as f64;
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_499 => format!("{:.0}k", x / 1e3),
        999_500..=9_949_999 => format!("{:.1}M", x / 1e6),
        9_950_000..=999_499_999 => format!("{:.0}M", x / 1e6),
        999_500_000..=999_499_999_999 => format!("{:.0}G", x / 1e9),
        _ => "1T+".to_string(),
    }
}

/// The live progress line: per target, responses ok, errors, requests in flight, and the
/// latency p50/p99 of every 2xx response since the start (labelled so: they are cumulative,
/// not of the last second). Counts are abbreviated so that two targets fit in 120 columns.
fn progress_line(counts: &[ProgressCounts], since: Duration) -> String {
    let mut line = format!("t+{:>4.0}s", since.as_secs_f64());
    for (i, c) in counts.iter().enumerate() {
        line.push_str(&format!(
            "  [{}] {} ok {} err {} open",
            i + 1,
            fmt_count(c.ok),
            fmt_count(c.errors),
            fmt_count(c.in_flight),
        ));
        match c.p50_p99 {
            Some((p50, p99)) => line.push_str(&format!(
                " {}/{}",
                stats::fmt_duration(p50),
                stats::fmt_duration(p99)
            )),
            None => line.push_str(" -/-"),
        }
    }
    line.push_str("  p50/p99 since start");
    line
}

/// `30s`, `0.5s`: a duration as the user would write it on the command line.
fn humantime_secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn progress_now(targets: &[Arc<TargetState>], since: Duration) -> String {
    let counts: Vec<ProgressCounts> = targets.iter().map(|t| ProgressCounts::of(t)).collect();
    progress_line(&counts, since)
}

/// Runs the schedule against every target until its duration is played (or `shutdown`
/// completes), waits for the requests in flight, and returns the report.
pub async fn run_load(
    plan: LoadPlan,
    shutdown: impl Future<Output = ()>,
    progress: Progress,
) -> LoadReport {
    let targets: Vec<Arc<TargetState>> = plan
        .targets
        .iter()
        .map(|base| Arc::new(TargetState::new(base, &plan)))
        .collect();
    let start = Instant::now();

    let progress_task = (progress != Progress::Off).then(|| {
        let targets = targets.clone();
        tokio::spawn(async move {
            let period = match progress {
                Progress::Log => Duration::from_secs(5),
                _ => Duration::from_secs(1),
            };
            let mut tick = tokio::time::interval_at(start + period, period);
            loop {
                tick.tick().await;
                let line = progress_now(&targets, start.elapsed());
                if progress == Progress::Redraw {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        })
    });

    let schedule = Schedule::new(plan.arrivals, plan.rate, plan.mix, plan.users, plan.seed);
    tokio::pin!(shutdown);
    let mut played_until = plan.duration;
    let mut behind = 0u32;
    for arrival in schedule {
        if plan.duration.is_some_and(|d| arrival.at >= d) {
            break;
        }
        let intended = start + arrival.at;
        if Instant::now() < intended {
            behind = 0;
            tokio::select! {
                biased;
                () = &mut shutdown => {
                    played_until = Some(start.elapsed());
                    break;
                }
                () = tokio::time::sleep_until(intended) => {}
            }
        } else {
            // Running late: send at once, but let the requests and the signal in now and then.
            behind += 1;
            if behind.is_multiple_of(64) {
                tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        played_until = Some(start.elapsed());
                        break;
                    }
                    () = tokio::task::yield_now() => {}
                }
            }
        }
        for target in &targets {
            let permit = target.in_flight.clone().try_acquire_owned();
            let mut stats = target.stats();
            stats.scheduled += 1;
            match permit {
                Ok(permit) => {
                    drop(stats);
                    tokio::spawn(send(
                        target.clone(),
                        arrival,
                        intended,
                        plan.timeout,
                        permit,
                    ));
                }
                Err(_) => stats.record(arrival.route, &Outcome::Overflow, Duration::ZERO, None),
            }
        }
    }
    let played = played_until.unwrap_or_else(|| start.elapsed());

    // Requests still in flight are waited for, each at most `timeout`: that is why a run can
    // take longer than its --duration. A wait of more than a second is announced.
    let wait_start = Instant::now();
    let all_back = async {
        // All permits back means every request has finished (each is bounded by the timeout).
        for target in &targets {
            let _all = target.in_flight.acquire_many(plan.max_in_flight).await;
        }
    };
    tokio::pin!(all_back);
    let long_wait = tokio::time::timeout(Duration::from_secs(1), &mut all_back)
        .await
        .is_err();
    if long_wait {
        if progress != Progress::Off {
            let stragglers: usize = targets
                .iter()
                .map(|t| plan.max_in_flight as usize - t.in_flight.available_permits())
                .sum();
            eprintln!(
                "{}schedule played in {:.1}s; waiting for {stragglers} request(s) still in \
                 flight (each for at most --timeout {})",
                if progress == Progress::Redraw {
                    "\r\x1b[2K"
                } else {
                    ""
                },
                played.as_secs_f64(),
                humantime_secs(plan.timeout),
            );
        }
        all_back.await;
    }
    if let Some(task) = progress_task {
        task.abort();
        if progress == Progress::Redraw {
            eprintln!("\r\x1b[2K{}", progress_now(&targets, start.elapsed()));
        }
        if long_wait {
            eprintln!(
                "waited {:.1}s after the schedule for the last responses",
                wait_start.elapsed().as_secs_f64()
            );
        }
    }

    let reports = targets
        .iter()
        .map(|t| {
            let last = t.last_completion.lock();
            let end = last.map_or(start + played, |l| l.max(start + played));
            t.stats().report(&t.base, end - start, played.as_secs_f64())
        })
        .collect();
    LoadReport {
        rate: plan.rate,
        arrivals: plan.arrivals,
        mix: plan.mix.to_string(),
        users: plan.users,
        seed: plan.seed,
        max_in_flight: plan.max_in_flight as usize,
        duration_s: played.as_secs_f64(),
        targets: reports,
    }
}

/// Runs `reclaimd load`.
pub fn run(args: LoadArgs) -> ExitCode {
    let plan = LoadPlan::from_args(&args);
    // Fail on an unwritable --json before sending anything, not after a long run.
    let json_file = match &args.json {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some((path.clone(), f)),
            Err(e) => {
                eprintln!("error: cannot write --json {}: {e}", path.display());
                return ExitCode::from(EX_USAGE);
            }
        },
        None => None,
    };
    let runtime = match process::runtime("", args.threads.map(usize::from)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let progress = if std::io::stderr().is_terminal() {
        Progress::Redraw
    } else {
        Progress::Log
    };
    eprintln!(
        "reclaimd load: {} req/s per target ({:?} arrivals) {}, seed {}, targets: {}",
        plan.rate,
        plan.arrivals,
        match plan.duration {
            Some(d) => format!("for {:.1}s", d.as_secs_f64()),
            None => "until SIGINT/SIGTERM (Ctrl-C)".to_string(),
        },
        plan.seed,
        plan.targets.join(" ")
    );
    // The scheduler runs on a runtime thread so `--threads N` is the whole generator.
    let report = runtime.block_on(async move {
        tokio::spawn(run_load(plan, process::shutdown_signal(), progress)).await
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the load run failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{report}");
    if let Some((path, file)) = json_file {
        if let Err(e) = serde_json::to_writer_pretty(std::io::BufWriter::new(file), &report) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let dead = dead_targets(&report);
    for warning in &dead {
        eprintln!("{warning}");
    }
    if dead.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EX_UNAVAILABLE)
    }
}

/// One loud line per target that was sent requests and answered none with a 2xx: a table
/// of errors alone is easy to mistake for a result.
pub fn dead_targets(report: &LoadReport) -> Vec<String> {
    report
        .targets
        .iter()
        .filter(|t| t.scheduled > 0 && t.ok == 0)
        .map(|t| {
            let errors: Vec<String> = t.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let hint = if t.errors.contains_key("connect") {
                ": is a daemon listening at that address?"
            } else if t.errors.contains_key("timeout") {
                ": it did not answer within --timeout"
            } else {
                ""
            };
            format!(
                "WARNING: no request to {} succeeded ({} scheduled; errors: {}){hint}",
                t.url,
                t.scheduled,
                if errors.is_empty() {
                    "none".to_string()
                } else {
                    errors.join(", ")
                }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Method;

    #[test]
    fn validates_targets_and_rates() {
        assert_eq!(
            parse_target("http://127.0.0.1:8080/"),
            Ok("http://127.0.0.1:8080".into())
        );
        for bad in [
            "127.0.0.1:8080",
            "https://x",
            "ftp://x",
            "http://",
            "http://x/?a=1",
        ] {
            assert!(parse_target(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn builds_each_route() {
        let a = |route| Arrival {
            at: Duration::ZERO,
            route,
            user_id: 7,
            amount_cents: 1234,
        };
        let r = build_request("http://h:1", &a(Route::User)).unwrap();
        assert_eq!(
            (r.method(), r.uri().to_string()),
            (&Method::GET, "http://h:1/api/users/7".into())
        );
        let r = build_request("http://h:1", &a(Route::Report)).unwrap();
        assert_eq!(r.uri().path(), "/api/users/7/report");
        let r = build_request("http://h:1", &a(Route::Order)).unwrap();
        assert_eq!((r.method(), r.uri().path()), (&Method::POST, "/api/orders"));
        let body: Bytes = futures_body(r.into_body());
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"user_id": 7, "amount_cents": 1234})
        );
    }

    #[test]
    fn counts_fit_in_four_characters() {
        for (n, shown) in [
            (0, "0"),
            (9_999, "9999"),
            (10_000, "10k"),
            (999_499, "999k"),
            (999_500, "1.0M"),
            (1_234_567, "1.2M"),
            (9_949_999, "9.9M"),
            (9_950_000, "10M"),
            (999_499_999, "999M"),
            (999_500_000, "1G"),
            (u64::MAX, "1T+"),
        ] {
            assert_eq!(fmt_count(n), shown, "{n}");
        }
        for n in [0, 7, 99_999, 5_555_555, 123_456_789, u64::MAX] {
            assert!(fmt_count(n).chars().count() <= 4, "{n}: {}", fmt_count(n));
        }
    }

    #[test]
    fn progress_line_labels_cumulative_percentiles_and_fits_two_targets_in_120_columns() {
        let busy = ProgressCounts {
            ok: 123_456_789,
            errors: 98_765_432,
            in_flight: 999_999,
            p50_p99: Some((Duration::from_millis(12_345), Duration::from_millis(29_999))),
        };
        let line = progress_line(&[busy, busy], Duration::from_secs(9_999));
        assert!(
            line.chars().count() <= 120,
            "{} columns: {line}",
            line.len()
        );
        assert!(line.ends_with("p50/p99 since start"), "{line}");
        assert!(
            line.contains("[1] 123M ok 99M err 1.0M open 12.3s/30.0s"),
            "{line}"
        );

        let quiet = ProgressCounts {
            ok: 230,
            errors: 0,
            in_flight: 10,
            p50_p99: Some((Duration::from_micros(12_300), Duration::from_micros(45_600))),
        };
        let line = progress_line(&[quiet, ProgressCounts::default()], Duration::from_secs(12));
        assert_eq!(
            line,
            "t+  12s  [1] 230 ok 0 err 10 open 12.3ms/45.6ms  [2] 0 ok 0 err 0 open -/-  \
             p50/p99 since start"
        );
    }

    fn futures_body(body: Full<Bytes>) -> Bytes {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(body.collect())
            .map(|c| c.to_bytes())
            .unwrap_or_default()
    }
}
