//! The span tree of a request, in both modes, checked with the SDK's in-memory exporter:
//! the daemon runs in-process against the MongoDB test double, with the global subscriber
//! installed once for this test binary (the sync pool's threads need a global one).
//!
//! A binary of its own, not a module of `tests/it`, because of that global subscriber: in a
//! shared process it would collect every other test's spans too.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

// The parts of the shared harness (tests/it/support) this binary needs; each is standalone.
#[path = "it/support/poll.rs"]
mod poll;
#[path = "it/support/raw.rs"]
mod raw;
#[path = "it/support/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};
use reclaimd::api::Mode;
use reclaimd::config::Config;
use reclaimd::observe::telemetry::{RootSampler, SpanExport, TelemetryGuard};
use reclaimd::serve::Server;

use poll::eventually;

const REPORT: &str = "/api/users/{id}/report";

fn exporter() -> &'static InMemorySpanExporter {
    static INSTALLED: OnceLock<(InMemorySpanExporter, TelemetryGuard)> = OnceLock::new();
    &INSTALLED
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            let export = SpanExport {
                provider: SdkTracerProvider::builder().with_simple_exporter(exporter.clone()),
                sampler: RootSampler::new(Sampler::AlwaysOn),
            };
            let guard = reclaimd::observe::telemetry::init_with_export(Some(export));
            assert!(
                guard.exporting(),
                "a global subscriber was already installed"
            );
            (exporter, guard)
        })
        .0
}

/// Tests here share the exporter and count spans: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// mongo-wire with 5 ms per data command, seeded like every other daemon test.
fn seeded_wire() -> mongo_wire::MongoWire {
    wire::start_wire(5)
}

fn start(wire: &mongo_wire::MongoWire, spans: bool) -> Server {
    let mut config = wire::base_config(wire);
    config.telemetry.spans = spans;
    Server::start(config, None).expect("start the daemon")
}

/// `GET path`, returning the status code.
fn get(addr: SocketAddr, path: &str) -> u16 {
    raw::raw_get(addr, path).0
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn str_attr(span: &SpanData, key: &str) -> String {
    match attr(span, key) {
        Some(v) => v.as_str().into_owned(),
        None => panic!("span {:?} has no {key}: {span:#?}", span.name),
    }
}

/// The finished server span of the report request for `path` served in `mode`, waiting
/// for it: the server span ends just after the response is written.
fn server_span(path: &str, mode: Mode) -> SpanData {
    eventually(
        &format!("the server span for {path} in {mode} mode ends"),
        Duration::from_secs(20),
        || {
            exporter()
                .get_finished_spans()
                .unwrap()
                .into_iter()
                .find(|s| {
                    s.name == REPORT
                        && attr(s, "url.path").map(|v| v.as_str().into_owned()) == Some(path.into())
                        && attr(s, "reclaimd.mode").map(|v| v.as_str().into_owned())
                            == Some(mode.as_str().into())
                })
        },
    )
}

fn check_report_trace(path: &str, mode: Mode) {
    let server = server_span(path, mode);
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(
        server.parent_span_id,
        SpanId::INVALID,
        "the server span is a root"
    );
    assert_eq!(str_attr(&server, "http.request.method"), "GET");
    assert_eq!(str_attr(&server, "http.route"), REPORT);
    assert_eq!(str_attr(&server, "url.scheme"), "http");
    assert_eq!(str_attr(&server, "reclaimd.mode"), mode.as_str());
    assert_eq!(
        attr(&server, "http.response.status_code"),
        Some(Value::I64(200))
    );
    let server_thread = str_attr(&server, "thread.name");
    assert!(
        server_thread.starts_with("reclaimd-http"),
        "{server_thread}"
    );

    let trace_id = server.span_context.trace_id();
    let in_trace: Vec<SpanData> = exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace_id && s.name != REPORT)
        .collect();
    let named =
        |name: &str| -> Vec<&SpanData> { in_trace.iter().filter(|s| s.name == name).collect() };
    for s in &in_trace {
        assert_eq!(
            s.parent_span_id,
            server.span_context.span_id(),
            "{} is a child of the server span",
            s.name
        );
    }
    assert_eq!(named("queue").len(), 1, "{in_trace:#?}");
    let compute = named("compute");
    assert_eq!(compute.len(), 2, "two compute segments: {in_trace:#?}");
    // The trace continues on the thread that ran the handler: a sync pool worker in sync
    // mode (another OS thread, reached through the explicit parent), a runtime thread in
    // async mode.
    let worker = match mode {
        Mode::Sync => "reclaimd-sync",
        Mode::Async => "reclaimd-async",
    };
    for c in &compute {
        assert_eq!(c.span_kind, SpanKind::Internal);
        let thread = str_attr(c, "thread.name");
        assert!(thread.starts_with(worker), "compute ran on {thread}");
    }
    for (name, operation, collection) in [
        ("find users", "find", "users"),
        ("aggregate orders", "aggregate", "orders"),
    ] {
        let db = named(name);
        assert_eq!(db.len(), 1, "one {name} span: {in_trace:#?}");
        let db = db[0];
        assert_eq!(db.span_kind, SpanKind::Client);
        assert_eq!(str_attr(db, "db.system.name"), "mongodb");
        assert_eq!(str_attr(db, "db.operation.name"), operation);
        assert_eq!(str_attr(db, "db.collection.name"), collection);
        assert_eq!(str_attr(db, "db.namespace"), "reclaimd");
    }
    assert_eq!(in_trace.len(), 5, "{in_trace:#?}");
    // Children start and end within the server span.
    for s in &in_trace {
        assert!(s.start_time >= server.start_time && s.end_time <= server.end_time);
    }
}

#[test]
fn report_requests_make_one_trace_per_request_in_both_modes_and_none_when_spans_are_off() {
    let _serial = serial();
    exporter();
    let wire = seeded_wire();

    let server = start(&wire, true);
    assert_eq!(get(server.app_addr, "/api/users/1/report"), 200);
    check_report_trace("/api/users/1/report", Mode::Sync);

    server.app.set_mode(Mode::Async, "test");
    assert_eq!(get(server.app_addr, "/api/users/3/report"), 200);
    check_report_trace("/api/users/3/report", Mode::Async);
    server.shutdown();
    // Shutdown joins the workers: every span of the daemon above has ended.
    let before = exporter().get_finished_spans().unwrap().len();

    // telemetry.spans = false: not a single span, in either mode.
    let server = start(&wire, false);
    assert_eq!(get(server.app_addr, "/api/users/2/report"), 200);
    server.app.set_mode(Mode::Async, "test");
    assert_eq!(get(server.app_addr, "/api/users/2/report"), 200);
    server.shutdown();
    let spans = exporter().get_finished_spans().unwrap();
    assert!(
        !spans
            .iter()
            .any(|s| attr(s, "url.path").is_some_and(|v| v.as_str() == "/api/users/2/report")),
        "spans were created with telemetry.spans = false"
    );
    // Nothing at all was added by the spans-off daemon (not even children).
    assert_eq!(spans.len(), before);
}

#[test]
fn a_5xx_marks_the_server_span_as_an_error() {
    let _serial = serial();
    exporter();
    // No MongoDB there: the request fails with 503 once server selection gives up.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.listen = "127.0.0.1:0".parse().unwrap();
    config.mongodb.uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    config.mongodb.server_selection_timeout = Duration::from_millis(300);
    let server = Server::start(config, None).unwrap();
    assert_eq!(get(server.app_addr, "/api/users/7"), 503);
    assert_eq!(get(server.app_addr, "/no/such/route"), 404);
    server.shutdown();

    let spans = exporter().get_finished_spans().unwrap();
    let request = spans
        .iter()
        .find(|s| attr(s, "url.path").is_some_and(|v| v.as_str() == "/api/users/7"))
        .expect("server span of the failed request");
    assert_eq!(request.name, "/api/users/{id}");
    assert_eq!(
        attr(request, "http.response.status_code"),
        Some(Value::I64(503))
    );
    assert_eq!(str_attr(request, "error.type"), "db_unavailable");
    assert!(
        matches!(request.status, opentelemetry::trace::Status::Error { .. }),
        "{request:#?}"
    );
    let db = spans
        .iter()
        .find(|s| s.name == "find users" && s.parent_span_id == request.span_context.span_id())
        .expect("the failed db span");
    assert_eq!(str_attr(db, "error.type"), "server_selection");
    // A request that matched no route is named by its method and has no http.route.
    let unmatched = spans
        .iter()
        .find(|s| attr(s, "url.path").is_some_and(|v| v.as_str() == "/no/such/route"))
        .expect("server span of the unmatched request");
    assert_eq!(unmatched.name, "GET");
    assert_eq!(attr(unmatched, "http.route"), None);
    assert!(matches!(
        db.status,
        opentelemetry::trace::Status::Error { .. }
    ));
}
