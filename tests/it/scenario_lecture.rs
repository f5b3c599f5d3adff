//! `scenario lecture` against a stand-in server: one that serves one request at a time (like
//! sync mode with one worker) and one that overlaps waits (like async mode).

use std::process::Command;
use std::time::Duration;

use reclaimd::api::Mode;
use reclaimd::api::Route;
use reclaimd::scenario::{lecture, render_runs, LectureOptions};

use crate::support::fake::{self, FakeOptions};

/// 10 ms between the sends, so a busy machine cannot reorder the arrivals.
const STAGGERED: LectureOptions = LectureOptions {
    stagger: Duration::from_millis(10),
    timeout: Duration::from_secs(30),
};

fn opts(serial: bool) -> FakeOptions {
    FakeOptions {
        user_delay: Duration::from_millis(15),
        report_delay: Duration::from_millis(100),
        serial,
        ..FakeOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_at_a_time_the_quick_request_finishes_last_and_waits_longest() {
    let server = fake::start(opts(true)).await;
    let run = lecture(&server.url(), STAGGERED).await.unwrap();
    assert_eq!(run.mode, Some(Mode::Sync));
    let routes: Vec<Route> = run.requests.iter().map(|r| r.request.route).collect();
    assert_eq!(routes, [Route::Report, Route::Report, Route::User]);
    let quick = run.quick().unwrap();
    for other in run
        .requests
        .iter()
        .filter(|r| r.request.route == Route::Report)
    {
        assert!(quick.finished_at > other.finished_at, "{run:#?}");
        assert!(quick.timing.queue > other.timing.queue, "{run:#?}");
    }
    // It queued behind both long requests: 2 × 100 ms of someone else's work, less the 20 ms
    // it arrived after the first.
    assert!(quick.timing.queue >= Duration::from_millis(100), "{run:#?}");
    assert!(quick.perceived() >= Duration::from_millis(120), "{run:#?}");
    // Natural times were measured alone, before, and reflect the known delays.
    assert!(quick.natural >= Duration::from_millis(15));
    assert!(run.requests[0].natural >= Duration::from_millis(100));

    let text = render_runs(std::slice::from_ref(&run), 60);
    assert!(text.contains("(sync mode)"), "{text}");
    assert!(text.contains("request 3 user (quick)  |"), "{text}");
    assert!(text.contains("finish order: 1, 2, 3."), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_waits_the_quick_request_finishes_first() {
    // A wide margin between the quick and the long requests, so a busy test machine cannot
    // reorder their ends.
    let server = fake::start(FakeOptions {
        report_delay: Duration::from_millis(250),
        ..opts(false)
    })
    .await;
    let run = lecture(&server.url(), STAGGERED).await.unwrap();
    assert_eq!(run.mode, Some(Mode::Async));
    let quick = run.quick().unwrap();
    for other in run
        .requests
        .iter()
        .filter(|r| r.request.route == Route::Report)
    {
        assert!(quick.finished_at < other.finished_at, "{run:#?}");
    }
    let text = render_runs(&[run.clone(), run], 60);
    // Two runs print a side-by-side summary.
    assert!(text.contains("perceived (x natural)"), "{text}");
}

#[test]
fn compare_needs_two_urls_and_an_unreachable_target_fails_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_reclaimd"))
        .args(["scenario", "lecture", "--compare", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "bad arguments: EX_USAGE");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--compare"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_reclaimd"))
        .args([
            "scenario",
            "lecture",
            "--target",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot connect to"), "{stderr}");
}
