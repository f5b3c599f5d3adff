//! Writes BENCHMARKS.md (and the P1 plot) from the results `bench/run.sh` leaves in its
//! output directory: `manifest.toml` (the experiments' settings, written by run.sh: the one
//! source of truth for them), `reclaimd load --json` reports (`NAME.json`, read as
//! [`LoadReport`]), wrk summaries (`NAME.wrk.json`, from `bench/wrk-json.lua`), process
//! figures (`NAME.kv`, `key=value` lines from /proc), `machine.txt` and `commands.txt`.
//!
//! `bench_report OUT_DIR BENCHMARKS.md PLOT.svg`. The `## Profiles` and `## mongo-wire`
//! sections already in BENCHMARKS.md are kept as they are (written by hand from
//! `bench/profile.sh`, and by another suite).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use reclaimd::load::{LoadReport, TargetReport};
use serde::Deserialize;

type Error = Box<dyn std::error::Error>;

/// (offered req/s, ok req/s, p99 ms) of one load point.
type Point = (f64, f64, f64);

/// The settings `bench/run.sh` ran with (`manifest.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    experiments: Vec<String>,
    seconds: u64,
    seed: u64,
    db_ms: u64,
    compute_ms: f64,
    rounds: u32,
    wrk_threads: u32,
    wrk_connections: u32,
    p1_rates: Vec<u32>,
    p2_workers: Vec<u32>,
    /// As written in file names (`p3-ROUND-RATIO`).
    p3_ratios: Vec<String>,
    p3_rate: f64,
    p4_db_ms: u64,
    p4_rate: f64,
    p4_seconds: f64,
    p4_sample_at: f64,
    p4_pool: u32,
    p4_queue_wait: String,
    p4_timeout: String,
    p5_rate: f64,
    p6_rates: Vec<u32>,
}

impl Manifest {
    fn ran(&self, experiment: &str) -> bool {
        self.experiments.iter().any(|e| e == experiment)
    }

    fn p4_requests(&self) -> f64 {
        (self.p4_rate * self.p4_seconds).round()
    }
}

/// wrk's summary (`bench/wrk-json.lua`), the fields the report uses.
#[derive(Debug, Clone, Deserialize)]
struct Wrk {
    requests: u64,
    duration_us: u64,
    errors: WrkErrors,
    latency_us: WrkLatency,
}

#[derive(Debug, Clone, Deserialize)]
struct WrkErrors {
    connect: u64,
    read: u64,
    write: u64,
    /// Responses other than 2xx/3xx.
    status: u64,
    timeout: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct WrkLatency {
    p50: u64,
    p99: u64,
}

impl Wrk {
    /// Successful responses per second.
    fn ok_rps(&self) -> f64 {
        self.requests.saturating_sub(self.errors.status) as f64 / (self.duration_us as f64 / 1e6)
    }

    fn failures(&self) -> u64 {
        let e = &self.errors;
        e.connect + e.read + e.write + e.status + e.timeout
    }

    fn ms(us: u64) -> f64 {
        us as f64 / 1e3
    }
}

struct Results {
    dir: PathBuf,
}

impl Results {
    /// A `reclaimd load --json` report.
    fn load(&self, name: &str) -> Option<LoadReport> {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.json"))).ok()?;
        match serde_json::from_str(&text) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("bench_report: {name}.json: {e}");
                None
            }
        }
    }

    /// The first target of a load report.
    fn target(&self, name: &str) -> Option<TargetReport> {
        self.load(name)?.targets.into_iter().next()
    }

    fn wrk(&self, name: &str) -> Option<Wrk> {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.wrk.json"))).ok()?;
        match serde_json::from_str(&text) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("bench_report: {name}.wrk.json: {e}");
                None
            }
        }
    }

    fn kv(&self, name: &str) -> BTreeMap<String, f64> {
        std::fs::read_to_string(self.dir.join(format!("{name}.kv")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once('=')?;
                Some((k.trim().to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }

    fn text(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn manifest(&self) -> Result<Manifest, Error> {
        let text = std::fs::read_to_string(self.dir.join("manifest.toml"))
            .map_err(|e| format!("{}: {e}", self.dir.join("manifest.toml").display()))?;
        Ok(toml::from_str(&text)?)
    }
}

fn errors(t: &TargetReport) -> String {
    if t.errors.is_empty() {
        "0".into()
    } else {
        t.errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v >= 1000.0 {
        format!("{:.2} s", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn f1(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.1}")
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

fn times(xs: &[f64]) -> String {
    xs.iter()
        .map(|x| format!("{x:.2}×"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mean server-side compute and wait (db + sched) per request, ms, of a load report.
fn split(t: &TargetReport) -> (f64, f64) {
    let p = &t.server_timing_ms;
    (p.compute, p.db + p.sched)
}

fn p1(
    m: &Manifest,
    r: &Results,
    out: &mut String,
    svg_name: &str,
) -> Option<(Vec<Point>, Vec<Point>)> {
    let rows: Vec<(u32, Option<TargetReport>, Option<TargetReport>)> = m
        .p1_rates
        .iter()
        .map(|&rate| {
            (
                rate,
                r.target(&format!("p1-sync-{rate}")),
                r.target(&format!("p1-async-{rate}")),
            )
        })
        .collect();
    if rows.iter().all(|(_, s, a)| s.is_none() && a.is_none()) {
        return None;
    }
    out.push_str("## P1 — sync, 1 worker vs async, 1 thread, at wait:compute 9:1\n\n");
    let _ = writeln!(
        out,
        "Route mix: `report` only (DB → compute → DB aggregate → compute). mongo-wire adds the DB \
         latency ({} ms) to every command; `workload.report_compute_ms` ({} ms) sets each compute \
         segment. Poisson arrivals (seed {}), each offered rate for {} s; latency from the \
         intended send time. `limits.max_queue = 100`, so an overloaded daemon sheds (503) rather than \
         queueing without bound.\n",
        m.db_ms, m.compute_ms, m.seed, m.seconds
    );
    let low_sync = rows.iter().find_map(|(_, s, _)| s.clone());
    let low_async = rows.iter().find_map(|(_, _, a)| a.clone());
    if let (Some(s), Some(a)) = (&low_sync, &low_async) {
        let (sc, sw) = split(s);
        let (ac, aw) = split(a);
        let _ = writeln!(
            out,
            "Measured per request at the lowest load (Server-Timing means): sync compute {} + wait {} \
             (wait:compute {:.1}:1); async compute {} + wait {} (wait:compute {:.1}:1).\n",
            ms(sc),
            ms(sw),
            sw / sc,
            ms(ac),
            ms(aw),
            aw / ac
        );
    }
    out.push_str(
        "| offered req/s | sync req/s | sync p50 | sync p99 | sync errors | async req/s | async p50 | async p99 | async errors |\n\
         |---:|---:|---:|---:|---|---:|---:|---:|---|\n",
    );
    let mut sync_pts = Vec::new();
    let mut async_pts = Vec::new();
    for (rate, s, a) in &rows {
        let cells = |t: &Option<TargetReport>| match t {
            Some(t) => format!(
                "{} | {} | {} | {}",
                f1(t.throughput_rps),
                ms(t.latency_ms.p50),
                ms(t.latency_ms.p99),
                errors(t)
            ),
            None => "– | – | – | –".into(),
        };
        let _ = writeln!(out, "| {rate} | {} | {} |", cells(s), cells(a));
        if let Some(t) = s {
            sync_pts.push((f64::from(*rate), t.throughput_rps, t.latency_ms.p99));
        }
        if let Some(t) = a {
            async_pts.push((f64::from(*rate), t.throughput_rps, t.latency_ms.p99));
        }
    }
    let _ = writeln!(
        out,
        "\n![throughput and p99 against offered load]({svg_name})\n"
    );
    let max = |pts: &[Point]| pts.iter().map(|p| p.1).fold(f64::NAN, f64::max);
    let (smax, amax) = (max(&sync_pts), max(&async_pts));
    // The ceiling uses the compute measured at the best point itself, under the same load.
    let best_async = rows
        .iter()
        .filter_map(|(_, _, a)| a.as_ref())
        .max_by(|x, y| x.throughput_rps.total_cmp(&y.throughput_rps));
    if let Some(a) = best_async {
        let compute = a.server_timing_ms.compute;
        let ceiling = 1000.0 / compute;
        let _ = writeln!(
            out,
            "- **async max throughput: {:.0} req/s = {:.0}% of the CPU ceiling** (1 / compute per \
             thread = 1 / {} = {:.0} req/s, compute measured at that same load point).",
            amax,
            100.0 * amax / ceiling,
            ms(compute),
            ceiling
        );
    }
    let _ = writeln!(
        out,
        "- sync max throughput: {smax:.1} req/s; **async / sync = {:.1}×**.\n",
        amax / smax
    );
    Some((sync_pts, async_pts))
}

fn p2(m: &Manifest, r: &Results, out: &mut String) {
    let runs: Vec<(u32, TargetReport)> = m
        .p2_workers
        .iter()
        .filter_map(|&n| Some((n, r.target(&format!("p2-sync{n}"))?)))
        .collect();
    if runs.is_empty() {
        return;
    }
    out.push_str("## P2 — sync with N workers against the model N / (compute + wait)\n\n");
    // The model's per-request cost comes from an unloaded run when there is one.
    let base = m
        .p1_rates
        .first()
        .and_then(|rate| r.target(&format!("p1-sync-{rate}")))
        .or_else(|| runs.first().map(|(_, t)| t.clone()));
    let Some(base) = base else { return };
    let (c, w) = split(&base);
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let cpu_ceiling = cores * 1000.0 / c;
    let _ = writeln!(
        out,
        "Per request (unloaded, Server-Timing): compute {} + wait {} = {}. Offered load: 1.5× the \
         model (at most 800 req/s), report route. The CPU bound, cores / compute = {cores:.0} / {} \
         = {cpu_ceiling:.0} req/s, caps any pool whatever its size.\n",
        ms(c),
        ms(w),
        ms(c + w),
        ms(c)
    );
    out.push_str(
        "| workers N | offered req/s | measured req/s | model N/(c+w) | measured / model | min(model, CPU bound) | measured / that | p50 | p99 | errors |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for (n, t) in &runs {
        let model = f64::from(*n) * 1000.0 / (c + w);
        let got = t.throughput_rps;
        let bounded = model.min(cpu_ceiling);
        let _ = writeln!(
            out,
            "| {n} | {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {} |",
            f1(t.offered_rps),
            f1(got),
            f1(model),
            got / model,
            f1(bounded),
            got / bounded,
            ms(t.latency_ms.p50),
            ms(t.latency_ms.p99),
            errors(t)
        );
    }
    out.push('\n');
}

/// CPU microseconds per request: `key` of NAME.kv over `requests`.
fn cpu_us(r: &Results, name: &str, key: &str, requests: f64) -> f64 {
    let cpu = r.kv(name).get(key).copied().unwrap_or(f64::NAN);
    cpu * 1e6 / requests
}

fn sampler_label(s: &str) -> String {
    if s == "off" {
        "spans off".into()
    } else {
        format!("spans on, ratio {s}")
    }
}

fn p3(m: &Manifest, r: &Results, out: &mut String) {
    if !m.ran("P3") {
        return;
    }
    let samplers: Vec<String> = std::iter::once("off".to_string())
        .chain(m.p3_ratios.iter().cloned())
        .collect();
    out.push_str("## P3 — tracing overhead, by sampler\n\n");
    let _ = writeln!(
        out,
        "Async mode, 1 thread, zero DB latency and `workload.*_compute_ms = 0`, so the daemon's \
         own cost is what is measured. Spans off: `telemetry.spans = false`. Spans on: \
         `OTEL_EXPORTER_OTLP_ENDPOINT` set (OTLP/HTTP to a sink, the hello-world, which discards \
         what is posted) and `OTEL_TRACES_SAMPLER=parentbased_traceidratio` with the ratio shown. \
         Sampling is decided once per request, at arrival: an unsampled request builds no span; a \
         sampled one builds its whole tree (request, queue, compute, one per MongoDB call). Each \
         daemon is first saturated (wrk, {} thread, {} connections, {} s on the quick route \
         `GET /api/users/1`), then driven at {} req/s of `user=1,report=1` (`reclaimd load`, the \
         same seeded schedule) for its CPU per request. {} rounds, the configurations \
         alternating within each.\n",
        m.wrk_threads, m.wrk_connections, m.seconds, m.p3_rate, m.rounds
    );
    out.push_str(
        "**At saturation** (daemon CPU per request from /proc over the wrk run; dropped spans: \
         reported by the SDK's batch processor at exit, its queue full):\n\n\
         | round | configuration | req/s | p50 | p99 | daemon CPU µs / request | spans dropped |\n\
         |---:|---|---:|---:|---:|---:|---:|\n",
    );
    let mut sat: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut sat_cpu: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for round in 1..=m.rounds {
        let off_name = format!("p3-{round}-off-sat");
        let off = r.wrk(&off_name);
        let off_cpu = off
            .as_ref()
            .map(|w| cpu_us(r, &off_name, "cpu_s", w.requests as f64));
        for s in &samplers {
            let name = format!("p3-{round}-{s}-sat");
            let Some(w) = r.wrk(&name) else { continue };
            let cpu = cpu_us(r, &name, "cpu_s", w.requests as f64);
            if let Some(o) = off_cpu {
                sat_cpu.entry(s.clone()).or_default().push(cpu / o);
            }
            let dropped = if s == "off" {
                "–".to_string()
            } else {
                r.kv(&name)
                    .get("dropped_spans")
                    .map_or("–".into(), |d| format!("{d:.0}"))
            };
            let _ = writeln!(
                out,
                "| {round} | {} | {:.0} | {} | {} | {cpu:.0} | {dropped} |",
                sampler_label(s),
                w.ok_rps(),
                ms(Wrk::ms(w.latency_us.p50)),
                ms(Wrk::ms(w.latency_us.p99)),
            );
            if let Some(off) = &off {
                sat.entry(s.clone())
                    .or_default()
                    .push(w.ok_rps() / off.ok_rps());
            }
        }
    }
    out.push('\n');
    let target = |s: &str| match s {
        "0.1" => "target ≥ 0.97×; ",
        "1.0" => "target ≥ 0.85×; ",
        _ => "",
    };
    for s in &m.p3_ratios {
        if let Some(ratios) = sat.get(s) {
            let _ = writeln!(
                out,
                "- **Throughput at saturation, spans on with ratio {s} / spans off = {:.2}×** \
                 ({}rounds: {}).",
                mean(ratios),
                target(s),
                times(ratios)
            );
        }
    }
    for s in &m.p3_ratios {
        if let Some(ratios) = sat_cpu.get(s) {
            let _ = writeln!(
                out,
                "- Daemon CPU per request at saturation, spans on with ratio {s} / spans off = \
                 {:.2}× (rounds: {}).",
                mean(ratios),
                times(ratios)
            );
        }
    }
    let offs: Vec<f64> = (1..=m.rounds)
        .filter_map(|round| r.wrk(&format!("p3-{round}-off-sat")).map(|w| w.ok_rps()))
        .collect();
    if offs.len() > 1 {
        let (lo, hi) = offs
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        let _ = writeln!(
            out,
            "- The same configuration (spans off) measured {lo:.0} to {hi:.0} req/s across rounds \
             ({:.0}% apart): the machine's other load moves saturation throughput by more than \
             the effects above, so single ratios are only as good as that spread.",
            100.0 * (hi / lo - 1.0)
        );
    }
    out.push_str(&format!(
        "\n**At a fixed {} req/s** (daemon CPU time from /proc over the load run, divided by the \
         requests sent):\n\n\
         | round | configuration | ok | daemon CPU µs / request | p50 | p99 |\n\
         |---:|---|---:|---:|---:|---:|\n",
        m.p3_rate
    ));
    let mut cpu: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut off_cpu = Vec::new();
    for round in 1..=m.rounds {
        let off_name = format!("p3-{round}-off");
        let off = r
            .target(&off_name)
            .map(|t| cpu_us(r, &off_name, "daemon_cpu_s", t.sent as f64));
        if let Some(o) = off {
            off_cpu.push(o);
        }
        for s in &samplers {
            let name = format!("p3-{round}-{s}");
            let Some(t) = r.target(&name) else { continue };
            let c = cpu_us(r, &name, "daemon_cpu_s", t.sent as f64);
            let _ = writeln!(
                out,
                "| {round} | {} | {} | {c:.0} | {} | {} |",
                sampler_label(s),
                t.ok,
                ms(t.latency_ms.p50),
                ms(t.latency_ms.p99)
            );
            if let Some(o) = off {
                cpu.entry(s.clone()).or_default().push(c / o);
            }
        }
    }
    out.push('\n');
    for s in &m.p3_ratios {
        if let Some(ratios) = cpu.get(s) {
            let _ = writeln!(
                out,
                "- CPU per request at {} req/s, spans on with ratio {s} / spans off = {:.2}× \
                 ({:+.0}%; rounds: {}).",
                m.p3_rate,
                mean(ratios),
                100.0 * (mean(ratios) - 1.0),
                times(ratios)
            );
        }
    }
    if let Some(ns) = r.kv("p3-measure").get("ns_per_request") {
        let _ = writeln!(
            out,
            "- The measurement path itself with spans off (`examples/measure_cost.rs`: tracker, \
             instrumented polls, metrics update, Server-Timing header; no I/O): {ns:.0} ns per \
             request = {:.1}% of the spans-off daemon CPU per request.",
            100.0 * ns / 1e3 / mean(&off_cpu)
        );
    }
    out.push('\n');
}

fn p4(m: &Manifest, r: &Results, out: &mut String) {
    let (a, s, h, d, d_all) = (
        r.kv("p4-async"),
        r.kv("p4-sync"),
        r.kv("p4-hello"),
        r.kv("p4-driver"),
        r.kv("p4-driver-all"),
    );
    if a.is_empty() && s.is_empty() {
        return;
    }
    let n = m.p4_requests();
    out.push_str("## P4 — memory with 10,000 concurrent waiting requests\n\n");
    let _ = writeln!(
        out,
        "DB latency {} ms; `reclaimd load` sends {} req/s of `user` for {} s ({n:.0} requests, none \
         answered before its DB wait ends) and each process's RSS is read from /proc at {} s. The \
         async run's sync pool has 1 thread (the daemon keeps both dispatchers ready). \
         `mongodb.max_pool_size = {}` (the default): async calls beyond it wait at the daemon's \
         permit gate, so admission must predict up to {n:.0} / {} × {} ms of waiting there; \
         `limits.max_queue_wait = {}` and `limits.request_timeout = {}` make room for that, and \
         `limits.max_queue = 20000`. The floor rows: the hello-world answering after the same \
         delay, under the same load; and the async driver alone (`examples/driver_floor.rs`, \
         pool {}, one task per call), with as many `find_one` calls waiting as the daemon has \
         inside the driver (one per connection; the rest wait at the daemon's gate), and with \
         all {n:.0} inside it. Requests in state = the daemon's `reclaimd_requests_in_state` \
         gauges summed at that moment.\n",
        m.p4_db_ms,
        m.p4_rate,
        m.p4_seconds,
        m.p4_sample_at,
        m.p4_pool,
        m.p4_pool,
        m.p4_db_ms,
        m.p4_queue_wait,
        m.p4_timeout,
        m.p4_pool
    );
    out.push_str(
        "| process | RSS idle | RSS with the requests waiting | peak RSS | requests in state | queued | shed | threads |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mb = |kv: &BTreeMap<String, f64>, k: &str| {
        kv.get(k)
            .map_or("–".to_string(), |v| format!("{:.1} MB", v / 1024.0))
    };
    let num = |kv: &BTreeMap<String, f64>, k: &str| {
        kv.get(k).map_or("–".to_string(), |v| format!("{v:.0}"))
    };
    for (name, kv) in [
        ("daemon, async, 1 thread", &a),
        ("daemon, sync, 1000 workers", &s),
        ("floor: hello-world, same delay", &h),
        ("floor: mongodb driver alone, calls = pool", &d),
        ("mongodb driver alone, all calls inside", &d_all),
    ] {
        if kv.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            mb(kv, "rss_idle_kb"),
            mb(kv, "rss_kb"),
            mb(kv, "hwm_kb"),
            num(kv, "in_state"),
            num(kv, "queued"),
            num(kv, "shed"),
            num(kv, "threads")
        );
    }
    // Growth from idle to loaded, per waiting request, in KB.
    let growth = |kv: &BTreeMap<String, f64>| -> Option<f64> {
        Some((kv.get("rss_kb")? - kv.get("rss_idle_kb")?) / n * 1024.0 / 1000.0)
    };
    out.push('\n');
    if let (Some(ar), Some(sr)) = (a.get("hwm_kb"), s.get("hwm_kb")) {
        let _ = writeln!(
            out,
            "- peak RSS: async {:.1} MB, sync {:.1} MB; sync / async = {:.1}×.",
            ar / 1024.0,
            sr / 1024.0,
            sr / ar
        );
    }
    if let (Some(ga), Some(gh), Some(gd)) = (growth(&a), growth(&h), growth(&d)) {
        let own = ga - gh - gd;
        let _ = writeln!(
            out,
            "- RSS growth per waiting request (loaded − idle, over {n:.0}): async daemon {ga:.1} KB; \
             plain hyper {gh:.1} KB; the driver with the daemon's {} calls inside {gd:.1} KB.\n\
             - **The async daemon's own memory per waiting request, over the hyper and driver \
             floors: {own:.1} KB** (target ≤ 4 KB; the heap profile in Profiles, below, \
             itemises it).",
            m.p4_pool
        );
        if let Some(gall) = growth(&d_all) {
            let _ = writeln!(
                out,
                "- Had all {n:.0} calls gone into the driver at once (no gate), the driver alone \
                 would add {gall:.1} KB per waiting request."
            );
        }
        if let Some(gs) = growth(&s) {
            let _ = writeln!(
                out,
                "- The sync daemon, for comparison: {gs:.1} KB per waiting request ({:.1} KB over \
                 the hyper floor; its 1000 worker threads' stacks are mostly untouched virtual \
                 memory).",
                gs - gh
            );
        }
    }
    out.push('\n');
}

fn p5(m: &Manifest, r: &Results, out: &mut String) {
    if !m.ran("P5") {
        return;
    }
    out.push_str("## P5 — the daemon against its floors\n\n");
    let _ = writeln!(
        out,
        "The daemon runs async with 1 thread, spans off, `workload.user_compute_ms = 0`, against \
         mongo-wire at zero added latency. Its floors: **hello-db** (`examples/hello_db.rs`: \
         plain hyper and the async `mongodb` driver doing the same `find_one` by `_id` per request, \
         no instrumentation; 2 runtime threads, as many as the daemon's HTTP thread plus its \
         handler thread; pool 200), and the **hello-world** (`examples/hello.rs`, plain hyper, \
         no database, 1 thread).\n\n\
         **At saturation** (wrk, {} thread, {} connections, {} s on `GET /api/users/1`; {} rounds, \
         daemon and hello-db alternating; CPU per request from /proc over the wrk run):\n\n\
         | round | server | req/s | p50 | p99 | CPU µs / request |\n|---:|---|---:|---:|---:|---:|",
        m.wrk_threads, m.wrk_connections, m.seconds, m.rounds
    );
    let mut ratios = Vec::new();
    for round in 1..=m.rounds {
        let runs: Vec<(&str, Option<Wrk>, String)> = [
            ("reclaimd", format!("p5-{round}-daemon-sat")),
            ("hello-db", format!("p5-{round}-hello-db-sat")),
        ]
        .into_iter()
        .map(|(label, name)| (label, r.wrk(&name), name))
        .collect();
        for (label, w, name) in &runs {
            if let Some(w) = w {
                let _ = writeln!(
                    out,
                    "| {round} | {label} | {:.0} | {} | {} | {:.0} |",
                    w.ok_rps(),
                    ms(Wrk::ms(w.latency_us.p50)),
                    ms(Wrk::ms(w.latency_us.p99)),
                    cpu_us(r, name, "cpu_s", w.requests as f64)
                );
                if w.failures() > 0 {
                    let _ = writeln!(
                        out,
                        "| | ({label}: {} failed responses) | | | | |",
                        w.failures()
                    );
                }
            }
        }
        if let (Some(d), Some(h)) = (&runs[0].1, &runs[1].1) {
            ratios.push(d.ok_rps() / h.ok_rps());
        }
    }
    if !ratios.is_empty() {
        let _ = writeln!(
            out,
            "\n- **Throughput at saturation, reclaimd / hello-db = {:.2}×** (target ≥ 0.9×; \
             rounds: {}).\n",
            mean(&ratios),
            times(&ratios)
        );
    }
    let Some(report) = r.load("p5") else { return };
    let [daemon, hello_db, hello] = report.targets.as_slice() else {
        return;
    };
    let kv = r.kv("p5");
    let _ = writeln!(
        out,
        "**At a fixed {} req/s**: one `reclaimd load` drives all three with the identical schedule \
         (`user` route; the hello-world answers any path); CPU per request from /proc over the \
         run.\n\n\
         | target | ok | p50 | p90 | p99 | CPU µs / request |\n|---|---:|---:|---:|---:|---:|",
        m.p5_rate
    );
    let cpu = |key: &str, t: &TargetReport| {
        kv.get(key).copied().unwrap_or(f64::NAN) * 1e6 / t.sent as f64
    };
    let (d_cpu, db_cpu, h_cpu) = (
        cpu("daemon_cpu_s", daemon),
        cpu("hello_db_cpu_s", hello_db),
        cpu("hello_cpu_s", hello),
    );
    for (name, t, c) in [
        ("reclaimd, GET /api/users/{id}", daemon, d_cpu),
        ("hello-db, the same find_one", hello_db, db_cpu),
        ("hello-world, no database", hello, h_cpu),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {c:.0} |",
            t.ok,
            ms(t.latency_ms.p50),
            ms(t.latency_ms.p90),
            ms(t.latency_ms.p99)
        );
    }
    let p = &daemon.server_timing_ms;
    let _ = writeln!(
        out,
        "\n- **reclaimd / hello-db: p50 {:.2}×, CPU per request {:.2}×.** The old comparison, \
         reclaimd / hello-world (which has no database to call): p50 {:.1}×, CPU per request \
         {:.1}×. Server-side phases of the quick route (means): queue {}, compute {}, db {}, \
         total {}.\n",
        daemon.latency_ms.p50 / hello_db.latency_ms.p50,
        d_cpu / db_cpu,
        daemon.latency_ms.p50 / hello.latency_ms.p50,
        d_cpu / h_cpu,
        ms(p.queue),
        ms(p.compute),
        ms(p.db),
        ms(p.total),
    );
}

fn p6(m: &Manifest, r: &Results, out: &mut String) {
    let runs: Vec<(u32, TargetReport)> = m
        .p6_rates
        .iter()
        .filter_map(|&rate| Some((rate, r.target(&format!("p6-{rate}"))?)))
        .collect();
    if runs.is_empty() {
        return;
    }
    out.push_str("## P6 — the load generator's own ceiling, one core\n\n");
    out.push_str(
        "`reclaimd load --threads 1` (a single-threaded runtime: scheduler, connections and \
         accounting on one core) against the hello-world, constant arrivals. Lateness = actual \
         send − intended send time, where the send is the request task's first poll.\n\n\
         | offered req/s | ok req/s | errors | lateness p50 | lateness p99 | latency p99 |\n\
         |---:|---:|---|---:|---:|---:|\n",
    );
    let mut ceiling = None;
    for (rate, t) in &runs {
        let got = t.throughput_rps;
        let late99 = t.lateness_ms.p99;
        if got >= 0.95 * f64::from(*rate) && late99 <= 10.0 && t.errors_total == 0 {
            ceiling = Some((*rate, late99));
        }
        let _ = writeln!(
            out,
            "| {rate} | {} | {} | {} | {} | {} |",
            f1(got),
            errors(t),
            ms(t.lateness_ms.p50),
            ms(late99),
            ms(t.latency_ms.p99)
        );
    }
    let highest_used = m.p5_rate.max(m.p3_rate);
    match ceiling {
        Some((rate, late)) => {
            // Past the last passing rate: the first one that failed, if any was tried.
            let failed = runs.iter().map(|(r, _)| *r).find(|r| *r > rate);
            let bound = match failed {
                Some(f) => format!("between {rate} and {f} req/s"),
                None => format!("at least {rate} req/s (the highest rate tried)"),
            };
            let _ = writeln!(
                out,
                "\n- ceiling on one core: {bound}; at {rate} req/s the lateness p99 is {} \
                 (criterion: ≥ 95% delivered, no errors, lateness p99 ≤ 10 ms). That is {:.0}× \
                 the highest fixed rate the other experiments offer per target ({highest_used:.0} \
                 req/s).",
                ms(late),
                f64::from(rate) / highest_used
            );
        }
        None => out.push_str("\n- no tested rate met the ceiling criterion.\n"),
    }
    let timer = r.kv("p6-timer");
    let at_40k = runs.iter().find(|(rate, _)| *rate == 40_000);
    if let (Some(p99), Some(p50)) = (timer.get("lateness_p99_ms"), timer.get("lateness_p50_ms")) {
        let rate = timer.get("rate").copied().unwrap_or(f64::NAN);
        if let Some((_, t)) = at_40k {
            let _ = writeln!(
                out,
                "- **Lateness p99 at 40,000 req/s: {}** (target ≤ 1 ms). What bounds it: tokio's \
                 timer. Its wheel has 1 ms slots and rounds every deadline up to the next one, so \
                 a task sleeping until an arrival wakes up to 1 ms after it. The timer alone, with \
                 no request sent (`examples/timer_lateness.rs`, a current-thread runtime walking \
                 a {rate:.0}/s constant schedule exactly as the generator's scheduler does), is \
                 late by p50 {} and **p99 {}**: the generator's p99 is that floor plus the time \
                 to start the burst of requests due in each 1 ms tick.",
                ms(t.lateness_ms.p99),
                ms(*p50),
                ms(*p99),
            );
        }
        if let (Some(s99), Some(cpu)) = (
            timer.get("spin_lateness_p99_ms"),
            timer.get("spin_cpu_share"),
        ) {
            let idle_cpu = timer.get("cpu_share").copied().unwrap_or(f64::NAN);
            let _ = writeln!(
                out,
                "- With a finer wake-up (sleep until 1 ms before each arrival, then yield until it \
                 is due) the same schedule is late by p99 {} — at the price of keeping the thread \
                 on the CPU ({:.0}% of wall time against {:.0}% with the timer). The generator \
                 does not do that: in every other experiment it shares the 2 cores with the \
                 process it measures.",
                ms(*s99),
                100.0 * cpu,
                100.0 * idle_cpu
            );
        }
    }
    out.push('\n');
}

/// A `## TITLE` section of an existing BENCHMARKS.md, heading included.
fn kept_section(existing: &str, title: &str) -> Option<String> {
    let heading = format!("## {title}");
    let start = existing
        .find(&format!("\n{heading}\n"))
        .map(|i| i + 1)
        .or_else(|| existing.starts_with(&format!("{heading}\n")).then_some(0))?;
    let rest = &existing[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    Some(rest[..end].trim_end().to_string() + "\n")
}

/// The `## Live view` section of an existing BENCHMARKS.md, heading included.
fn live_view_section(existing: &str) -> Option<String> {
    let start = existing.find("\n## Live view\n")? + 1;
    let rest = &existing[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    Some(rest[..end].trim_end().to_string() + "\n")
}

// ---- the plot

struct Panel {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    xmax: f64,
    ymin: f64,
    ymax: f64,
    log_y: bool,
}

impl Panel {
    fn x(&self, v: f64) -> f64 {
        self.x0 + self.w * v / self.xmax
    }

    fn y(&self, v: f64) -> f64 {
        let f = if self.log_y {
            (v.max(self.ymin).ln() - self.ymin.ln()) / (self.ymax.ln() - self.ymin.ln())
        } else {
            v / self.ymax
        };
        self.y0 + self.h * (1.0 - f.clamp(0.0, 1.0))
    }
}

fn nice_max(v: f64) -> f64 {
    let mag = 10f64.powf(v.max(1e-9).log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * mag)
}

fn plot(sync: &[Point], asyn: &[Point]) -> String {
    let all = || sync.iter().chain(asyn);
    let xmax = nice_max(all().map(|p| p.0).fold(1.0, f64::max));
    let tmax = nice_max(all().map(|p| p.1.max(p.0)).fold(1.0, f64::max));
    let lmax = 10f64.powf(all().map(|p| p.2).fold(1.0, f64::max).log10().ceil());
    let lmin = 10f64.powf(
        all()
            .map(|p| p.2)
            .filter(|v| *v > 0.0)
            .fold(lmax, f64::min)
            .log10()
            .floor(),
    );
    let panels = [
        Panel {
            x0: 70.0,
            y0: 40.0,
            w: 330.0,
            h: 250.0,
            xmax,
            ymin: 0.0,
            ymax: tmax,
            log_y: false,
        },
        Panel {
            x0: 540.0,
            y0: 40.0,
            w: 330.0,
            h: 250.0,
            xmax,
            ymin: lmin,
            ymax: lmax,
            log_y: true,
        },
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="920" height="360" viewBox="0 0 920 360" font-family="sans-serif" font-size="12">
<rect width="920" height="360" fill="white"/>"##
    );
    let titles = ["throughput (ok req/s)", "p99 latency (ms, log scale)"];
    for (i, p) in panels.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>
<text x="{}" y="25" text-anchor="middle" font-weight="bold">{}</text>
<text x="{}" y="335" text-anchor="middle">offered load (req/s)</text>"##,
            p.x0,
            p.y0,
            p.w,
            p.h,
            p.x0 + p.w / 2.0,
            titles[i],
            p.x0 + p.w / 2.0
        );
        for k in 0..=4 {
            let v = xmax * f64::from(k) / 4.0;
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{}" text-anchor="middle">{v:.0}</text>"##,
                p.x(v),
                p.y0 + p.h + 16.0
            );
        }
        let yticks: Vec<f64> = if p.log_y {
            let mut t = Vec::new();
            let mut v = p.ymin;
            while v <= p.ymax * 1.001 {
                t.push(v);
                v *= 10.0;
            }
            t
        } else {
            (0..=4).map(|k| p.ymax * f64::from(k) / 4.0).collect()
        };
        for v in yticks {
            let y = p.y(v);
            let _ = writeln!(
                s,
                r##"<line x1="{}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/>
<text x="{}" y="{:.1}" text-anchor="end">{v}</text>"##,
                p.x0,
                p.x0 + p.w,
                p.x0 - 6.0,
                y + 4.0
            );
        }
    }
    // Throughput equal to the offered load: what a server with no ceiling would do.
    let p = &panels[0];
    let top = xmax.min(tmax);
    let _ = writeln!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#aaa" stroke-dasharray="4 4"/>"##,
        p.x(0.0),
        p.y(0.0),
        p.x(top),
        p.y(top)
    );
    for (pts, color, name, row) in [
        (sync, "#d62728", "sync, 1 worker", 0),
        (asyn, "#2ca02c", "async, 1 thread", 1),
    ] {
        for (i, p) in panels.iter().enumerate() {
            let path: Vec<String> = pts
                .iter()
                .filter(|q| i == 0 || q.2 > 0.0)
                .map(|q| format!("{:.1},{:.1}", p.x(q.0), p.y(if i == 0 { q.1 } else { q.2 })))
                .collect();
            let _ = writeln!(
                s,
                r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"##,
                path.join(" ")
            );
            for q in path {
                let (x, y) = q.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(s, r##"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"##);
            }
        }
        let y = 60.0 + 18.0 * f64::from(row);
        let _ = writeln!(
            s,
            r##"<line x1="85" x2="105" y1="{y}" y2="{y}" stroke="{color}" stroke-width="2"/><text x="110" y="{}">{name}</text>"##,
            y + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, md, svg] = args.as_slice() else {
        return Err("usage: bench_report OUT_DIR BENCHMARKS.md PLOT.svg".into());
    };
    let r = Results {
        dir: PathBuf::from(dir),
    };
    let m = r.manifest()?;
    let md_path = Path::new(md);
    let svg_path = Path::new(svg);
    // Linked relative to BENCHMARKS.md.
    let svg_link = match (
        md_path.parent(),
        svg_path.strip_prefix(md_path.parent().unwrap_or(Path::new(""))),
    ) {
        (Some(_), Ok(rel)) => rel.display().to_string(),
        _ => svg.clone(),
    };

    let mut out = String::new();
    out.push_str("# Benchmarks\n\n");
    out.push_str(
        "Written by `bench/run.sh` (real processes: mongo-wire, `reclaimd serve`, `reclaimd load`, \
         `wrk`, the hello-world in `examples/hello.rs` and hello-db in `examples/hello_db.rs`), \
         with the settings it passes in `manifest.toml`. Each headline figure is a ratio of \
         measurements taken in the same run, on the machine below; absolute numbers depend on \
         it and on what else it was doing (the machine is shared: other engineers' builds and \
         benchmarks ran alongside; the rounds' spread shows how much that moved things). The exact commands are at the end. Rerun: \
         `bench/run.sh` (about 15 minutes on 2 cores; needs `wrk`).\n\n",
    );
    out.push_str("## Machine\n\n```text\n");
    out.push_str(r.text("machine.txt").trim_end());
    out.push_str("\n```\n\n");

    let lecture = r.text("lecture.txt");
    if !lecture.trim().is_empty() {
        out.push_str(
            "## The lecture, replayed\n\n\
             `reclaimd scenario lecture --compare` against a sync daemon with 1 worker and an \
             async daemon with 1 thread, side by side, 20 ms per DB command, default workload: \
             two long requests (report) and one quick one (user) sent together, after each was \
             timed alone (its natural time).\n\n```text\n",
        );
        out.push_str(lecture.trim_end());
        out.push_str("\n```\n\n");
    }
    if let Some((sync, asyn)) = p1(&m, &r, &mut out, &svg_link) {
        std::fs::write(svg_path, plot(&sync, &asyn))?;
    }
    p2(&m, &r, &mut out);
    p3(&m, &r, &mut out);
    p4(&m, &r, &mut out);
    p5(&m, &r, &mut out);
    p6(&m, &r, &mut out);
    let existing = std::fs::read_to_string(md_path).unwrap_or_default();
    if let Some(section) = kept_section(&existing, "Profiles") {
        out.push_str(&section);
        out.push('\n');
    }

    out.push_str("## Commands\n\nAs run by `bench/run.sh`, in order (paths relative to the repository):\n\n```sh\n");
    out.push_str(r.text("commands.txt").trim_end());
    out.push_str("\n```\n");

    if let Some(section) = kept_section(&existing, "mongo-wire") {
        out.push('\n');
        out.push_str(&section);
    }
    // `bench/live.sh --write` writes this one.
    if let Some(section) = live_view_section(&existing) {
        out.push('\n');
        out.push_str(&section);
    }
    std::fs::write(md_path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_hand_written_sections() {
        let md = "# Benchmarks\n\n## P1\nold\n\n## mongo-wire\n\nops/s: 5\n\n## Commands\nx\n";
        assert_eq!(
            kept_section(md, "mongo-wire").as_deref(),
            Some("## mongo-wire\n\nops/s: 5\n")
        );
        let md = "## mongo-wire\nonly\n";
        assert_eq!(
            kept_section(md, "mongo-wire").as_deref(),
            Some("## mongo-wire\nonly\n")
        );
        assert_eq!(kept_section("# Benchmarks\n", "mongo-wire"), None);
        let md = "## P6\nx\n\n## Profiles\n\nperf\n\n## Commands\n";
        assert_eq!(
            kept_section(md, "Profiles").as_deref(),
            Some("## Profiles\n\nperf\n")
        );
    }

    #[test]
    fn reads_the_load_generators_json_report_as_its_type() {
        let report = reclaimd::load::TargetStats::default().report(
            "http://127.0.0.1:1",
            std::time::Duration::from_secs(1),
            1.0,
        );
        let text = serde_json::to_string(&report).unwrap();
        let back: TargetReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn reads_the_manifest_run_sh_writes() {
        let text = "experiments = [\"P3\"]\nseconds = 8\nseed = 42\ndb_ms = 18\ncompute_ms = 2\n\
                    rounds = 2\nwrk_threads = 1\nwrk_connections = 32\n\
                    p1_rates = [10, 20]\np2_workers = [1]\np3_ratios = [\"0.1\", \"1.0\"]\n\
                    p3_rate = 400\np4_db_ms = 5000\np4_rate = 2500\np4_seconds = 4\n\
                    p4_sample_at = 4.6\np4_pool = 200\np4_queue_wait = \"600s\"\n\
                    p4_timeout = \"1200s\"\np5_rate = 1000\np6_rates = [2000]\n";
        let m: Manifest = toml::from_str(text).unwrap();
        assert!(m.ran("P3") && !m.ran("P1"));
        assert_eq!(m.p3_ratios, ["0.1", "1.0"]);
        assert_eq!(m.p4_requests(), 10_000.0);
    }

    #[test]
    fn keeps_the_live_view_section() {
        let md = "# Benchmarks\n\n## P1\nold\n\n## Live view\n\n| a |\n\n## mongo-wire\nx\n";
        assert_eq!(
            live_view_section(md).as_deref(),
            Some("## Live view\n\n| a |\n")
        );
        assert_eq!(live_view_section("# Benchmarks\n"), None);
    }
}
