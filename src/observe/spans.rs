//! The spans of a request, built in one place: the server span `request`, its children
//! `queue` and `compute` (one per compute segment), and one client span per MongoDB call,
//! with OpenTelemetry semantic-convention attributes.
//!
//! Whether a request is traced is decided once, when it arrives, before any span is built
//! ([`request`], with the configured sampler: [`telemetry::RootSampler`]). An untraced
//! request gets `Span::none()`, and a child is only built when its parent is a real span, so
//! nothing is built below it: no per-phase or per-DB-call span, no OpenTelemetry work. The
//! metrics never depend on it.
//!
//! A request's `traceparent` header (W3C Trace Context, with `tracestate`) is its remote
//! parent: a parent-based sampler follows the caller's decision, and a traced request's
//! server span joins the caller's trace as a child of the caller's span. The daemon makes
//! no outgoing call that could carry the context further (the MongoDB wire protocol has no
//! place for it).

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::Empty;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::api::Mode;
use crate::observe::telemetry;

/// The remote parent context a request's `traceparent` (and `tracestate`) header carry, if
/// it has a valid one.
pub(crate) fn remote_parent(headers: &hyper::HeaderMap) -> Option<opentelemetry::Context> {
    use opentelemetry::trace::TraceContextExt as _;
    if !headers.contains_key("traceparent") {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    cx.span().span_context().is_valid().then_some(cx)
}

/// The server span of one request, or `Span::none()` when the request is not traced (no
/// span export, or the sampler says no). `route` is the route template, `None` when the
/// request matched no route: semantic conventions then name the span by its method alone and
/// leave out `http.route`. `remote` is the caller's context (from [`remote_parent`]).
pub(crate) fn request(
    route: Option<&'static str>,
    method: &str,
    path: &str,
    mode: Mode,
    remote: Option<opentelemetry::Context>,
) -> Span {
    let name = route.unwrap_or(method);
    match telemetry::root_sampler() {
        Some(sampler) if sampler.sample(remote.as_ref(), name) => {}
        _ => return Span::none(),
    }
    let span = tracing::info_span!(
        parent: None,
        "request",
        otel.name = name,
        otel.kind = "server",
        http.request.method = method,
        http.route = Empty,
        url.path = path,
        url.scheme = "http",
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        reclaimd.mode = mode.as_str(),
    );
    if let Some(route) = route {
        span.record("http.route", route);
    }
    if let Some(cx) = remote {
        // The span is not started yet (it is built lazily), so this cannot fail while the
        // OpenTelemetry layer is installed, which it is whenever a request is sampled.
        if let Err(e) = span.set_parent(cx) {
            tracing::debug!(error = %e, "the request span could not join the caller's trace");
        }
    }
    span
}

/// Records the response on the server span; a 5xx marks it as an error of `code`.
pub(crate) fn record_response(span: &Span, status: u16, error_code: Option<&'static str>) {
    // As i64: tracing-opentelemetry would export a u64 as a string.
    span.record("http.response.status_code", i64::from(status));
    if let (true, Some(code)) = (status >= 500, error_code) {
        span.record("error.type", code);
        span.record("otel.status_code", "error");
    }
}

/// Open from arrival until a worker (or the first poll) starts the request.
pub(crate) fn queue(parent: &Span) -> Span {
    if parent.is_none() {
        return Span::none();
    }
    tracing::info_span!(parent: parent, "queue")
}

/// One compute segment of the request's own code.
pub(crate) fn compute(parent: &Span, segment: &'static str) -> Span {
    if parent.is_none() {
        return Span::none();
    }
    tracing::info_span!(parent: parent, "compute", reclaimd.segment = segment)
}

/// The client span of one MongoDB call.
pub(crate) fn db(
    parent: &Span,
    operation: &'static str,
    collection: &'static str,
    namespace: &str,
) -> Span {
    if parent.is_none() {
        return Span::none();
    }
    tracing::info_span!(
        parent: parent,
        "db",
        otel.name = format!("{operation} {collection}"),
        otel.kind = "client",
        db.system.name = "mongodb",
        db.namespace = namespace,
        db.operation.name = operation,
        db.collection.name = collection,
        error.type = Empty,
        otel.status_code = Empty,
    )
}

/// Marks a MongoDB call's span as failed with `kind`.
pub(crate) fn record_db_error(span: &Span, kind: &'static str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "error");
}
