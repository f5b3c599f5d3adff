//! End to end: `scenario lecture` against the real daemon (in-process, on mongo-wire with
//! 100 ms per DB command) in both modes. Asserts the lecture's ordering, not times.

use std::time::Duration;

use reclaimd::api::Mode;
use reclaimd::api::Route;
use reclaimd::scenario::{lecture, render_runs, LectureOptions, LectureRun};

use crate::support::app::TestApp;

fn run(mode: Mode) -> LectureRun {
    let app = TestApp::start(100, |c| {
        c.mode = mode;
        c.sync.workers = 1;
        c.async_.worker_threads = 1;
    });
    // Three driver connections open before the lecture: a request that had to open one
    // (a handshake at 100 ms) would lose the async quick request its lead.
    assert!(app
        .concurrent(3, |i| format!("/api/users/{}", i + 1))
        .iter()
        .all(|r| r.status == 200));
    let base = app.url("");
    // 10 ms apart, so a busy machine cannot reorder the arrivals.
    let opts = LectureOptions {
        stagger: Duration::from_millis(10),
        ..LectureOptions::default()
    };
    app.rt
        .block_on(lecture(&base, opts))
        .expect("the lecture runs")
}

#[test]
fn sync_with_one_worker_the_quick_request_finishes_last_and_waits_longest() {
    let run = run(Mode::Sync);
    assert_eq!(run.mode, Some(Mode::Sync));
    let quick = run.quick().expect("a quick request");
    let long: Vec<_> = run
        .requests
        .iter()
        .filter(|r| r.request.route == Route::Report)
        .collect();
    assert_eq!(long.len(), 2);
    for other in &long {
        assert!(quick.finished_at > other.finished_at, "{run:#?}");
        assert!(quick.timing.queue > other.timing.queue, "{run:#?}");
        assert!(quick.perceived() > other.perceived(), "{run:#?}");
    }
    // It waited for the whole of the second long request's service (its DB waits included:
    // the only worker was blocked through them).
    let second = long[1].timing;
    assert!(quick.timing.queue > second.compute + second.db, "{run:#?}");
    let text = render_runs(std::slice::from_ref(&run), 60);
    assert!(text.contains("finish order: 1, 2, 3."), "{text}");
    // One worker, one request at a time: no compute ran inside another request's DB wait.
    assert_eq!(run.reclaimed_share(), Some(0.0), "{run:#?}");
    assert!(
        text.contains("Compute done inside other requests' DB waits: 0%"),
        "{text}"
    );
}

#[test]
fn async_with_one_thread_the_quick_request_finishes_first() {
    let run = run(Mode::Async);
    assert_eq!(run.mode, Some(Mode::Async));
    let quick = run.quick().expect("a quick request");
    for other in run
        .requests
        .iter()
        .filter(|r| r.request.route == Route::Report)
    {
        assert!(quick.finished_at < other.finished_at, "{run:#?}");
    }
    let text = render_runs(std::slice::from_ref(&run), 60);
    assert!(text.contains("finish order: 3,"), "{text}");
    // While one request waited on MongoDB, the thread ran another's compute.
    let share = run
        .reclaimed_share()
        .expect("Server-Timing carries reclaimed");
    assert!(share > 0.0 && share <= 1.0, "{run:#?}");
    assert!(
        text.contains("Compute done inside other requests' DB waits: "),
        "{text}"
    );
}
