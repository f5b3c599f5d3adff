//! The measurement model (docs/ARCHITECTURE.md §4) checked on a live daemon: phases add up, reclaimed
//! time is exactly 0 with one sync worker and positive in async, thread accounting matches
//! DB waits, gauges behave, tokio-metrics agrees, and promtool accepts the exposition.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reclaimd::api::Mode;

use crate::support::app::{metric_value, Resp, TestApp};
use crate::support::tools::tool;

const STATES: [&str; 4] = ["queued", "computing", "waiting_db", "runnable"];

/// Samples `/metrics` every 20 ms on another thread until stopped; returns the texts.
fn sample_metrics(app: &TestApp) -> (Arc<AtomicBool>, std::thread::JoinHandle<Vec<String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let url = app.admin_url("/metrics");
    let stop2 = stop.clone();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(hyper_util::client::legacy::connect::HttpConnector::new());
        let mut out = Vec::new();
        while !stop2.load(Ordering::SeqCst) {
            let text = rt.block_on(async {
                use http_body_util::BodyExt;
                let req = hyper::Request::get(url.clone())
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                let resp = client.request(req).await.unwrap();
                String::from_utf8(
                    resp.into_body()
                        .collect()
                        .await
                        .unwrap()
                        .to_bytes()
                        .to_vec(),
                )
                .unwrap()
            });
            out.push(text);
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    });
    (stop, handle)
}

fn assert_phases_add_up(rs: &[Resp]) {
    for r in rs {
        assert_eq!(r.status, 200, "{r:?}");
        let t = r.timing();
        let sum = t.queue + t.compute + t.db + t.sched;
        let total = t.total.as_secs_f64();
        // Rounding to microseconds in the header is the only slack.
        let diff = (sum.as_secs_f64() - total).abs();
        assert!(
            diff <= 0.05 * total + 5e-6,
            "phases {sum:?} vs total {:?}: {t:?}",
            t.total
        );
    }
}

#[test]
fn sync_one_worker_reclaims_nothing_and_blocks_for_every_db_wait() {
    let app = TestApp::start(10, |c| {
        c.sync.workers = 1;
        c.workload.report_compute_ms = 1.0;
    });
    let (stop, sampler) = sample_metrics(&app);
    let rs = app.report_load(30);
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.join().unwrap();
    assert_phases_add_up(&rs);
    assert!(rs.iter().all(|r| r.mode() == Mode::Sync));

    let text = app.metrics_text();
    let m = |s: &str| metric_value(&text, s);
    assert_eq!(
        m(r#"reclaimd_reclaimed_seconds_total{mode="sync"}"#),
        0.0,
        "exactly zero"
    );
    let blocked = m(r#"reclaimd_worker_seconds_total{mode="sync",state="blocked"}"#);
    let db = m(r#"reclaimd_phase_seconds_total{mode="sync",phase="db"}"#);
    assert!(db > 0.3, "30 requests × ≥10 ms of DB wait: {db}");
    assert!(
        (blocked - db).abs() <= 0.05 * db,
        "blocked {blocked} ≈ db wait {db}"
    );
    // Queue depth rose while the load ran and is back to 0 after it.
    let max_depth = samples
        .iter()
        .map(|t| metric_value(t, r#"reclaimd_queue_depth{mode="sync"}"#))
        .fold(0.0, f64::max);
    assert!(max_depth >= 2.0, "queue depth rose under load: {max_depth}");
    assert_eq!(m(r#"reclaimd_queue_depth{mode="sync"}"#), 0.0);
    assert_gauges_sane(&samples, &text);
}

#[test]
fn async_one_thread_reclaims_waiting_time_and_agrees_with_tokio_metrics() {
    let app = TestApp::start(10, |c| {
        c.mode = Mode::Async;
        c.async_.worker_threads = 1;
        c.workload.report_compute_ms = 1.0;
    });
    let (stop, sampler) = sample_metrics(&app);
    let rs = app.report_load(30);
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.join().unwrap();
    assert_phases_add_up(&rs);
    assert!(rs.iter().all(|r| r.mode() == Mode::Async));

    let text = app.metrics_text();
    let m = |s: &str| metric_value(&text, s);
    let reclaimed = m(r#"reclaimd_reclaimed_seconds_total{mode="async"}"#);
    let compute = m(r#"reclaimd_phase_seconds_total{mode="async",phase="compute"}"#);
    let db = m(r#"reclaimd_phase_seconds_total{mode="async",phase="db"}"#);
    let sched = m(r#"reclaimd_phase_seconds_total{mode="async",phase="sched"}"#);
    assert!(reclaimed > 0.0, "async reclaims waiting time");
    assert!(
        reclaimed <= compute,
        "reclaimed {reclaimed} ≤ compute {compute}"
    );

    // tokio-metrics' TaskMonitor measured the same tasks independently.
    let tm = app.server().app.task_monitor().cumulative();
    let close = |ours: f64, theirs: Duration, what: &str| {
        let theirs = theirs.as_secs_f64();
        assert!(
            (ours - theirs).abs() <= 0.10 * theirs.max(ours) + 0.002,
            "{what}: ours {ours} vs TaskMonitor {theirs}"
        );
    };
    close(compute, tm.total_poll_duration, "poll ≈ compute");
    close(db, tm.total_idle_duration, "idle ≈ db");
    close(sched, tm.total_scheduled_duration, "scheduled ≈ sched");
    assert_gauges_sane(&samples, &text);
}

fn assert_gauges_sane(samples: &[String], at_rest: &str) {
    for text in samples {
        for line in text.lines().filter(|l| {
            l.starts_with("reclaimd_requests_in_state") || l.starts_with("reclaimd_queue_depth")
        }) {
            let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(v >= 0.0, "gauge went negative: {line}");
        }
    }
    for mode in ["sync", "async"] {
        for state in STATES {
            let s = format!(r#"reclaimd_requests_in_state{{mode="{mode}",state="{state}"}}"#);
            assert_eq!(metric_value(at_rest, &s), 0.0, "{s} at rest");
        }
    }
}

#[test]
fn compute_phase_and_workload_knob() {
    // A heavier workload shows up as more compute time per request (counted work, so this
    // compares one run's two settings rather than absolute times).
    let app = TestApp::start(0, |c| {
        c.workload.report_compute_ms = 0.0;
    });
    let light: Vec<_> = (0..5)
        .map(|_| app.get("/api/users/1/report").timing().compute)
        .collect();
    let app2 = TestApp::start(0, |c| c.workload.report_compute_ms = 20.0);
    let heavy: Vec<_> = (0..5)
        .map(|_| app2.get("/api/users/1/report").timing().compute)
        .collect();
    // Medians: one light request preempted mid-compute must not decide it.
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (heavy_m, light_m) = (median(heavy.clone()), median(light.clone()));
    assert!(heavy_m > light_m * 2, "heavy {heavy:?} vs light {light:?}");
}

#[test]
#[cfg_attr(
    no_promtool,
    ignore = "promtool not found at build time: apt-get install prometheus"
)]
fn promtool_accepts_the_metrics_after_load() {
    let promtool = tool("promtool");
    let app = TestApp::start(2, |c| c.sync.workers = 2);
    app.report_load(20);
    app.server().app.set_mode(Mode::Async, "test");
    app.report_load(20);
    app.get("/api/users/abc");
    let text = app.metrics_text();
    for name in [
        "reclaimd_requests_total",
        "reclaimd_request_duration_seconds_bucket",
        "reclaimd_phase_seconds_bucket",
        "reclaimd_phase_seconds_total",
        "reclaimd_requests_in_state",
        "reclaimd_queue_depth",
        "reclaimd_queue_capacity",
        "reclaimd_worker_seconds_total",
        "reclaimd_reclaimed_seconds_total",
        "reclaimd_shed_total",
        "reclaimd_mode",
        "reclaimd_config_reloads_total",
        "reclaimd_build_info",
        "reclaimd_tokio_worker_threads",
        "process_resident_memory_bytes",
        "process_threads",
    ] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} exported");
    }
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}"
    );
}
