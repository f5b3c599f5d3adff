//! Reliability checks that fit a test: the admin-token matrix, and regressions the suite
//! found (stuck driver calls after a stall). The long, black-box checks
//! (overload, DB faults, config churn, hostile and slow clients, shutdown, soak) are in
//! `ci/reliability.sh`; RELIABILITY.md records both.

use std::time::Duration;

use hyper::Method;
use reclaimd::api::Mode;

use crate::support::app::TestApp;
use crate::support::eventually;

/// `Authorization` headers a client may send, and whether each carries the token `s3cret`.
const HEADERS: &[(Option<&str>, bool)] = &[
    (None, false),
    (Some("Bearer s3cret"), true),
    (Some("bearer s3cret"), true),
    (Some("BEARER s3cret"), true),
    (Some("bEaReR s3cret"), true),
    (Some("Bearer   s3cret  "), true),
    (Some("Bearer wrong"), false),
    (Some("Bearer s3cre"), false),
    (Some("Bearer s3cretX"), false),
    (Some("Bearer S3CRET"), false),
    (Some("Bearer "), false),
    (Some("Bearer"), false),
    (Some("s3cret"), false),
    (Some("Basic czNjcmV0"), false),
    (Some("Bearer\ts3cret"), false),
    (Some("Token s3cret"), false),
    (Some(""), false),
];

/// Every `Authorization` header against a daemon with and without `admin.token`, on GET and
/// PUT `/admin/mode`: GET always answers the mode; PUT flips it only with the right token
/// (scheme in any case), answers 401 + `WWW-Authenticate: Bearer` otherwise, and 403 whatever
/// the header when no token is configured. Each PUT asks for the other mode, so a PUT let
/// through by mistake shows in the mode.
#[test]
fn admin_token_matrix() {
    for configured in ["", "s3cret"] {
        let app = TestApp::start(0, |c| c.admin.token = configured.into());
        let mut mode = Mode::Sync;
        for &(header, right) in HEADERS {
            let headers = || {
                header
                    .map(|h| vec![("authorization", h.to_string())])
                    .unwrap_or_default()
            };
            let case = format!("token {configured:?}, Authorization {header:?}");

            let get = app.admin(Method::GET, "/admin/mode", headers(), "");
            assert_eq!(get.status, 200, "GET, {case}: {get:?}");
            assert_eq!(get.body["mode"], mode.as_str(), "GET, {case}");

            let other = match mode {
                Mode::Sync => Mode::Async,
                Mode::Async => Mode::Sync,
            };
            let body = format!(r#"{{"mode": "{other}"}}"#);
            let put = app.admin(Method::PUT, "/admin/mode", headers(), &body);
            let expected = match (configured.is_empty(), right) {
                (true, _) => 403,
                (false, true) => 200,
                (false, false) => 401,
            };
            assert_eq!(put.status, expected, "PUT, {case}: {put:?}");
            match expected {
                200 => {
                    assert_eq!(put.body["mode"], other.as_str(), "{case}");
                    assert_eq!(put.body["previous"], mode.as_str(), "{case}");
                    mode = other;
                }
                401 => {
                    assert_eq!(put.body["error"]["code"], "unauthorized", "{case}");
                    assert_eq!(
                        put.headers.get("www-authenticate").map(|v| v.as_bytes()),
                        Some(&b"Bearer"[..]),
                        "{case}"
                    );
                }
                _ => assert_eq!(put.body["error"]["code"], "forbidden", "{case}"),
            }
            assert_eq!(app.server().app.mode(), mode, "after PUT, {case}");
            assert_eq!(app.get("/api/users/1").mode(), mode, "served in, {case}");

            for method in [Method::POST, Method::DELETE, Method::PATCH] {
                let r = app.admin(method.clone(), "/admin/mode", headers(), &body);
                assert_eq!(r.status, 405, "{method}, {case}: {r:?}");
                assert_eq!(r.headers["allow"], "GET, PUT", "{method}, {case}");
            }
        }
    }
}

/// A stall too short for the driver's default heartbeat (10 s) to notice used to leave the
/// calls it swallowed stuck for good: the driver has no socket timeout, and only a monitor
/// check that times out interrupts a call waiting for a reply that will never come. With one
/// sync worker, that was the end of sync mode. The daemon's monitor checks every second.
#[test]
fn a_short_stall_leaves_no_worker_stuck() {
    let app = TestApp::start(0, |c| {
        c.limits.request_timeout = Duration::from_secs(1);
    });
    assert_eq!(app.get("/api/users/1").status, 200);
    let wire = app.wire.handle();
    // Start right after a monitor check, so a 10 s heartbeat would not check again soon.
    let checks = || wire.command_count("hello") + wire.command_count("isMaster");
    let before = checks();
    eventually("a monitor check", Duration::from_secs(15), || {
        checks() > before
    });
    wire.set_stall(true);
    // Swallowed: the worker waits for a reply that never comes; the client gets its 504.
    let lost = app.get("/api/users/2");
    assert_eq!(lost.status, 504, "{lost:?}");
    // Long enough for one check of a one-second heartbeat to be swallowed too.
    std::thread::sleep(Duration::from_millis(600));
    wire.set_stall(false);
    // Recovery takes a monitor check (up to 1 s), its timeout and a retry or two: seconds.
    // Stuck for good is what this catches; the bound leaves room for a busy machine.
    app.served_again(
        "users are served again after a short stall",
        "/api/users/1",
        Duration::from_secs(15),
    );
}

/// When every driver connection is held by a call that does not come back, async admission
/// sheds at once (503 `overloaded`) instead of queueing requests behind them into 504s.
#[test]
fn async_sheds_at_once_while_every_driver_connection_is_stuck() {
    let app = TestApp::start(50, |c| {
        c.mode = Mode::Async;
        c.mongodb.max_pool_size = 2;
        // The monitor notices the stall late: only admission can react in time.
        c.mongodb.connect_timeout = Duration::from_secs(10);
        c.limits.request_timeout = Duration::from_secs(3);
        c.limits.max_queue_wait = Duration::from_millis(300);
    });
    // Both connections open: two finds were at MongoDB at once (a find takes 50 ms, so
    // concurrent requests overlap unless a busy machine spreads them out; then again).
    let wire = app.wire.handle();
    wire.reset_max_in_flight();
    eventually("two finds at once", Duration::from_secs(10), || {
        for r in app.concurrent(4, |i| format!("/api/users/{}", i + 1)) {
            assert_eq!(r.status, 200);
        }
        match wire.max_in_flight() {
            2.. => Ok(()),
            n => Err(n),
        }
    });
    wire.set_stall(true);
    let finds = wire.command_count("find");
    let stuck: Vec<_> = (0..2)
        .map(|i| {
            let (client, url) = (
                app.client.clone(),
                app.url(&format!("/api/users/{}", i + 2)),
            );
            app.rt
                .spawn(TestApp::send(client, Method::GET, url, vec![], vec![]))
        })
        .collect();
    eventually(
        "both connections hold a swallowed find",
        Duration::from_secs(5),
        || wire.command_count("find") >= finds + 2,
    );
    // Stuck for longer than the queue-wait budget.
    std::thread::sleep(Duration::from_millis(500));
    let r = app.get("/api/users/4");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body["error"]["code"], "overloaded", "{r:?}");
    for s in stuck {
        assert_eq!(app.rt.block_on(s).unwrap().status, 504);
    }
    wire.set_stall(false);
    wire.drop_connections();
}

/// Slow clients holding every admin connection slot used to keep a health check waiting in
/// the accept backlog until `server.header_read_timeout` cut them: here 30 s. The admin
/// listener now closes the connection that has waited longest on its client to make room.
#[test]
fn slow_clients_cannot_keep_a_health_check_out_of_the_admin_listener() {
    use std::io::{Read, Write};
    let app = TestApp::start(0, |c| {
        c.server.header_read_timeout = Duration::from_secs(30);
    });
    let admin = app.server().admin_addr;
    // More than the admin listener's 256 slots, each with a head that never ends.
    let slow: Vec<std::net::TcpStream> = (0..300)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(admin).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
                .unwrap();
            s
        })
        .collect();
    // Old enough to be closed for a newcomer.
    std::thread::sleep(Duration::from_millis(400));
    let mut check = std::net::TcpStream::connect(admin).unwrap();
    check
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    check
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: kubelet\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    check
        .read_to_string(&mut response)
        .expect("the health check is answered while slow clients hold every slot");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The app listener is unaffected: its slots are separate.
    assert_eq!(app.get("/api/users/1").status, 200);
    drop(slow);
}
