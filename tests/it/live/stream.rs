//! The live view's HTTP side against a daemon under load: page, assets, stream, limits.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

use hyper::Method;
use reclaimd::api::Mode;

use super::{lane_totals, Load, Sse};
use crate::support::app::TestApp;
use crate::support::eventually;
use crate::support::raw::raw_get;

#[test]
fn the_page_and_its_assets_are_self_contained() {
    let app = TestApp::start(2, |_| {});
    let admin = app.server().admin_addr;
    let (status, html) = raw_get(admin, "/live");
    assert_eq!(status, 200);
    assert!(html.contains("/live/live.js") && html.contains("/live/live.css"));
    for path in ["/live/live.js", "/live/live.css"] {
        let (status, text) = raw_get(admin, path);
        assert_eq!(status, 200, "{path}");
        assert!(text.len() > 500, "{path}");
        // Nothing from elsewhere: no CDN, works offline.
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path}"
        );
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
    let r = app.admin(Method::GET, "/live", vec![], "");
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    // Only on the admin listener.
    assert_eq!(app.get("/live").status, 404);
    assert_eq!(raw_get(app.server().app_addr, "/live/events").0, 404);
    // Read-only.
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let r = app.admin(method.clone(), "/live/events", vec![], "");
        assert_eq!(r.status, 405, "{method}");
    }
    assert_eq!(raw_get(admin, "/live/nothing").0, 404);
}

#[test]
fn the_stream_shows_every_sync_thread_blocked_and_then_the_async_thread_computing_many_requests() {
    let app = TestApp::start(20, |c| {
        c.sync.workers = 2;
        c.async_.worker_threads = 1;
        c.workload.report_compute_ms = 2.0;
    });
    // Below the pool's capacity (2 workers, ~40 ms per request): nothing is shed.
    let load = Load::start(vec![app.url("")], 30.0, "report=2,user=1");
    let mut sse = Sse::open(app.server().admin_addr);
    assert_eq!(sse.status, 200, "{}", sse.head);
    assert!(sse.head.contains("text/event-stream"), "{}", sse.head);
    let hello = sse.next().unwrap();
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["primary"], true);
    assert_eq!(hello["mode"], "sync");
    assert_eq!(hello["lanes"], serde_json::json!([2, 1]));
    assert_eq!(hello["token"], false, "no admin.token configured");

    let frames = sse.collect_for(Duration::from_secs(3));
    let sync = lane_totals(&frames, 0);
    // Both pool threads ran requests: compute segments, and (the most of it) blocked in DB.
    assert_eq!(
        sync.iter().map(|l| l.0).collect::<Vec<_>>(),
        vec![0, 1],
        "{sync:?}"
    );
    for (i, c, d, _) in &sync {
        assert!(
            *c > 0 && *d > *c,
            "sync lane {i}: compute {c} µs, db {d} µs"
        );
    }
    assert!(lane_totals(&frames, 1).is_empty(), "the async thread idles");
    let modes: Vec<_> = frames.iter().filter_map(|f| f["mode"].as_str()).collect();
    assert!(modes.iter().all(|m| *m == "sync"), "{modes:?}");
    // Sampled requests: arrivals, then phase changes, of requests served in sync mode.
    let req: Vec<i64> = frames
        .iter()
        .filter(|f| f["type"] == "frame")
        .flat_map(|f| {
            f["req"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_i64().unwrap())
        })
        .collect();
    assert!(req.chunks(6).any(|e| e[2] == 9), "arrivals");
    assert!(
        req.chunks(6).any(|e| e[2] == 2 && e[1] == 0),
        "sync db segments"
    );
    // Counts once a second, of the mode serving.
    let second = frames
        .iter()
        .find(|f| f.get("s").is_some())
        .expect("a second's counts");
    let s = &second["s"]["sync"];
    assert!(s["served"].as_u64().unwrap() > 0, "{second}");
    assert_eq!(s["threads"], 2, "{second}");
    assert!(
        s["blocked"].as_u64() > s["busy"].as_u64(),
        "sync threads mostly wait: {second}"
    );

    app.server().app.set_mode(Mode::Async, "test");
    let frames = eventually("frames say async", Duration::from_secs(5), || {
        let f = sse.collect_for(Duration::from_millis(500));
        if f.iter().any(|f| f["mode"] == "async") {
            Ok(f)
        } else {
            Err(f.len())
        }
    });
    let frames = [frames, sse.collect_for(Duration::from_secs(3))].concat();
    let asyn = lane_totals(&frames, 1);
    let (_, c, d, n) = asyn[0];
    assert!(c > 0 && d == 0, "an async thread only computes: {asyn:?}");
    // Many short compute blocks (one per poll) of many requests.
    assert!(n > 100, "{asyn:?}");
    let ids: std::collections::BTreeSet<i64> = frames
        .iter()
        .filter(|f| f["type"] == "frame")
        .flat_map(|f| f["lanes"].as_array().unwrap().clone())
        .filter(|l| l[0] == 1)
        .flat_map(|l| {
            let nums: Vec<i64> = l[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_i64().unwrap())
                .collect();
            nums.chunks(5).map(|e| e[3]).collect::<Vec<_>>()
        })
        .collect();
    assert!(ids.len() > 20, "compute blocks of {} requests", ids.len());
    // Summed over every second of async counts, so one second of a few requests cannot
    // decide it.
    let seconds: Vec<_> = frames
        .iter()
        .filter(|f| f.get("s").is_some() && f["s"]["async"]["served"].as_u64() > Some(10))
        .map(|f| &f["s"]["async"])
        .collect();
    assert!(!seconds.is_empty(), "a second of async counts");
    let sum = |key: &str| -> f64 { seconds.iter().map(|s| s[key].as_f64().unwrap()).sum() };
    let (reclaimed, compute) = (sum("reclaimed"), sum("compute"));
    assert!(
        reclaimed > 0.3 * compute,
        "async reclaims: {reclaimed} of {compute} in {seconds:?}"
    );
    let report = load.stop();
    assert_eq!(
        report.targets[0].errors_total, 0,
        "{:?}",
        report.targets[0].errors
    );
    // Nothing about users or their data travels in the stream.
    let all = format!("{frames:?}");
    assert!(
        !all.contains("example.test") && !all.contains("User "),
        "user data in the stream"
    );
}

#[test]
fn viewers_beyond_the_limit_get_503_until_one_leaves() {
    let app = TestApp::start(2, |c| c.live.max_viewers = 1);
    let admin = app.server().admin_addr;
    let first = Sse::open(admin);
    assert_eq!(first.status, 200);
    let second = Sse::open(admin);
    assert_eq!(second.status, 503, "{}", second.head);
    assert!(
        second.head.to_ascii_lowercase().contains("retry-after"),
        "{}",
        second.head
    );
    drop(first);
    eventually(
        "a stream is accepted again",
        Duration::from_secs(10),
        || {
            let s = Sse::open(admin);
            (s.status == 200).then_some(())
        },
    );
}

#[test]
fn the_live_view_can_be_switched_off() {
    let app = TestApp::start(2, |c| c.live.enabled = false);
    let admin = app.server().admin_addr;
    assert_eq!(raw_get(admin, "/live").0, 404);
    assert_eq!(Sse::open(admin).status, 404);
}

#[test]
fn the_stream_stays_within_its_byte_budget_at_a_high_request_rate() {
    let app = TestApp::start(0, |c| {
        c.mode = Mode::Async;
        c.async_.worker_threads = 1;
        c.workload.user_compute_ms = 0.0;
        c.live.max_stream_bytes_per_second = 30_000;
    });
    let load = Load::start(vec![app.url("")], 1500.0, "user=1");
    let mut sse = Sse::open(app.server().admin_addr);
    // Let sampling settle on the rate, then measure.
    let warm = sse.collect_for(Duration::from_secs(2));
    let sized = sse.collect_sized_for(Duration::from_secs(4));
    let report = load.stop();
    let served = report.targets[0].ok;
    assert!(served > 2000, "the daemon served {served}");
    // Within the budget, on the daemon's clock (frames' `t`, µs): a reader that the busy
    // test process starves gets a backlog, which its own clock would count in the wrong
    // second. Everything after the first frame, over the time the frames span; one frame
    // (a tenth of the budget) of slack for the edges.
    let first = sized
        .iter()
        .position(|(e, _)| e["type"] == "frame")
        .expect("frames");
    let t = |e: &serde_json::Value| e["t"].as_u64().unwrap();
    let last_t = sized
        .iter()
        .rev()
        .find(|(e, _)| e["type"] == "frame")
        .map(|(e, _)| t(e))
        .unwrap();
    let secs = (last_t - t(&sized[first].0)) as f64 / 1e6;
    let bytes: usize = sized[first + 1..].iter().map(|(_, n)| n).sum();
    assert!(secs > 3.0, "frames over {secs} s");
    assert!(
        bytes as f64 <= 30_000.0 * secs + 3_000.0,
        "{bytes} bytes in {secs:.1} s"
    );
    let frames: Vec<_> = sized.into_iter().map(|(e, _)| e).collect();
    // Requests were sampled to fit, yet the lane kept every microsecond of compute.
    let gap = frames.iter().rev().find_map(|f| f["gap"].as_u64()).unwrap();
    assert!(gap > 5000, "sampling stayed at its floor: gap {gap} µs");
    let lane = lane_totals(&[warm, frames.clone()].concat(), 1);
    assert!(lane[0].1 > 0 && lane[0].3 > 1000, "{lane:?}");
    let frames_sent = frames.iter().filter(|f| f["type"] == "frame").count();
    assert!(
        frames_sent >= 20,
        "{frames_sent} frames in {secs:.1} s: the stream keeps moving"
    );
}

#[test]
fn a_viewer_that_stops_reading_never_holds_up_requests() {
    let app = TestApp::start(5, |c| {
        c.mode = Mode::Async;
        c.live.max_stream_bytes_per_second = 1_000_000;
    });
    let admin = app.server().admin_addr;
    // A viewer that sends its request and never reads a byte.
    let mut stalled = TcpStream::connect(admin).unwrap();
    write!(stalled, "GET /live/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let load = Load::start(vec![app.url("")], 100.0, "report=1,user=1");
    std::thread::sleep(Duration::from_secs(6));
    let report = load.stop();
    let t = &report.targets[0];
    assert!(t.ok > 400, "{t:?}");
    assert_eq!(t.errors_total, 0, "{:?}", t.errors);
    // The daemon still answers a new viewer; the stalled one keeps its slot until dropped.
    let mut sse = Sse::open(admin);
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next().unwrap()["type"], "hello");
    drop(stalled);
}

#[test]
fn the_dashboards_link_to_the_live_view_on_the_published_admin_port() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = std::fs::read_to_string(root.join(".env")).unwrap();
    let port = env
        .lines()
        .find_map(|l| l.strip_prefix("RECLAIMD_ADMIN_PORT="))
        .expect("RECLAIMD_ADMIN_PORT in .env");
    for name in ["reclaimed-waiting-time.json", "reclaimd-runtime.json"] {
        let text = std::fs::read_to_string(root.join("grafana/dashboards").join(name)).unwrap();
        let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
        let link = dashboard["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["title"] == "Live lanes")
            .unwrap_or_else(|| panic!("{name}: no Live lanes link"));
        assert_eq!(link["type"], "link");
        assert_eq!(
            link["url"],
            format!("http://localhost:{port}/live"),
            "{name}"
        );
    }
}

/// The admin listener makes room for a newcomer by closing the connection that has waited
/// longest on its client; a live stream is the server's work, never such a connection.
#[test]
fn a_viewer_keeps_its_stream_while_slow_clients_fill_the_admin_listener() {
    let app = TestApp::start(0, |c| {
        c.server.header_read_timeout = Duration::from_secs(30);
    });
    let admin = app.server().admin_addr;
    let mut sse = Sse::open(admin);
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next().unwrap()["type"], "hello");
    // More than the admin listener's 256 slots, each with a head that never ends.
    let slow: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(admin).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
                .unwrap();
            s
        })
        .collect();
    // The slow clients are now old enough to be closed for a newcomer, and the stream older.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(raw_get(admin, "/healthz").0, 200);
    let frames = sse.collect_for(Duration::from_secs(2));
    assert!(
        frames.iter().filter(|f| f["type"] == "frame").count() >= 5,
        "the stream was cut: {} events after the health check",
        frames.len()
    );
    drop(slow);
}
