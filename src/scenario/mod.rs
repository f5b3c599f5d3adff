//! `reclaimd scenario`: replays fixed request patterns against a running daemon and prints
//! a timeline.
//!
//! `lecture` is the three-request example of the lecture in `seed/`: two long requests
//! (`report`) and one quick one (`user`) arrive together. Each is first sent alone to measure
//! its natural time; then all three are sent at once, in order, each on its own connection,
//! and every request's perceived time is drawn next to its natural time with its
//! queue / db / compute split from `Server-Timing`, and the run's headline: the share of
//! compute that ran while another request waited on MongoDB (Σ reclaimed ÷ Σ compute).
//!
//! - [`gantt`]: the text Gantt chart.

pub mod gantt;

use std::fmt::{self, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::api::{Mode, Route};
use crate::load::stats::fmt_duration as fmt_ms;
use crate::observe::measure::Phase;
use crate::process;
use crate::server_timing::ServerTiming;
use gantt::GanttRow;

/// Arguments of `reclaimd scenario`.
#[derive(Debug, clap::Args)]
pub struct ScenarioArgs {
    #[command(subcommand)]
    /// Which scenario to replay.
    pub scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, clap::Subcommand)]
pub enum Scenario {
    /// The lecture's three requests: two long (report) and one quick (user) sent at the same
    /// instant; prints each one's queue/db/compute timeline and its perceived vs natural time.
    Lecture(LectureArgs),
}

/// Arguments of `reclaimd scenario lecture`.
#[derive(Debug, clap::Args)]
pub struct LectureArgs {
    /// Base URL of the daemon's app listener.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080",
          value_parser = crate::load::parse_target, conflicts_with = "compare")]
    pub target: String,
    /// Run against a sync and an async daemon, one after the other, and print both side by
    /// side on the same time axis.
    #[arg(long, num_args = 2, value_names = ["SYNC_URL", "ASYNC_URL"], value_parser = crate::load::parse_target)]
    pub compare: Option<Vec<String>>,
    /// Gap between the three sends, so they reach the server in the lecture's order.
    #[arg(long, value_name = "D", default_value = "1ms", value_parser = crate::config::parse_duration)]
    pub stagger: Duration,
    /// Width of the chart in columns.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(10..=1000))]
    pub width: u16,
    /// Give up on a request after this long.
    #[arg(long, value_name = "D", default_value = "30s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
}

/// Why a scenario could not run.
#[derive(Debug)]
pub struct ScenarioError(String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

fn err(msg: impl Into<String>) -> ScenarioError {
    ScenarioError(msg.into())
}

/// One of the lecture's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LectureRequest {
    /// 1, 2, 3: the order they are sent in.
    pub number: usize,
    /// Which route it hits.
    pub route: Route,
    /// Which user it is for.
    pub user_id: i64,
}

impl LectureRequest {
    fn path(&self) -> String {
        self.route.path(self.user_id)
    }

    fn label(&self) -> String {
        let kind = if self.route == Route::Report {
            "long"
        } else {
            "quick"
        };
        format!("request {} {} ({kind})", self.number, self.route)
    }
}

/// The lecture's three requests, in the order they arrive.
pub const LECTURE: [LectureRequest; 3] = [
    LectureRequest {
        number: 1,
        route: Route::Report,
        user_id: 1,
    },
    LectureRequest {
        number: 2,
        route: Route::Report,
        user_id: 2,
    },
    LectureRequest {
        number: 3,
        route: Route::User,
        user_id: 3,
    },
];

/// How one request went in the concurrent run.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestResult {
    /// Which of the lecture's requests this was.
    pub request: LectureRequest,
    /// Its time when sent alone (median of three).
    pub natural: Duration,
    /// Offset of its send from the first send.
    pub sent_at: Duration,
    /// Offset of its completion from the first send.
    pub finished_at: Duration,
    /// The daemon's split of it.
    pub timing: ServerTiming,
}

impl RequestResult {
    /// What the caller felt: send to complete response.
    pub fn perceived(&self) -> Duration {
        self.finished_at.saturating_sub(self.sent_at)
    }

    /// Perceived time as a multiple of natural time.
    pub fn slowdown(&self) -> f64 {
        self.perceived().as_secs_f64() / self.natural.as_secs_f64().max(1e-9)
    }

    fn gantt_row(&self) -> GanttRow {
        let t = &self.timing;
        let outside = self.perceived().saturating_sub(t.total);
        GanttRow {
            label: self.request.label(),
            start: self.sent_at,
            segments: vec![
                (Some(Phase::Queue), t.queue),
                (Some(Phase::Db), t.db),
                (Some(Phase::Compute), t.compute),
                (Some(Phase::Sched), t.sched),
                (None, outside),
            ],
            note: format!(
                "{} (natural {}, {:.1}x)",
                fmt_ms(self.perceived()),
                fmt_ms(self.natural),
                self.slowdown()
            ),
        }
    }
}

/// One run of the lecture against one daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct LectureRun {
    /// The daemon's base URL.
    pub target: String,
    /// The mode named by the daemon's `Server-Timing`.
    pub mode: Option<Mode>,
    /// The three requests, in the order they were sent.
    pub requests: Vec<RequestResult>,
}

impl LectureRun {
    fn span(&self) -> Duration {
        self.requests
            .iter()
            .map(|r| r.finished_at)
            .max()
            .unwrap_or_default()
    }

    fn title(&self) -> String {
        match self.mode {
            Some(m) => format!("{} ({m} mode)", self.target),
            None => self.target.clone(),
        }
    }

    /// The headline of this run: Σ reclaimed ÷ Σ compute over the requests, the share of
    /// compute that ran while another request waited on MongoDB. `None` when the daemon's
    /// `Server-Timing` has no `reclaimed` entry or nothing computed.
    pub fn reclaimed_share(&self) -> Option<f64> {
        let mut compute = Duration::ZERO;
        let mut reclaimed = Duration::ZERO;
        for r in &self.requests {
            compute += r.timing.compute;
            reclaimed += r.timing.reclaimed?;
        }
        (!compute.is_zero()).then(|| reclaimed.as_secs_f64() / compute.as_secs_f64())
    }

    /// The quick request, whose slowdown is the lecture's point.
    pub fn quick(&self) -> Option<&RequestResult> {
        self.requests
            .iter()
            .find(|r| r.request.route == Route::User)
    }
}

/// Options of [`lecture`].
#[derive(Debug, Clone, Copy)]
pub struct LectureOptions {
    /// Gap between the three sends.
    pub stagger: Duration,
    /// Give up on a request after this long.
    pub timeout: Duration,
}

impl Default for LectureOptions {
    fn default() -> Self {
        LectureOptions {
            stagger: Duration::from_millis(1),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A kept-alive HTTP/1.1 connection to the target.
struct Conn {
    authority: String,
    prefix: String,
    sender: SendRequest<Empty<Bytes>>,
}

impl Conn {
    async fn open(base: &str) -> Result<Conn, ScenarioError> {
        let uri: hyper::Uri = base.parse().map_err(|e| err(format!("{base}: {e}")))?;
        let authority = uri
            .authority()
            .ok_or_else(|| err(format!("{base} has no host")))?
            .to_string();
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| err(format!("cannot connect to {base}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| err(format!("{base}: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            authority,
            prefix: uri.path().trim_end_matches('/').to_string(),
            sender,
        })
    }

    /// Sends one request and returns when its body has been read.
    async fn get(
        &mut self,
        path: &str,
        timeout: Duration,
    ) -> Result<(Instant, ServerTiming), ScenarioError> {
        let request = Request::get(format!("{}{path}", self.prefix))
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::USER_AGENT, "reclaimd-scenario")
            .body(Empty::new())
            .map_err(|e| err(format!("GET {path}: {e}")))?;
        let exchange = async {
            self.sender
                .ready()
                .await
                .map_err(|e| err(format!("GET {path}: {e}")))?;
            let response = self
                .sender
                .send_request(request)
                .await
                .map_err(|e| err(format!("GET {path}: {e}")))?;
            let status = response.status();
            let timing = response.headers().get("server-timing").cloned();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| err(format!("GET {path}: {e}")))?
                .to_bytes();
            let done = Instant::now();
            if !status.is_success() {
                let hint = if status == hyper::StatusCode::NOT_FOUND {
                    " (has `reclaimd seed` been run?)"
                } else {
                    ""
                };
                return Err(err(format!(
                    "GET {path}: {status}{hint}: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                )));
            }
            let timing = timing.ok_or_else(|| {
                err(format!(
                    "GET {path}: the response has no Server-Timing header"
                ))
            })?;
            let timing = timing
                .to_str()
                .map_err(|e| e.to_string())
                .and_then(ServerTiming::parse)
                .map_err(|e| err(format!("GET {path}: bad Server-Timing: {e}")))?;
            Ok((done, timing))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| err(format!("GET {path}: no response within {timeout:?}")))?
    }
}

/// Runs the lecture against the daemon at `base`.
pub async fn lecture(base: &str, opts: LectureOptions) -> Result<LectureRun, ScenarioError> {
    let mut conns = Vec::new();
    for _ in LECTURE {
        conns.push(Conn::open(base).await?);
    }
    // Warm every connection (and the daemon) once, so neither skews the first timing.
    for conn in &mut conns {
        conn.get(&LECTURE[2].path(), opts.timeout).await?;
    }

    // Natural time: each request alone, three times, the median.
    let mut natural = Vec::new();
    for req in LECTURE {
        let mut times = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let (done, _) = conns[0].get(&req.path(), opts.timeout).await?;
            times.push(done - start);
        }
        times.sort();
        natural.push(times[1]);
    }

    // Together: in the lecture's order, each on its own connection, `stagger` apart (a sleep
    // between spawns, so the order holds even when the timer is coarse).
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, (req, mut conn)) in LECTURE.into_iter().zip(conns).enumerate() {
        if i > 0 && !opts.stagger.is_zero() {
            tokio::time::sleep(opts.stagger).await;
        }
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            conn.get(&req.path(), opts.timeout)
                .await
                .map(|(done, timing)| (sent, done, timing))
        }));
    }
    let mut requests = Vec::new();
    let mut mode = None;
    for ((task, req), natural) in tasks.into_iter().zip(LECTURE).zip(natural) {
        let (sent, done, timing) = task
            .await
            .map_err(|e| err(format!("request {}: {e}", req.number)))??;
        mode = mode.or(timing.mode);
        requests.push(RequestResult {
            request: req,
            natural,
            sent_at: sent - t0,
            finished_at: done - t0,
            timing,
        });
    }
    // All were sent at `t0` or later; measure from the first send.
    let first = requests.iter().map(|r| r.sent_at).min().unwrap_or_default();
    for r in &mut requests {
        r.sent_at -= first;
        r.finished_at -= first;
    }
    Ok(LectureRun {
        target: base.to_string(),
        mode,
        requests,
    })
}

/// Renders one run: the chart (over `span`, to share an axis with another run) and a table.
pub fn render_run(run: &LectureRun, span: Duration, width: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", run.title());
    let rows: Vec<GanttRow> = run.requests.iter().map(RequestResult::gantt_row).collect();
    out.push_str(&gantt::render(&rows, span, width));
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<26} {:>8} {:>8} {:>10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "",
        "sent",
        "done",
        "perceived",
        "natural",
        "x",
        "queue",
        "db",
        "compute",
        "sched",
        "reclaimed"
    );
    for r in &run.requests {
        let t = &r.timing;
        let _ = writeln!(
            out,
            "{:<26} {:>8} {:>8} {:>10} {:>9} {:>7.1}x {:>8} {:>8} {:>8} {:>8} {:>10}",
            r.request.label(),
            fmt_ms(r.sent_at),
            fmt_ms(r.finished_at),
            fmt_ms(r.perceived()),
            fmt_ms(r.natural),
            r.slowdown(),
            fmt_ms(t.queue),
            fmt_ms(t.db),
            fmt_ms(t.compute),
            fmt_ms(t.sched),
            t.reclaimed.map_or_else(|| "-".to_string(), fmt_ms),
        );
    }
    if let Some(q) = run.quick() {
        let order: Vec<String> = {
            let mut by_done: Vec<&RequestResult> = run.requests.iter().collect();
            by_done.sort_by_key(|r| r.finished_at);
            by_done
                .iter()
                .map(|r| r.request.number.to_string())
                .collect()
        };
        let _ = writeln!(
            out,
            "\nThe quick request took {:.1}x its natural time; finish order: {}.",
            q.slowdown(),
            order.join(", ")
        );
    }
    if let Some(share) = run.reclaimed_share() {
        let _ = writeln!(
            out,
            "Compute done inside other requests' DB waits: {:.0}% (Σ reclaimed ÷ Σ compute).",
            share * 100.0
        );
    }
    out
}

/// Renders the legend and one or more runs on a common time axis.
pub fn render_runs(runs: &[LectureRun], width: usize) -> String {
    let span = runs.iter().map(LectureRun::span).max().unwrap_or_default();
    let mut out = String::new();
    for run in runs {
        out.push_str(&render_run(run, span, width));
        out.push('\n');
    }
    let _ = writeln!(out, "{}", gantt::LEGEND);
    out.push_str(
        "Bars show each phase's total from Server-Timing, in the order queue, db, compute, \
         sched;\nthe daemon interleaves db and compute. Perceived = sent to response read.\n",
    );
    if let [a, b] = runs {
        let (ta, tb) = (a.title(), b.title());
        let w = ta.len().max(tb.len()).max(14);
        let _ = writeln!(out, "\n{:<26} {ta:>w$} {tb:>w$}", "perceived (x natural)");
        for (ra, rb) in a.requests.iter().zip(&b.requests) {
            let _ = writeln!(
                out,
                "{:<26} {:>w$} {:>w$}",
                ra.request.label(),
                format!("{} ({:.1}x)", fmt_ms(ra.perceived()), ra.slowdown()),
                format!("{} ({:.1}x)", fmt_ms(rb.perceived()), rb.slowdown()),
            );
        }
        let share = |r: &LectureRun| {
            r.reclaimed_share()
                .map_or_else(|| "-".to_string(), |s| format!("{:.0}%", s * 100.0))
        };
        let _ = writeln!(
            out,
            "{:<26} {:>w$} {:>w$}",
            "compute in others' DB wait",
            share(a),
            share(b)
        );
    }
    out
}

/// Runs `reclaimd scenario`.
pub fn run(args: ScenarioArgs) -> ExitCode {
    let Scenario::Lecture(args) = args.scenario;
    let targets = args
        .compare
        .clone()
        .unwrap_or_else(|| vec![args.target.clone()]);
    let opts = LectureOptions {
        stagger: args.stagger,
        timeout: args.timeout,
    };
    let runtime = match process::runtime("", None) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let mut runs = Vec::new();
        for target in &targets {
            runs.push(lecture(target, opts).await?);
        }
        Ok::<_, ScenarioError>(runs)
    });
    match result {
        Ok(runs) => {
            if args.compare.is_some() {
                for (run, mode) in runs.iter().zip([Mode::Sync, Mode::Async]) {
                    if run.mode.is_some_and(|m| m != mode) {
                        eprintln!(
                            "warning: {} expected in {mode} mode but serves in {} mode",
                            run.target,
                            run.mode.map(Mode::as_str).unwrap_or("unknown")
                        );
                    }
                }
            }
            print!("{}", render_runs(&runs, usize::from(args.width)));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
