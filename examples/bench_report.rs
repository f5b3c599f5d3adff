//! Writes BENCHMARKS.md (and the P1 plot) from the results `bench/run.sh` leaves in its
//! output directory: `reclaimd load --json` reports (`NAME.json`), process figures
//! (`NAME.kv`, `key=value` lines), `machine.txt` and `commands.txt`.
//!
//! `bench_report OUT_DIR BENCHMARKS.md PLOT.svg`. A `## mongo-wire` section already in
//! BENCHMARKS.md is kept as it is (another suite writes it).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

type Error = Box<dyn std::error::Error>;

/// (offered req/s, ok req/s, p99 ms) of one load point.
type Point = (f64, f64, f64);

const P1_RATES: [u32; 7] = [10, 20, 40, 80, 160, 240, 320];
const P2_WORKERS: [u32; 4] = [1, 4, 16, 64];
const P6_RATES: [u32; 6] = [2000, 5000, 10000, 20000, 40000, 80000];

struct Results {
    dir: PathBuf,
}

impl Results {
    fn json(&self, name: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.json"))).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The first target of a load report.
    fn target(&self, name: &str) -> Option<Value> {
        self.json(name)?.get("targets")?.get(0).cloned()
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
}

fn num(v: &Value, path: &str) -> f64 {
    path.split('.')
        .try_fold(v, |v, key| v.get(key))
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

fn errors(t: &Value) -> String {
    match t.get("errors").and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "0".into(),
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

/// Mean server-side compute and wait (db + sched) per request, ms, of a load report.
fn split(t: &Value) -> (f64, f64) {
    (
        num(t, "server_timing_ms.compute"),
        num(t, "server_timing_ms.db") + num(t, "server_timing_ms.sched"),
    )
}

fn p1(r: &Results, out: &mut String, svg_name: &str) -> Option<(Vec<Point>, Vec<Point>)> {
    let rows: Vec<(u32, Option<Value>, Option<Value>)> = P1_RATES
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
    out.push_str(
        "Route mix: `report` only (DB → compute → DB aggregate → compute). mongo-wire adds the DB \
         latency to every command; `workload.report_compute_ms` sets each compute segment. \
         Poisson arrivals, each offered rate for the same duration; latency from the intended \
         send time. `limits.max_queue = 100`, so an overloaded daemon sheds (503) rather than \
         queueing without bound.\n\n",
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
        let cells = |t: &Option<Value>| match t {
            Some(t) => format!(
                "{} | {} | {} | {}",
                f1(num(t, "throughput_rps")),
                ms(num(t, "latency_ms.p50")),
                ms(num(t, "latency_ms.p99")),
                errors(t)
            ),
            None => "– | – | – | –".into(),
        };
        let _ = writeln!(out, "| {rate} | {} | {} |", cells(s), cells(a));
        if let Some(t) = s {
            sync_pts.push((
                f64::from(*rate),
                num(t, "throughput_rps"),
                num(t, "latency_ms.p99"),
            ));
        }
        if let Some(t) = a {
            async_pts.push((
                f64::from(*rate),
                num(t, "throughput_rps"),
                num(t, "latency_ms.p99"),
            ));
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
        .max_by(|x, y| num(x, "throughput_rps").total_cmp(&num(y, "throughput_rps")));
    if let Some(a) = best_async {
        let compute = num(a, "server_timing_ms.compute");
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

fn p2(r: &Results, out: &mut String) {
    let runs: Vec<(u32, Value)> = P2_WORKERS
        .iter()
        .filter_map(|&n| Some((n, r.target(&format!("p2-sync{n}"))?)))
        .collect();
    if runs.is_empty() {
        return;
    }
    out.push_str("## P2 — sync with N workers against the model N / (compute + wait)\n\n");
    // The model's per-request cost comes from an unloaded run when there is one.
    let base = r
        .target("p1-sync-10")
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
        let got = num(t, "throughput_rps");
        let bounded = model.min(cpu_ceiling);
        let _ = writeln!(
            out,
            "| {n} | {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {} |",
            f1(num(t, "offered_rps")),
            f1(got),
            f1(model),
            got / model,
            f1(bounded),
            got / bounded,
            ms(num(t, "latency_ms.p50")),
            ms(num(t, "latency_ms.p99")),
            errors(t)
        );
    }
    out.push('\n');
}

fn cpu_per_request(r: &Results, name: &str, t: &Value, key: &str) -> f64 {
    let cpu = r.kv(name).get(key).copied().unwrap_or(f64::NAN);
    let sent = num(t, "sent");
    cpu * 1e6 / sent
}

fn p3(r: &Results, out: &mut String) {
    let rounds: Vec<(u32, Value, Value)> = (1..=2)
        .filter_map(|round| {
            Some((
                round,
                r.target(&format!("p3-{round}-spans-true"))?,
                r.target(&format!("p3-{round}-spans-false"))?,
            ))
        })
        .collect();
    if rounds.is_empty() {
        return;
    }
    out.push_str("## P3 — instrumentation overhead: spans on vs off\n\n");
    out.push_str(
        "Async mode, 1 thread, zero DB latency and `workload.*_compute_ms = 0` (so the daemon's \
         own cost is what is measured), 400 req/s of `user=1,report=1`, the same seeded schedule \
         for every run. Spans on: `telemetry.spans = true` with `OTEL_EXPORTER_OTLP_ENDPOINT` set, \
         so every request's spans (request, queue, compute, one per MongoDB call) go through the \
         OpenTelemetry layer and are exported over OTLP/HTTP to a sink (the hello-world, which \
         discards them). Spans off: `telemetry.spans = false`. Daemon CPU time from /proc over \
         the load run, divided by the requests sent. Two rounds, on and off alternating.\n\n\
         | round | spans | ok | daemon CPU µs / request | p50 | p99 |\n|---|---|---:|---:|---:|---:|\n",
    );
    let mut ratios = Vec::new();
    for (round, on, off) in &rounds {
        let cpu_on = cpu_per_request(r, &format!("p3-{round}-spans-true"), on, "daemon_cpu_s");
        let cpu_off = cpu_per_request(r, &format!("p3-{round}-spans-false"), off, "daemon_cpu_s");
        for (name, t, cpu) in [("on", on, cpu_on), ("off", off, cpu_off)] {
            let _ = writeln!(
                out,
                "| {round} | {name} | {} | {cpu:.0} | {} | {} |",
                num(t, "ok"),
                ms(num(t, "latency_ms.p50")),
                ms(num(t, "latency_ms.p99"))
            );
        }
        ratios.push(cpu_on / cpu_off);
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let off_cpu: Vec<f64> = rounds
        .iter()
        .map(|(round, _, off)| {
            cpu_per_request(r, &format!("p3-{round}-spans-false"), off, "daemon_cpu_s")
        })
        .collect();
    let off_mean = off_cpu.iter().sum::<f64>() / off_cpu.len() as f64;
    let each: Vec<String> = ratios.iter().map(|x| format!("{x:.2}×")).collect();
    let _ = writeln!(
        out,
        "\n- **CPU per request, spans on / off = {mean:.2}×** ({:+.0}%; rounds: {}).",
        100.0 * (mean - 1.0),
        each.join(", ")
    );
    if let Some(ns) = r.kv("p3-measure").get("ns_per_request") {
        let _ = writeln!(
            out,
            "- The measurement path itself with spans off (`examples/measure_cost.rs`: tracker, \
             instrumented polls, metrics update, Server-Timing header; no I/O): {ns:.0} ns per \
             request = {:.1}% of the spans-off daemon CPU per request.",
            100.0 * ns / 1e3 / off_mean
        );
    }
    out.push('\n');
}

fn p4(r: &Results, out: &mut String) {
    let (a, s, h, d) = (
        r.kv("p4-async"),
        r.kv("p4-sync"),
        r.kv("p4-hello"),
        r.kv("p4-driver"),
    );
    if a.is_empty() && s.is_empty() {
        return;
    }
    out.push_str("## P4 — memory with 10,000 concurrent waiting requests\n\n");
    out.push_str(
        "DB latency 5 s; `reclaimd load` sends 2,500 req/s of `user` for 4 s (10,000 requests, \
         none answered before its 5 s DB wait ends) and the daemon's RSS is read from /proc at \
         4.6 s. The async run's sync pool has 1 thread (the daemon keeps both dispatchers ready). \
         The floor rows: the hello-world answering after a 5 s sleep, under the same load; and \
         the async driver alone with 10,000 `find_one` calls waiting. \
         `mongodb.max_pool_size = 1000`, `limits.max_queue = 20000`. Requests in state = \
         the daemon's `reclaimd_requests_in_state` gauges summed at that moment.\n\n\
         | mode | RSS idle | RSS with 10k waiting | peak RSS | requests in state | queued | threads |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let mb = |kv: &BTreeMap<String, f64>, k: &str| {
        kv.get(k)
            .map_or("–".to_string(), |v| format!("{:.1} MB", v / 1024.0))
    };
    let n = |kv: &BTreeMap<String, f64>, k: &str| {
        kv.get(k).map_or("–".to_string(), |v| format!("{v:.0}"))
    };
    for (name, kv) in [
        ("async, 1 thread", &a),
        ("sync, 1000 workers", &s),
        ("floor: hello-world, 5 s delay", &h),
        ("floor: mongodb driver alone, pool 200", &d),
    ] {
        if kv.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            mb(kv, "rss_idle_kb"),
            mb(kv, "rss_kb"),
            mb(kv, "hwm_kb"),
            n(kv, "in_state"),
            n(kv, "queued"),
            n(kv, "threads")
        );
    }
    if let (Some(ar), Some(sr)) = (a.get("hwm_kb"), s.get("hwm_kb")) {
        let _ = writeln!(
            out,
            "\n- **peak RSS: async {:.1} MB (aim ≤ 100 MB); sync / async = {:.1}×.**",
            ar / 1024.0,
            sr / ar
        );
        if let Some(hr) = h.get("hwm_kb") {
            let _ = writeln!(
                out,
                "- Above the plain-hyper floor ({:.1} MB for the same 10,000 waiting requests): \
                 async {:.1} KB and sync {:.1} KB per waiting request.",
                hr / 1024.0,
                (ar - hr) / 10_000.0,
                (sr - hr) / 10_000.0
            );
            if let Some(dr) = d.get("rss_kb") {
                let idle = d.get("rss_idle_kb").copied().unwrap_or(0.0);
                let _ = writeln!(
                    out,
                    "- The async `mongodb` driver alone holds {:.1} MB for 10,000 waiting calls \
                     (`examples/driver_floor.rs`, {:.1} KB per call above its idle RSS); the \
                     async daemon's remainder above both floors is {:.1} KB per request.",
                    dr / 1024.0,
                    (dr - idle) / 10_000.0,
                    (ar - hr - (dr - idle)) / 10_000.0
                );
            }
        }
        out.push('\n');
    }
}

fn p5(r: &Results, out: &mut String) {
    let Some(report) = r.json("p5") else { return };
    let Some(targets) = report.get("targets").and_then(Value::as_array) else {
        return;
    };
    let [daemon, hello] = targets.as_slice() else {
        return;
    };
    let kv = r.kv("p5");
    out.push_str("## P5 — HTTP overhead: the quick route at zero DB latency vs hello-world\n\n");
    out.push_str(
        "One `reclaimd load` drives both with the identical schedule (1,000 req/s, `user` route; \
         the hello-world answers any path). The daemon runs async with 1 thread; the hello-world \
         (`examples/hello.rs`, plain hyper) with 1 runtime thread. The daemon's request still \
         makes its MongoDB round trip to mongo-wire, at zero added latency.\n\n\
         | target | ok | p50 | p90 | p99 | CPU µs / request |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let d_cpu = kv.get("daemon_cpu_s").copied().unwrap_or(f64::NAN) * 1e6 / num(daemon, "sent");
    let h_cpu = kv.get("hello_cpu_s").copied().unwrap_or(f64::NAN) * 1e6 / num(hello, "sent");
    for (name, t, cpu) in [
        ("reclaimd, GET /api/users/{id}", daemon, d_cpu),
        ("hello-world", hello, h_cpu),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {cpu:.0} |",
            num(t, "ok"),
            ms(num(t, "latency_ms.p50")),
            ms(num(t, "latency_ms.p90")),
            ms(num(t, "latency_ms.p99"))
        );
    }
    let _ = writeln!(
        out,
        "\n- **p50 reclaimd / hello = {:.1}×; CPU per request reclaimd / hello = {:.1}×.** Server-side \
         phases of the quick route (means): queue {}, compute {}, db {}, total {}.\n",
        num(daemon, "latency_ms.p50") / num(hello, "latency_ms.p50"),
        d_cpu / h_cpu,
        ms(num(daemon, "server_timing_ms.queue")),
        ms(num(daemon, "server_timing_ms.compute")),
        ms(num(daemon, "server_timing_ms.db")),
        ms(num(daemon, "server_timing_ms.total")),
    );
}

fn p6(r: &Results, out: &mut String) {
    let runs: Vec<(u32, Value)> = P6_RATES
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
         send − intended send time; it includes tokio's 1 ms timer granularity.\n\n\
         | offered req/s | ok req/s | errors | lateness p50 | lateness p99 | latency p99 |\n\
         |---:|---:|---|---:|---:|---:|\n",
    );
    let mut ceiling = None;
    for (rate, t) in &runs {
        let got = num(t, "throughput_rps");
        let late99 = num(t, "lateness_ms.p99");
        if got >= 0.95 * f64::from(*rate) && late99 <= 10.0 && num(t, "errors_total") == 0.0 {
            ceiling = Some((*rate, late99));
        }
        let _ = writeln!(
            out,
            "| {rate} | {} | {} | {} | {} | {} |",
            f1(got),
            errors(t),
            ms(num(t, "lateness_ms.p50")),
            ms(late99),
            ms(num(t, "latency_ms.p99"))
        );
    }
    let highest_used = 1000.0;
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
                "\n- **ceiling on one core: {bound}; at {rate} req/s the lateness p99 is {}** \
                 (criterion: ≥ 95% delivered, no errors, lateness p99 ≤ 10 ms). That is {:.0}× \
                 the highest rate the other experiments offer per target ({highest_used:.0} req/s, \
                 P5).\n",
                ms(late),
                f64::from(rate) / highest_used
            );
        }
        None => out.push_str("\n- no tested rate met the ceiling criterion.\n\n"),
    }
}

/// The `## mongo-wire` section of an existing BENCHMARKS.md, heading included.
fn mongo_wire_section(existing: &str) -> Option<String> {
    let start = existing
        .find("\n## mongo-wire")
        .map(|i| i + 1)
        .or_else(|| existing.starts_with("## mongo-wire").then_some(0))?;
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
         the hello-world in `examples/hello.rs`). Each headline figure is a ratio of two \
         measurements taken in the same run, on the machine below; absolute numbers depend on \
         it and on what else it was doing. The exact commands are at the end. Rerun: \
         `bench/run.sh` (about 10 minutes on 2 cores).\n\n",
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
    if let Some((sync, asyn)) = p1(&r, &mut out, &svg_link) {
        std::fs::write(svg_path, plot(&sync, &asyn))?;
    }
    p2(&r, &mut out);
    p3(&r, &mut out);
    p4(&r, &mut out);
    p5(&r, &mut out);
    p6(&r, &mut out);

    out.push_str("## Commands\n\nAs run by `bench/run.sh`, in order (paths relative to the repository):\n\n```sh\n");
    out.push_str(r.text("commands.txt").trim_end());
    out.push_str("\n```\n");

    let existing = std::fs::read_to_string(md_path).unwrap_or_default();
    if let Some(section) = mongo_wire_section(&existing) {
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
    fn keeps_the_mongo_wire_section() {
        let md = "# Benchmarks\n\n## P1\nold\n\n## mongo-wire\n\nops/s: 5\n\n## Commands\nx\n";
        assert_eq!(
            mongo_wire_section(md).as_deref(),
            Some("## mongo-wire\n\nops/s: 5\n")
        );
        let md = "## mongo-wire\nonly\n";
        assert_eq!(
            mongo_wire_section(md).as_deref(),
            Some("## mongo-wire\nonly\n")
        );
        assert_eq!(mongo_wire_section("# Benchmarks\n"), None);
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
