//! The load generator's schedule and accounting, against a local server with a known delay.

use std::time::Duration;

use reclaimd::api::Mode;
use reclaimd::api::Route;
use reclaimd::load::{run_load, Arrivals, LoadPlan, Progress};

use crate::support::fake::{self, FakeOptions};

fn plan(targets: Vec<String>) -> LoadPlan {
    LoadPlan {
        targets,
        rate: 200.0,
        duration: Some(Duration::from_secs(1)),
        arrivals: Arrivals::Constant,
        mix: "user=2,report=1,order=1".parse().unwrap(),
        users: 50,
        max_in_flight: 10_000,
        timeout: Duration::from_secs(30),
        seed: 11,
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_the_schedule_to_every_target_and_accounts_for_each_request() {
    let delay = Duration::from_millis(20);
    let opts = FakeOptions {
        user_delay: delay,
        report_delay: delay,
        ..FakeOptions::default()
    };
    let a = fake::start(opts.clone()).await;
    let b = fake::start(opts).await;

    let report = run_load(
        plan(vec![a.url(), b.url()]),
        std::future::pending(),
        Progress::Off,
    )
    .await;

    // 200 req/s for 1 s, evenly spaced: exactly 200 requests per target.
    assert_eq!(report.targets.len(), 2);
    let (ra, rb) = (a.received(), b.received());
    assert_eq!(ra.len(), 200);
    // The identical schedule: the same requests (user ids, routes) reach both targets.
    assert_eq!(sorted(ra.clone()), sorted(rb));
    let posts = ra
        .iter()
        .filter(|r| r.starts_with("POST /api/orders"))
        .count() as u64;
    assert!(
        posts > 0 && posts < 200,
        "the mix sends some orders: {posts}"
    );
    assert!(ra.iter().any(|r| r.ends_with("/report")));

    for (t, server) in report.targets.iter().zip([&a, &b]) {
        assert_eq!(t.url, server.url());
        assert_eq!(t.scheduled, 200);
        assert_eq!(t.sent, 200);
        // Orders answer 503 in the fake; everything else is 200.
        assert_eq!(t.ok, 200 - posts);
        assert_eq!(t.errors_total, posts);
        assert_eq!(t.errors.get("503").copied(), Some(posts));
        assert_eq!(t.errors.len(), 1, "{:?}", t.errors);
        assert_eq!(t.latency_ms.count, t.ok);
        assert_eq!(t.mode, Some(Mode::Async));

        // Latency is measured from the intended send time, so it can never be below the
        // server's delay; on a loaded machine it can be far above, hence the wide bound.
        let l = &t.latency_ms;
        let delay_ms = delay.as_secs_f64() * 1e3;
        assert!(l.p50 >= delay_ms, "p50 {} < delay", l.p50);
        assert!(l.p50 < delay_ms * 25.0, "p50 {} far above the delay", l.p50);
        assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);

        // The server-side phase means come from the Server-Timing headers of 2xx responses.
        let p = &t.server_timing_ms;
        assert_eq!(p.responses, t.ok);
        assert!((p.db - delay_ms).abs() < 1e-6, "db mean {}", p.db);
        assert!((p.compute - 0.5).abs() < 1e-6, "compute mean {}", p.compute);
        assert!(
            (p.total - (delay_ms + 0.5)).abs() < 1e-6,
            "total mean {}",
            p.total
        );
        let routed: u64 = t.routes.values().map(|r| r.count).sum();
        assert_eq!(routed, t.ok);
        assert!(!t.routes.contains_key(&Route::Order));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_includes_the_queue_a_slow_server_builds() {
    // One request at a time, 50 ms each, offered 40 req/s (twice what it can serve) for 0.5 s:
    // 20 requests, the last one waits for the 19 before it. A closed-loop tool that timed
    // from the actual send would report ~50 ms throughout.
    let server = fake::start(FakeOptions {
        user_delay: Duration::from_millis(50),
        serial: true,
        ..FakeOptions::default()
    })
    .await;
    let mut p = plan(vec![server.url()]);
    p.rate = 40.0;
    p.duration = Some(Duration::from_millis(500));
    p.mix = "user=1".parse().unwrap();
    let report = run_load(p, std::future::pending(), Progress::Off).await;
    let t = &report.targets[0];
    assert_eq!((t.scheduled, t.ok, t.errors_total), (20, 20, 0));
    // 20 × 50 ms of serial service: the last completes ≥ 1 s after start, but was due at
    // 475 ms, so the max latency is at least 1000 − 475 ms.
    assert!(t.latency_ms.max >= 525.0, "max {}", t.latency_ms.max);
    assert!(t.server_timing_ms.queue > 0.0);
    assert_eq!(t.mode, Some(Mode::Sync));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_beyond_the_in_flight_cap_is_counted_not_delayed() {
    let server = fake::start(FakeOptions {
        user_delay: Duration::from_millis(300),
        ..FakeOptions::default()
    })
    .await;
    let mut p = plan(vec![server.url()]);
    p.rate = 100.0;
    p.duration = Some(Duration::from_millis(500));
    p.mix = "user=1".parse().unwrap();
    p.max_in_flight = 2;
    let report = run_load(p, std::future::pending(), Progress::Off).await;
    let t = &report.targets[0];
    // Every request due is accounted: either answered or counted as overflow.
    assert_eq!(t.scheduled, 50);
    let overflow = t.errors.get("overflow").copied().unwrap_or(0);
    assert!(overflow > 0, "{:?}", t.errors);
    assert_eq!(t.ok + overflow, 50);
    assert_eq!(t.sent, t.ok);
    assert_eq!(server.received().len() as u64, t.ok);
    assert!(
        server
            .max_concurrent
            .load(std::sync::atomic::Ordering::SeqCst)
            <= 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_on_shutdown_and_counts_connection_errors() {
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = plan(vec![format!("http://127.0.0.1:{port}")]);
    p.duration = None;
    p.arrivals = Arrivals::Poisson;
    let report = run_load(
        p,
        tokio::time::sleep(Duration::from_millis(300)),
        Progress::Off,
    )
    .await;
    let t = &report.targets[0];
    assert!(report.duration_s < 5.0);
    assert!(t.scheduled > 0);
    assert_eq!(t.ok, 0);
    assert_eq!(t.errors.get("connect").copied(), Some(t.scheduled));
}
