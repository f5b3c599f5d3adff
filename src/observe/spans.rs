//! The spans of a request, built in one place: the server span `request`, its children
//! `queue` and `compute` (one per compute segment), and one client span per MongoDB call,
//! with OpenTelemetry semantic-convention attributes. A child is only built when its parent
//! is a real span: a request without a span (spans off) builds nothing below it.

use tracing::field::Empty;
use tracing::Span;

use crate::api::Mode;

/// The server span of one request. `route` is the route template, `None` when the request
/// matched no route: semantic conventions then name the span by its method alone and leave
/// out `http.route`.
pub(crate) fn request(route: Option<&'static str>, method: &str, path: &str, mode: Mode) -> Span {
    let span = tracing::info_span!(
        "request",
        otel.name = route.unwrap_or(method),
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
