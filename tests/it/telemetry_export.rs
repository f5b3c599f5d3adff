//! Span export end to end: the real `reclaimd serve` binary, configured only by the standard
//! `OTEL_*` variables, exports to a small OTLP receiver run by the test (OTLP/HTTP protobuf,
//! or gRPC over h2c), decoded with `opentelemetry-proto`. SIGTERM makes the daemon flush its
//! last spans before it exits. Also: no collector listening, and sampling: decided once per
//! request at its arrival (`OTEL_TRACES_SAMPLER[_ARG]`, following a `traceparent` header
//! when parent-based), a traced request exported whole, an untraced one not at all, and the
//! metrics exact either way.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, Span};
use prost::Message;

use crate::support::app::metric_value;
use crate::support::daemon::Daemon;
use crate::support::eventually;
use crate::support::raw::raw_get;
use crate::support::wire::start_wire;

const REPORT: &str = "/api/users/{id}/report";
const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Http,
    Grpc,
}

/// An OTLP trace receiver on 127.0.0.1:0 that keeps every request it decodes.
struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(protocol: Protocol) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                let service = hyper::service::service_fn(move |req| {
                    let store = store.clone();
                    async move { Ok::<_, Infallible>(receive(req, protocol, &store).await) }
                });
                let io = TokioIo::new(stream);
                tokio::spawn(async move {
                    let _ = match protocol {
                        Protocol::Http => {
                            hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, service)
                                .await
                        }
                        Protocol::Grpc => {
                            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(io, service)
                                .await
                        }
                    };
                });
            }
        });
        Receiver {
            addr,
            received,
            _runtime: runtime,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received, with its resource's attributes.
    fn spans(&self) -> Vec<(Vec<KeyValue>, Span)> {
        let mut out = Vec::new();
        for request in self.received.lock().unwrap().iter() {
            for rs in &request.resource_spans {
                let resource = rs.resource.clone().unwrap_or_default().attributes;
                for ss in &rs.scope_spans {
                    for span in &ss.spans {
                        out.push((resource.clone(), span.clone()));
                    }
                }
            }
        }
        out
    }
}

async fn receive(
    req: Request<Incoming>,
    protocol: Protocol,
    store: &Mutex<Vec<ExportTraceServiceRequest>>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let path = req.uri().path().to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let status = |code: u16| {
        Response::builder()
            .status(code)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap()
    };
    match protocol {
        Protocol::Http => {
            if path != "/v1/traces" {
                return status(404);
            }
            let Ok(decoded) = ExportTraceServiceRequest::decode(body) else {
                return status(400);
            };
            store.lock().unwrap().push(decoded);
            let reply = ExportTraceServiceResponse::default().encode_to_vec();
            Response::builder()
                .header("content-type", "application/x-protobuf")
                .body(Full::new(Bytes::from(reply)).boxed())
                .unwrap()
        }
        Protocol::Grpc => {
            // One length-prefixed, uncompressed message: flag (1 byte), length (4 bytes BE).
            let message = match body.get(5..) {
                Some(m) if path == GRPC_EXPORT && body[0] == 0 => m,
                _ => return status(400),
            };
            let Ok(decoded) = ExportTraceServiceRequest::decode(message) else {
                return status(400);
            };
            store.lock().unwrap().push(decoded);
            let reply = ExportTraceServiceResponse::default().encode_to_vec();
            let mut frame = vec![0u8];
            frame.extend_from_slice(&(reply.len() as u32).to_be_bytes());
            frame.extend_from_slice(&reply);
            let body = Full::new(Bytes::from(frame)).with_trailers(async {
                let mut trailers = hyper::HeaderMap::new();
                trailers.insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
                Some(Ok(trailers))
            });
            Response::builder()
                .header("content-type", "application/grpc")
                .body(body.boxed())
                .unwrap()
        }
    }
}

fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

fn int_attr(attrs: &[KeyValue], key: &str) -> Option<i64> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::IntValue(i) => Some(*i),
            _ => None,
        }
    })
}

/// Sends a report and a user request, stops the daemon, and checks what arrived.
fn export_round_trip(protocol: Protocol, env: &[(&str, &str)], service_name: &str) {
    let wire = start_wire(5);
    let receiver = Receiver::start(protocol);
    let endpoint = receiver.endpoint();
    let mut vars = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
    vars.extend_from_slice(env);
    let daemon = Daemon::start(&wire, &vars);
    assert_eq!(raw_get(daemon.app, "/api/users/1/report").0, 200);
    assert_eq!(raw_get(daemon.app, "/api/users/2").0, 200);
    let log = daemon.terminate();
    assert!(
        log.iter().any(|l| l.contains("exporting spans over OTLP")),
        "{log:#?}"
    );

    let spans = receiver.spans();
    assert!(!spans.is_empty(), "nothing received; daemon log: {log:#?}");
    for (resource, _) in &spans {
        assert_eq!(
            string_attr(resource, "service.name").as_deref(),
            Some(service_name)
        );
    }
    let spans: Vec<Span> = spans.into_iter().map(|(_, s)| s).collect();
    let report = spans
        .iter()
        .find(|s| s.name == REPORT)
        .unwrap_or_else(|| panic!("no report span: {spans:#?}"));
    assert_eq!(report.kind, SpanKind::Server as i32);
    assert!(report.parent_span_id.is_empty());
    assert_eq!(
        int_attr(&report.attributes, "http.response.status_code"),
        Some(200)
    );
    assert_eq!(
        string_attr(&report.attributes, "reclaimd.mode").as_deref(),
        Some("sync")
    );
    let children: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == report.trace_id && s.name != REPORT)
        .collect();
    let mut names: Vec<&str> = children.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "aggregate orders",
            "compute",
            "compute",
            "find users",
            "queue"
        ],
        "{children:#?}"
    );
    for child in &children {
        assert_eq!(child.parent_span_id, report.span_id, "{child:#?}");
    }
    let find = children.iter().find(|s| s.name == "find users").unwrap();
    assert_eq!(find.kind, SpanKind::Client as i32);
    assert_eq!(
        string_attr(&find.attributes, "db.system.name").as_deref(),
        Some("mongodb")
    );
    assert!(
        spans.iter().any(|s| s.name == "/api/users/{id}"),
        "the quick request's span: {spans:#?}"
    );
}

#[test]
fn http_protobuf_export_reaches_the_collector_with_the_whole_span_tree() {
    export_round_trip(
        Protocol::Http,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
        "reclaimd",
    );
}

#[test]
fn grpc_export_reaches_the_collector_and_otel_service_name_is_honoured() {
    export_round_trip(
        Protocol::Grpc,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "reclaimd-grpc-test"),
        ],
        "reclaimd-grpc-test",
    );
}

/// `GET path` on a fresh connection with a `traceparent` header: the status.
fn get_with_traceparent(addr: std::net::SocketAddr, path: &str, traceparent: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\ntraceparent: {traceparent}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response: {response}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The report route's span tree: the server span and these children, all its own.
const REPORT_CHILDREN: [&str; 5] = [
    "aggregate orders",
    "compute",
    "compute",
    "find users",
    "queue",
];

/// Groups spans by trace and checks each trace is one whole report request: a server span
/// and exactly its five children. Returns the server spans.
fn whole_report_traces(spans: &[Span]) -> Vec<Span> {
    let mut traces: std::collections::BTreeMap<Vec<u8>, Vec<&Span>> = Default::default();
    for s in spans {
        traces.entry(s.trace_id.clone()).or_default().push(s);
    }
    let mut servers = Vec::new();
    for (trace, members) in traces {
        let roots: Vec<&&Span> = members.iter().filter(|s| s.name == REPORT).collect();
        assert_eq!(
            roots.len(),
            1,
            "trace {} has no single server span: {members:#?}",
            hex(&trace)
        );
        let root = roots[0];
        let mut names: Vec<&str> = members
            .iter()
            .filter(|s| s.name != REPORT)
            .map(|s| {
                assert_eq!(s.parent_span_id, root.span_id, "{s:#?}");
                s.name.as_str()
            })
            .collect();
        names.sort_unstable();
        assert_eq!(names, REPORT_CHILDREN, "trace {} is partial", hex(&trace));
        servers.push((*root).clone());
    }
    servers
}

fn report_count(metrics: &str) -> f64 {
    metric_value(
        metrics,
        r#"reclaimd_requests_total{mode="sync",route="/api/users/{id}/report",status="200"}"#,
    )
}

#[test]
fn an_off_or_zero_sampler_exports_no_spans_and_metrics_still_count() {
    for sampler in [
        &[("OTEL_TRACES_SAMPLER", "always_off")][..],
        &[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ][..],
    ] {
        let wire = start_wire(0);
        let receiver = Receiver::start(Protocol::Http);
        let endpoint = receiver.endpoint();
        let mut env = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
        env.extend_from_slice(sampler);
        let daemon = Daemon::start(&wire, &env);
        for _ in 0..3 {
            assert_eq!(raw_get(daemon.app, "/api/users/1/report").0, 200);
        }
        let (status, metrics) = raw_get(daemon.admin, "/metrics");
        assert_eq!(status, 200);
        assert_eq!(report_count(&metrics), 3.0, "{sampler:?}");
        let log = daemon.terminate();
        // The exporter was installed (flushed at exit); no request was sampled.
        assert!(
            log.iter().any(|l| l.contains("exporting spans over OTLP")),
            "{log:#?}"
        );
        assert_eq!(
            receiver.spans().len(),
            0,
            "{sampler:?}: {:#?}",
            receiver.spans()
        );
    }
}

#[test]
fn a_parent_based_sampler_follows_an_incoming_traceparent_and_joins_its_trace() {
    let wire = start_wire(0);
    let receiver = Receiver::start(Protocol::Http);
    let endpoint = receiver.endpoint();
    // Ratio 0: only a caller's sampled decision gets a request traced.
    let daemon = Daemon::start(
        &wire,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
        ],
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let sampled = format!("00-{trace_id}-{caller}-01");
    let not_sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    assert_eq!(
        get_with_traceparent(daemon.app, "/api/users/1/report", &sampled),
        200
    );
    assert_eq!(
        get_with_traceparent(daemon.app, "/api/users/2/report", not_sampled),
        200
    );
    assert_eq!(raw_get(daemon.app, "/api/users/3/report").0, 200);
    // A malformed header is no parent: the request is a root, and ratio 0 drops it.
    assert_eq!(
        get_with_traceparent(daemon.app, "/api/users/4/report", "00-xyz-01"),
        200
    );
    let (_, metrics) = raw_get(daemon.admin, "/metrics");
    assert_eq!(report_count(&metrics), 4.0);
    let log = daemon.terminate();

    let spans: Vec<Span> = receiver.spans().into_iter().map(|(_, s)| s).collect();
    let servers = whole_report_traces(&spans);
    assert_eq!(
        servers.len(),
        1,
        "only the sampled caller's request: {spans:#?} {log:#?}"
    );
    let server = &servers[0];
    assert_eq!(
        hex(&server.trace_id),
        trace_id,
        "it joins the caller's trace"
    );
    assert_eq!(
        hex(&server.parent_span_id),
        caller,
        "as a child of the caller's span"
    );
    assert_eq!(
        string_attr(&server.attributes, "url.path").as_deref(),
        Some("/api/users/1/report")
    );
}

#[test]
fn a_ratio_sampler_traces_about_that_fraction_and_each_trace_whole() {
    let wire = start_wire(0);
    let receiver = Receiver::start(Protocol::Http);
    let endpoint = receiver.endpoint();
    let daemon = Daemon::start(
        &wire,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ],
    );
    const N: usize = 200;
    for i in 0..N {
        let path = format!("/api/users/{}/report", i % 50 + 1);
        assert_eq!(raw_get(daemon.app, &path).0, 200);
    }
    let (_, metrics) = raw_get(daemon.admin, "/metrics");
    assert_eq!(
        report_count(&metrics),
        N as f64,
        "metrics count every request"
    );
    let log = daemon.terminate();

    let spans: Vec<Span> = receiver.spans().into_iter().map(|(_, s)| s).collect();
    let servers = whole_report_traces(&spans);
    // Binomial(200, 0.5): 100 ± 7.1; 4.5 σ either side. A sampler applied twice (once at
    // the root, again per span by the SDK) would give about 50, and partial trees.
    assert!(
        (68..=132).contains(&servers.len()),
        "{} of {N} requests traced; log: {log:#?}",
        servers.len()
    );
    assert_eq!(
        spans.len(),
        servers.len() * 6,
        "no span outside a whole trace"
    );
}

#[test]
fn an_unknown_sampler_is_reported_and_the_sdk_default_applies() {
    let wire = start_wire(0);
    let receiver = Receiver::start(Protocol::Http);
    let endpoint = receiver.endpoint();
    let daemon = Daemon::start(
        &wire,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_TRACES_SAMPLER", "no_such_sampler"),
        ],
    );
    assert_eq!(raw_get(daemon.app, "/api/users/1/report").0, 200);
    let log = daemon.terminate();
    assert!(
        log.iter().any(|l| l.contains("WARN")
            && l.contains("span export:")
            && l.contains("no_such_sampler")),
        "{log:#?}"
    );
    // parentbased_always_on: the request is traced.
    let spans: Vec<Span> = receiver.spans().into_iter().map(|(_, s)| s).collect();
    assert_eq!(whole_report_traces(&spans).len(), 1, "{spans:#?}");
}

#[test]
fn without_a_collector_the_daemon_keeps_serving_and_logs_the_export_error_once() {
    let wire = start_wire(5);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let daemon = Daemon::start(
        &wire,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", closed.as_str()),
            // Debug shows each suppressed failure, so the test knows several happened.
            ("RUST_LOG", "info,reclaimd::observe::telemetry=debug"),
        ],
    );
    // Keep serving until the exporter has failed more than once: every request is answered.
    eventually(
        "a second span export fails",
        Duration::from_secs(60),
        || {
            assert_eq!(raw_get(daemon.app, "/api/users/1/report").0, 200);
            daemon
                .log()
                .iter()
                .any(|l| l.contains("span export failed again"))
        },
    );
    let log = daemon.terminate();
    let warned = log
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("span export failed;"))
        .count();
    assert_eq!(warned, 1, "{log:#?}");
    // The SDK's own error log (one line per failed batch) stays filtered out.
    assert!(
        !log.iter().any(|l| l.contains("opentelemetry_sdk")
            || l.contains("opentelemetry-otlp")
            || l.contains("BatchSpanProcessor")),
        "{log:#?}"
    );
}
