//! The headline, end to end: each response's `Server-Timing: reclaimed;dur=` is its own share
//! of `reclaimd_reclaimed_seconds_total`, the compute counter beside it is the denominator,
//! `reclaimd load` reports Σ reclaimed ÷ Σ compute per target and mode, and the process CPU
//! counter has sub-second resolution.

use std::time::Duration;

use reclaimd::api::Mode;
use reclaimd::load::{run_load, Arrivals, LoadPlan, Progress};

use crate::support::app::{metric_value, Resp, TestApp};
use crate::support::eventually;
use crate::support::fake::{self, FakeOptions};

/// `(reclaimed, compute)` of `mode` as `/metrics` exports them, in seconds.
fn counters(app: &TestApp, mode: Mode) -> (f64, f64) {
    let text = app.metrics_text();
    let m = |name: &str| metric_value(&text, &format!("{name}{{mode=\"{mode}\"}}"));
    (
        m("reclaimd_reclaimed_seconds_total"),
        m("reclaimd_compute_seconds_total"),
    )
}

/// Σ reclaimed and Σ compute over the responses' `Server-Timing`, in seconds; each response's
/// reclaimed is at most its compute.
fn header_sums(rs: &[Resp]) -> (f64, f64) {
    let (mut reclaimed, mut compute) = (0.0, 0.0);
    for r in rs {
        assert_eq!(r.status, 200, "{r:?}");
        let t = r.timing();
        let own = t.reclaimed.expect("Server-Timing carries reclaimed");
        // Both are rounded to the microsecond in the header.
        assert!(
            own <= t.compute + Duration::from_micros(1),
            "reclaimed is part of compute: {t:?}"
        );
        reclaimed += own.as_secs_f64();
        compute += t.compute.as_secs_f64();
    }
    (reclaimed, compute)
}

fn assert_close(what: &str, ours: f64, theirs: f64) {
    // One microsecond of header rounding per response, at most.
    assert!(
        (ours - theirs).abs() <= 1e-3 + 0.01 * theirs,
        "{what}: Server-Timing sums to {ours}, /metrics says {theirs}"
    );
}

#[test]
fn async_server_timing_reclaimed_is_each_requests_share_of_the_counter() {
    let app = TestApp::start(10, |c| {
        c.mode = Mode::Async;
        c.async_.worker_threads = 1;
        c.workload.report_compute_ms = 1.0;
    });
    let (r0, c0) = counters(&app, Mode::Async);
    let rs = app.report_load(40);
    let (r1, c1) = counters(&app, Mode::Async);
    let (reclaimed, compute) = header_sums(&rs);
    assert!(rs.iter().all(|r| r.mode() == Mode::Async));
    assert!(
        reclaimed > 0.0,
        "40 concurrent requests on one thread reclaim"
    );
    assert_close("reclaimed", reclaimed, r1 - r0);
    assert_close("compute", compute, c1 - c0);
    // The headline, computed both ways.
    let share = reclaimed / compute;
    assert!(share > 0.0 && share <= 1.0, "share {share}");
    assert!((share - (r1 - r0) / (c1 - c0)).abs() < 0.02);
}

#[test]
fn sync_one_worker_every_response_reclaims_exactly_nothing() {
    let app = TestApp::start(10, |c| {
        c.sync.workers = 1;
        c.workload.report_compute_ms = 1.0;
    });
    let rs = app.report_load(20);
    let (reclaimed, compute) = header_sums(&rs);
    assert_eq!(reclaimed, 0.0);
    let (r, c) = counters(&app, Mode::Sync);
    assert_eq!(r, 0.0, "exactly zero");
    assert_close("compute", compute, c);
    assert!(c > 0.02, "20 requests with ≥ 1 ms of compute each: {c}");
    // The cost side: the one worker was parked in driver calls for every DB wait.
    let text = app.metrics_text();
    let blocked = metric_value(
        &text,
        r#"reclaimd_worker_seconds_total{mode="sync",state="blocked"}"#,
    );
    assert!(blocked > 0.2, "20 requests × ≥ 10 ms parked: {blocked}");
}

#[test]
fn load_reports_the_headline_per_mode_from_server_timing() {
    let app = TestApp::start(10, |c| {
        c.mode = Mode::Async;
        c.async_.worker_threads = 1;
    });
    let (r0, c0) = counters(&app, Mode::Async);
    let plan = LoadPlan {
        targets: vec![app.url("")],
        rate: 100.0,
        duration: Some(Duration::from_secs(2)),
        arrivals: Arrivals::Poisson,
        mix: "report=2,user=1".parse().unwrap(),
        users: 50,
        max_in_flight: 10_000,
        timeout: Duration::from_secs(30),
        seed: 3,
    };
    let report = app
        .rt
        .block_on(run_load(plan, std::future::pending(), Progress::Off));
    let (r1, c1) = counters(&app, Mode::Async);
    let t = &report.targets[0];
    assert_eq!(t.headline.len(), 1, "{:?}", t.headline);
    let h = &t.headline[0];
    assert_eq!(h.mode, Mode::Async);
    assert_eq!(h.responses, t.ok);
    assert_eq!(h.parked_threads, 0.0, "async threads never park");
    assert!(h.reclaimed_s > 0.0 && h.reclaimed_s <= h.compute_s, "{h:?}");
    assert_eq!(h.reclaimed_share, h.reclaimed_s / h.compute_s);
    // The same numbers the daemon exports.
    assert_close("reclaimed", h.reclaimed_s, r1 - r0);
    assert_close("compute", h.compute_s, c1 - c0);
    let table = report.to_string();
    assert!(table.contains("share of compute"), "{table}");
    assert!(
        table.contains(&format!("{:.1}%", h.reclaimed_share * 100.0)),
        "{table}"
    );
}

#[test]
fn load_headline_arithmetic_and_json_for_both_modes() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The fake reports 0.5 ms of compute per response, 0.25 ms of it reclaimed when it serves
    // concurrently (async) and none when it serves one at a time (sync).
    let sync = rt.block_on(fake::start(FakeOptions {
        serial: true,
        user_delay: Duration::from_millis(5),
        ..FakeOptions::default()
    }));
    let async_ = rt.block_on(fake::start(FakeOptions {
        user_delay: Duration::from_millis(5),
        ..FakeOptions::default()
    }));
    let plan = LoadPlan {
        targets: vec![sync.url(), async_.url()],
        rate: 50.0,
        duration: Some(Duration::from_secs(1)),
        arrivals: Arrivals::Constant,
        mix: "user=1".parse().unwrap(),
        users: 10,
        max_in_flight: 10_000,
        timeout: Duration::from_secs(30),
        seed: 1,
    };
    let report = rt.block_on(run_load(plan, std::future::pending(), Progress::Off));
    let json = serde_json::to_value(&report).unwrap();
    for (i, (mode, share)) in [("sync", 0.0), ("async", 0.5)].into_iter().enumerate() {
        let h = &json["targets"][i]["headline"];
        assert_eq!(h.as_array().map(Vec::len), Some(1), "{h:#}");
        let h = &h[0];
        assert_eq!(h["mode"], mode);
        assert_eq!(h["responses"], 50);
        let compute = h["compute_s"].as_f64().unwrap();
        assert!((compute - 50.0 * 0.0005).abs() < 1e-9, "{h:#}");
        let got = h["reclaimed_share"].as_f64().unwrap();
        assert!((got - share).abs() < 1e-9, "{mode}: {h:#}");
        let db = h["db_s"].as_f64().unwrap();
        assert!((db - 50.0 * 0.005).abs() < 1e-9, "{h:#}");
        let parked = h["parked_threads"].as_f64().unwrap();
        if mode == "sync" {
            // 0.25 s of DB wait over a run of about a second: a fraction of one thread.
            assert!(parked > 0.0 && parked <= db, "{h:#}");
        } else {
            assert_eq!(parked, 0.0);
        }
    }
    let table = report.to_string();
    // The headline table's rows are the only ones with a percentage.
    for (target, mode, share) in [("[1]", " sync ", "0.0%"), ("[2]", " async ", "50.0%")] {
        let row = table
            .lines()
            .find(|l| l.starts_with(target) && l.contains('%'))
            .unwrap_or_else(|| panic!("no headline row for {target}:\n{table}"));
        assert!(row.contains(mode) && row.contains(share), "{row}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn process_cpu_seconds_has_sub_second_resolution() {
    let app = TestApp::start(1, |c| {
        c.mode = Mode::Async;
        c.workload.report_compute_ms = 5.0;
    });
    let text = app.metrics_text();
    assert_eq!(
        text.matches("# TYPE process_cpu_seconds_total counter")
            .count(),
        1,
        "one standard CPU counter"
    );
    // Whole-second resolution shows only integers; clock ticks (10 ms) show fractions as soon
    // as the process has used some CPU that is not a whole number of seconds.
    let value = eventually(
        "process_cpu_seconds_total takes a fractional value",
        Duration::from_secs(30),
        || {
            app.report_load(10);
            let v = metric_value(&app.metrics_text(), "process_cpu_seconds_total");
            (v > 0.0 && v.fract() != 0.0).then_some(v).ok_or(v)
        },
    );
    assert!(value > 0.0);
}
