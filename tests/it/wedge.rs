//! Async mode must not wedge after an overload burst.
//!
//! The `mongodb` driver's pool worker hands out at most one queued checkout per worker event,
//! and a checkout whose operation future was dropped stays in its wait queue until it reaches
//! the front. A request aborted at `limits.request_timeout` while its driver call waited for a
//! connection used to leave such an entry; after a burst, thousands of them drained at about
//! two a second and every new request (and `/readyz`) timed out behind them for minutes. The
//! daemon now never drops a driver call mid-checkout: these tests fail if it does.

use std::time::Duration;

use hyper::Method;
use reclaimd::api::Mode;

use crate::support::app::TestApp;
use crate::support::eventually;

#[test]
fn async_mode_serves_right_after_a_burst_that_timed_out_waiting_for_connections() {
    // Two connections. The daemon learns that a find takes no time, then MongoDB slows down
    // to 100 ms per find: admission (which predicts from what it has seen) lets the whole
    // burst in, about 20 requests fit in the 1 s request timeout, and the rest times out
    // while queued for a connection.
    let app = TestApp::start(0, |c| {
        c.mode = Mode::Async;
        c.mongodb.max_pool_size = 2;
        c.limits.request_timeout = Duration::from_secs(1);
    });
    assert_eq!(app.get("/api/users/1").status, 200);
    // The driver opens each connection with an `isMaster` handshake.
    let wire = app.wire.handle();
    let handshakes = wire.command_count("isMaster");
    wire.set_latency(Duration::from_millis(100), Duration::ZERO);

    let burst = app.concurrent(300, |i| format!("/api/users/{}", i % 50 + 1));
    let count = |status| burst.iter().filter(|r| r.status == status).count();
    let (ok, shed, timed_out) = (count(200), count(503), count(504));
    // Admission may shed the tail of the burst once the first slow finds have taught it the
    // new cost; those requests never reach the driver.
    assert_eq!(
        ok + shed + timed_out,
        burst.len(),
        "only 200s, 503s and 504s: {burst:?}"
    );
    // The precondition of the bug: requests gave up while waiting for a connection.
    // Abandoned checkouts drain at two a second, so even 10 of them would hold a fresh
    // request (1 s timeout) for 5 s. How many get that far depends on how fast the client's
    // burst arrives, which a busy machine slows down (admission then learns the new cost
    // sooner).
    assert!(
        timed_out >= 10,
        "{timed_out} of 300 timed out ({ok} ok, {shed} shed)"
    );

    // Every burst request has been answered. A fresh request waits at most for the calls
    // still running (two, 100 ms each), then runs its own: well inside its 1 s.
    let fresh = app.get("/api/users/7");
    assert_eq!(fresh.status, 200, "served right after the burst: {fresh:?}");
    assert_eq!(fresh.body["user"]["id"], 7);
    assert_eq!(fresh.mode(), Mode::Async);
    let ready = app.admin(Method::GET, "/readyz", vec![], "");
    assert_eq!(ready.status, 200, "ready right after the burst: {ready:?}");

    // No driver call was dropped mid-operation either: the driver discards such a connection,
    // so the pool would have reopened connections. It only grew from one to two.
    let opened = wire.command_count("isMaster") - handshakes;
    assert!(opened <= 1, "{opened} connections opened during the burst");

    // At rest, no request is left counted as waiting on the DB.
    let waiting = app.metric(r#"reclaimd_requests_in_state{mode="async",state="waiting_db"}"#);
    assert_eq!(waiting, 0.0);
}

#[test]
fn readyz_pings_through_the_client_of_the_mode_being_served() {
    // One connection per client, and a report that holds it for 1.5 s: a ping through that
    // client waits longer than readiness allows (1 s); a ping through the other one doesn't.
    let app = TestApp::start(1500, |c| {
        c.mongodb.max_pool_size = 1;
        c.limits.request_timeout = Duration::from_secs(5);
    });
    let readyz = |app: &TestApp| app.admin(Method::GET, "/readyz", vec![], "").status;
    for (busy, other) in [(Mode::Sync, Mode::Async), (Mode::Async, Mode::Sync)] {
        app.server().app.set_mode(busy, "test");
        assert_eq!(readyz(&app), 200, "{busy}: idle");
        let client = app.client.clone();
        let url = app.url("/api/users/1");
        let hold = app
            .rt
            .spawn(TestApp::send(client, Method::GET, url, vec![], vec![]));
        // Wait until the request has taken the connection: its find is at mongo-wire.
        let wire = app.wire.handle();
        eventually(
            "the request's find reaches mongo-wire",
            Duration::from_secs(5),
            || wire.in_flight() >= 1,
        );
        assert_eq!(
            readyz(&app),
            503,
            "{busy}: the serving client's only connection is busy"
        );
        app.server().app.set_mode(other, "test");
        assert_eq!(readyz(&app), 200, "{other}: its client is idle");
        let held = app.rt.block_on(hold).unwrap();
        assert_eq!(held.status, 200, "{held:?}");
        assert_eq!(held.mode(), busy);
    }
}
