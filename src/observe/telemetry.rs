//! Logging and span export (docs/ARCHITECTURE.md §2, §4).
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`). The OpenTelemetry SDK's own
//! diagnostics (targets `opentelemetry*`) stay off unless `RUST_LOG` names them: an
//! unreachable collector is reported here instead, at most once a minute.
//!
//! Spans: `app`, `handlers` and `db` create `tracing` spans (`request`, `queue`, `compute`,
//! `db`) for the requests that are traced. When export is configured, tracing-opentelemetry
//! turns those of target `reclaimd` into OpenTelemetry spans, which a batch processor
//! exports over OTLP. The standard variables configure it:
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`: where to send.
//!   Neither set (or `OTEL_TRACES_EXPORTER=none`, or `OTEL_SDK_DISABLED=true`): no exporter,
//!   no OpenTelemetry layer, and no request is traced (no span is built at all).
//! - `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`: `http/protobuf` (default) or `grpc`.
//! - `OTEL_SERVICE_NAME` (default `reclaimd`), `OTEL_RESOURCE_ATTRIBUTES`.
//! - `OTEL_TRACES_SAMPLER[_ARG]`: `always_on`, `always_off`, `traceidratio`, and their
//!   `parentbased_` forms (default `parentbased_always_on`), read by the SDK itself
//!   ([`configured_sampler`]). The daemon applies it once per request, at arrival and before
//!   any span is built ([`RootSampler`]); a parent-based sampler follows the request's
//!   `traceparent` header. Metrics never depend on it.
//! - `OTEL_EXPORTER_OTLP[_TRACES]_{HEADERS,TIMEOUT,COMPRESSION}`, `OTEL_BSP_*`: as the
//!   SDK reads them.
//!
//! `telemetry.spans = false` creates no spans (the app uses `Span::none()`) and installs
//! no exporter.
//!
//! Export I/O runs on a small dedicated tokio runtime (`reclaimd-otlp`): the SDK's batch
//! processor runs on a plain thread, while the gRPC (tonic) and hyper HTTP clients need a
//! runtime; [`Export`] hands each batch to that runtime. It also keeps export traffic off
//! the HTTP and handler runtimes being measured.

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, Sampler, SamplingDecision, SdkTracerProvider,
    ShouldSample, SpanData, SpanExporter, TracerProviderBuilder,
};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The default `service.name` when neither `OTEL_SERVICE_NAME` nor
/// `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const SERVICE_NAME: &str = "reclaimd";
/// How long dropping the guard waits for the last spans to be exported.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// A failing exporter logs at most one line per this interval.
pub const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Flushes and shuts down span export (bounded by [`SHUTDOWN_TIMEOUT`]) when dropped.
#[must_use = "dropping the guard shuts span export down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    /// Runs export I/O; shut down after the provider so the last batch can still go out.
    runtime: Option<tokio::runtime::Runtime>,
}

impl TelemetryGuard {
    /// Whether spans are exported (an OpenTelemetry layer is installed).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            match provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                Ok(()) | Err(OTelSdkError::AlreadyShutdown) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    "span export did not finish at shutdown; unsent spans are dropped"
                ),
            }
        }
        if let Some(rt) = self.runtime.take() {
            // Safe from any context, unlike dropping a runtime inside another one.
            rt.shutdown_background();
        }
    }
}

/// Installs the global subscriber: logs, and span export as the `OTEL_*` variables ask
/// when `spans` (`telemetry.spans`) is on. Safe to call more than once (later calls do
/// nothing). A bad `OTEL_*` setting is logged and leaves the daemon serving without export.
pub fn init(spans: bool) -> TelemetryGuard {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut runtime = None;
    let mut export = None;
    let mut settings = None;
    if spans {
        match ExportSettings::from_vars(env_var) {
            Ok(Some(s)) => match s.build() {
                Ok(built) => {
                    warnings.extend(built.warnings);
                    runtime = Some(built.runtime);
                    export = Some(built.export);
                    settings = Some(s);
                }
                Err(e) => problems.push(e),
            },
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    let mut guard = init_with_export(export);
    if guard.provider.is_some() {
        guard.runtime = runtime;
    } else if let Some(rt) = runtime {
        rt.shutdown_background();
    }
    for problem in problems {
        tracing::error!("span export: {problem}");
    }
    for warning in warnings {
        tracing::warn!("span export: {warning}");
    }
    if let (Some(s), true) = (settings, guard.exporting()) {
        tracing::info!(protocol = s.protocol_name(), endpoint = %s.endpoint, "exporting spans over OTLP");
    }
    guard
}

/// Span export: the SDK provider's builder (exporter, resource) and the per-request
/// sampler. The provider's own sampler is set to `AlwaysOn` when it is built: requests are
/// sampled once, at arrival, by `sampler` (see [`RootSampler`]).
pub struct SpanExport {
    /// The provider, built by [`init_with_export`].
    pub provider: TracerProviderBuilder,
    /// Decides which requests are traced.
    pub sampler: RootSampler,
}

/// Installs the global subscriber with spans going to `export` (if any) instead of the
/// `OTEL_*` configuration; tests pass one with an in-memory exporter. Does nothing if a
/// global subscriber is already installed.
pub fn init_with_export(export: Option<SpanExport>) -> TelemetryGuard {
    let (provider, sampler) = match export {
        Some(e) => (
            Some(e.provider.with_sampler(Sampler::AlwaysOn).build()),
            Some(e.sampler),
        ),
        None => (None, None),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(log_filter(std::env::var("RUST_LOG").ok().as_deref()));
    // Only the daemon's own spans: an exporter's HTTP/gRPC stack may create spans of its
    // own, which would otherwise be exported in turn. Every child names its parent
    // explicitly (`spans`), and nothing reads the ambient OpenTelemetry context, so entering
    // a span need not make its context current (that would cost a context switch per poll).
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("reclaimd"))
            .with_location(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
            .with_filter(Targets::new().with_target("reclaimd", tracing::Level::TRACE))
    });
    match tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
    {
        Ok(()) => {
            if let Some(sampler) = sampler {
                // The subscriber is installed once per process, so this is the first set.
                let _ = ROOT_SAMPLER.set(sampler);
            }
            TelemetryGuard {
                provider,
                runtime: None,
            }
        }
        Err(_) => {
            if let Some(p) = provider {
                let _ = p.shutdown_with_timeout(SHUTDOWN_TIMEOUT);
            }
            TelemetryGuard {
                provider: None,
                runtime: None,
            }
        }
    }
}

/// `RUST_LOG` (default `info`), with the OpenTelemetry SDK's internal logs off unless the
/// filter names them.
fn log_filter(rust_log: Option<&str>) -> EnvFilter {
    let spec = rust_log.filter(|s| !s.trim().is_empty()).unwrap_or("info");
    let spec = if spec.contains("opentelemetry") {
        spec.to_string()
    } else {
        format!("{spec},opentelemetry=off")
    };
    EnvFilter::builder()
        .with_default_directive(tracing::Level::INFO.into())
        .parse_lossy(spec)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP over HTTP with protobuf bodies.
    HttpProtobuf,
    /// OTLP over gRPC.
    Grpc,
}

/// Span export as the `OTEL_*` variables configure it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// How spans are sent.
    pub transport: Transport,
    /// As given (for the log line); the exporter resolves the final URL itself.
    pub endpoint: String,
}

impl ExportSettings {
    /// `Ok(None)`: export is not wanted (no endpoint, `OTEL_TRACES_EXPORTER=none`,
    /// `OTEL_SDK_DISABLED=true`). `var` reads a variable, empty values as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if let Some(exporter) = var("OTEL_TRACES_EXPORTER") {
            match exporter.trim() {
                "none" => return Ok(None),
                "otlp" => {}
                other => {
                    return Err(format!(
                        "OTEL_TRACES_EXPORTER={other} is not supported (otlp or none)"
                    ))
                }
            }
        }
        let Some(endpoint) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        else {
            return Ok(None);
        };
        let (name, protocol) = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
            Some(p) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", Some(p)),
            None => (
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                var("OTEL_EXPORTER_OTLP_PROTOCOL"),
            ),
        };
        let transport = match protocol.as_deref().map(str::trim) {
            None | Some("http/protobuf") => Transport::HttpProtobuf,
            Some("grpc") => Transport::Grpc,
            Some(other) => {
                return Err(format!(
                "{name}={other} is not supported (http/protobuf or grpc); spans are not exported"
            ))
            }
        };
        Ok(Some(ExportSettings {
            transport,
            endpoint,
        }))
    }

    fn protocol_name(&self) -> &'static str {
        match self.transport {
            Transport::HttpProtobuf => "http/protobuf",
            Transport::Grpc => "grpc",
        }
    }

    /// Builds the exporter (on its own runtime), the provider's builder and the sampler.
    fn build(&self) -> Result<Built, String> {
        let runtime = crate::process::runtime("reclaimd-otlp", Some(1))?;
        let exporter = {
            // tonic's channel spawns its worker task when built.
            let _enter = runtime.enter();
            let builder = opentelemetry_otlp::SpanExporter::builder();
            match self.transport {
                Transport::HttpProtobuf => builder
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .build(),
                Transport::Grpc => builder.with_tonic().with_protocol(Protocol::Grpc).build(),
            }
            .map_err(|e| e.to_string())?
        };
        let exporter = Export::new(exporter, runtime.handle().clone(), ERROR_LOG_INTERVAL);
        let (sampler, warnings) = configured_sampler();
        let provider = SdkTracerProvider::builder()
            .with_resource(resource())
            .with_batch_exporter(exporter);
        Ok(Built {
            export: SpanExport {
                provider,
                sampler: RootSampler::new(sampler),
            },
            runtime,
            warnings,
        })
    }
}

struct Built {
    export: SpanExport,
    runtime: tokio::runtime::Runtime,
    warnings: Vec<String>,
}

/// The SDK's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, telemetry.sdk.*),
/// with `service.name` defaulting to `reclaimd` instead of `unknown_service`.
pub fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|v| !v.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if !named {
        builder = builder.with_service_name(SERVICE_NAME);
    }
    builder.build()
}

/// The sampler `OTEL_TRACES_SAMPLER[_ARG]` configure, as the SDK itself parses them
/// (`opentelemetry_sdk::trace::Config::default()`), with the SDK's warnings about values it
/// did not understand (it then falls back to `parentbased_always_on`, or ratio 1.0).
///
/// The SDK reports those through `tracing` (target `opentelemetry_sdk`), which the daemon's
/// log filter silences; they are collected here instead, while the config is read.
pub fn configured_sampler() -> (Box<dyn ShouldSample>, Vec<String>) {
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let collector =
        tracing_subscriber::registry()
            .with(WarningCollector(warnings.clone()).with_filter(
                Targets::new().with_target("opentelemetry_sdk", tracing::Level::WARN),
            ));
    let sampler = tracing::subscriber::with_default(collector, || {
        opentelemetry_sdk::trace::Config::default().sampler
    });
    let warnings = std::mem::take(&mut *warnings.lock());
    (sampler, warnings)
}

/// Keeps the `message` of each event it sees.
struct WarningCollector(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for WarningCollector {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(Option<String>);
        impl tracing::field::Visit for Message {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    self.0 = Some(value.to_string());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" && self.0.is_none() {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        let mut message = Message(None);
        event.record(&mut message);
        let text = message
            .0
            .unwrap_or_else(|| event.metadata().name().to_string());
        self.0.lock().push(text);
    }
}

/// Decides, once per request and before any span is built, whether the request is traced.
///
/// The daemon builds a request's spans only when this says so, and then every one of them
/// (the request and all its children) reaches the SDK, whose own sampler is `AlwaysOn`: a
/// traced request is exported whole, never re-sampled into a partial tree, and an untraced
/// one costs a sampling decision and nothing else.
///
/// The decision is the configured sampler's ([`configured_sampler`]), asked as the SDK
/// would ask it for the request's server span: with the remote parent from the request's
/// `traceparent` header (so `parentbased_*` follows a caller's decision and the ratio
/// samplers use the caller's trace id), or, for a request without one, with a fresh random
/// trace id (the SDK then assigns the exported trace its own id: the ratio holds, the two
/// ids are not the same).
#[derive(Debug)]
pub struct RootSampler {
    sampler: Box<dyn ShouldSample>,
    ids: RandomIdGenerator,
}

impl RootSampler {
    /// Requests are sampled as `sampler` decides for their server span.
    pub fn new(sampler: impl Into<Box<dyn ShouldSample>>) -> Self {
        RootSampler {
            sampler: sampler.into(),
            ids: RandomIdGenerator::default(),
        }
    }

    /// Whether a request whose server span is `name` is traced, given its remote parent
    /// context (extracted from `traceparent`), if any.
    pub fn sample(&self, remote: Option<&opentelemetry::Context>, name: &str) -> bool {
        use opentelemetry::trace::TraceContextExt as _;
        let trace_id = remote
            .map(|cx| cx.span().span_context().clone())
            .filter(|sc| sc.is_valid())
            .map_or_else(|| self.ids.new_trace_id(), |sc| sc.trace_id());
        let result = self.sampler.should_sample(
            remote,
            trace_id,
            name,
            &opentelemetry::trace::SpanKind::Server,
            &[],
            &[],
        );
        result.decision == SamplingDecision::RecordAndSample
    }
}

/// The sampler of the installed span export; `None` when no span is exported (no exporter,
/// or `telemetry.spans = false`): then no request is traced and no span is built.
static ROOT_SAMPLER: OnceLock<RootSampler> = OnceLock::new();

/// The per-request sampling decision, when spans are exported.
pub(crate) fn root_sampler() -> Option<&'static RootSampler> {
    ROOT_SAMPLER.get()
}

/// Wraps the OTLP exporter: runs each export on the export runtime and reports failures
/// at most once per interval instead of once per batch (the SDK's own error log is
/// filtered out, see [`log_filter`]).
#[derive(Debug)]
struct Export<E> {
    inner: Arc<E>,
    runtime: tokio::runtime::Handle,
    errors: Mutex<ErrorLog>,
}

impl<E: SpanExporter + 'static> Export<E> {
    fn new(inner: E, runtime: tokio::runtime::Handle, every: Duration) -> Self {
        Export {
            inner: Arc::new(inner),
            runtime,
            errors: Mutex::new(ErrorLog::new(every)),
        }
    }

    fn report(&self, result: &OTelSdkResult) {
        let mut log = self.errors.lock();
        let now = Instant::now();
        match result {
            Err(e) => match log.failed(now) {
                Some(unlogged) => tracing::warn!(
                    error = %e,
                    unlogged_failures = unlogged,
                    "span export failed; spans are dropped while the collector is \
                     unreachable (logged at most once a minute)"
                ),
                None => tracing::debug!(error = %e, "span export failed again"),
            },
            Ok(()) => {
                if log.succeeded(now) {
                    tracing::info!("span export recovered");
                }
            }
        }
    }
}

impl<E: SpanExporter + 'static> SpanExporter for Export<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let inner = self.inner.clone();
        let result = match self
            .runtime
            .spawn(async move { inner.export(batch).await })
            .await
        {
            Ok(result) => result,
            Err(e) => Err(OTelSdkError::InternalFailure(format!("export task: {e}"))),
        };
        self.report(&result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called once while building the provider, before any export holds a clone.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

/// When a failing exporter may log: the first failure, then once per `every`.
#[derive(Debug)]
struct ErrorLog {
    every: Duration,
    last_logged: Option<Instant>,
    /// Failures since the last logged line.
    unlogged: u64,
    failing: bool,
}

impl ErrorLog {
    fn new(every: Duration) -> Self {
        ErrorLog {
            every,
            last_logged: None,
            unlogged: 0,
            failing: false,
        }
    }

    fn may_log(&mut self, now: Instant) -> bool {
        match self.last_logged {
            Some(t) if now.saturating_duration_since(t) < self.every => false,
            _ => {
                self.last_logged = Some(now);
                true
            }
        }
    }

    /// A failure at `now`: `Some(failures not logged since the last line)` if this one
    /// should be logged.
    fn failed(&mut self, now: Instant) -> Option<u64> {
        self.failing = true;
        if self.may_log(now) {
            Some(std::mem::take(&mut self.unlogged))
        } else {
            self.unlogged += 1;
            None
        }
    }

    /// A success at `now`: whether to log that export recovered (within the same budget).
    fn succeeded(&mut self, now: Instant) -> bool {
        if self.failing && self.may_log(now) {
            self.failing = false;
            self.unlogged = 0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned().filter(|v| !v.trim().is_empty())
    }

    #[test]
    fn no_endpoint_means_no_exporter() {
        assert_eq!(ExportSettings::from_vars(vars(&[])), Ok(None));
        assert_eq!(
            ExportSettings::from_vars(vars(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])),
            Ok(None)
        );
        let on = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")];
        assert!(ExportSettings::from_vars(vars(&on)).unwrap().is_some());
        let off = [on[0], ("OTEL_TRACES_EXPORTER", "none")];
        assert_eq!(ExportSettings::from_vars(vars(&off)), Ok(None));
        let disabled = [on[0], ("OTEL_SDK_DISABLED", "true")];
        assert_eq!(ExportSettings::from_vars(vars(&disabled)), Ok(None));
    }

    #[test]
    fn protocol_defaults_to_http_protobuf_and_the_traces_variables_win() {
        let s = ExportSettings::from_vars(vars(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:4318/v1/traces",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(s.transport, Transport::HttpProtobuf);
        assert_eq!(s.endpoint, "http://127.0.0.1:4318/v1/traces");

        let s = ExportSettings::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.transport, Transport::Grpc);
        assert_eq!(s.endpoint, "http://b:4317");

        let err = ExportSettings::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]))
        .unwrap_err();
        assert!(
            err.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/json"),
            "{err}"
        );
    }

    fn remote(sampled: bool) -> opentelemetry::Context {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            flags,
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(sc)
    }

    #[test]
    fn requests_are_sampled_as_the_configured_sampler_decides_for_their_server_span() {
        let off = RootSampler::new(Sampler::AlwaysOff);
        assert!(!off.sample(None, "GET"));
        assert!(!off.sample(Some(&remote(true)), "GET"));
        let on = RootSampler::new(Sampler::AlwaysOn);
        assert!(on.sample(None, "GET"));
        assert!(on.sample(Some(&remote(false)), "GET"));

        // Parent-based: a caller's decision wins; the root sampler decides for the rest.
        let parent = RootSampler::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
        assert!(parent.sample(Some(&remote(true)), "GET"));
        assert!(!parent.sample(Some(&remote(false)), "GET"));
        assert!(!parent.sample(None, "GET"));

        // A ratio: each request draws its own trace id (10,000 draws at 0.25: 2,500 ± 4.5σ).
        let ratio = RootSampler::new(Sampler::TraceIdRatioBased(0.25));
        let sampled = (0..10_000).filter(|_| ratio.sample(None, "GET")).count();
        assert!((2300..=2700).contains(&sampled), "{sampled} of 10000");
        // With a remote parent, the decision is by the caller's trace id: always the same.
        let first = ratio.sample(Some(&remote(false)), "GET");
        assert!((0..100).all(|_| ratio.sample(Some(&remote(false)), "GET") == first));
    }

    #[test]
    fn the_sampler_is_the_sdks_own_reading_of_the_standard_variables() {
        // Without OTEL_TRACES_SAMPLER (as in tests and CI), the SDK's default.
        if std::env::var_os("OTEL_TRACES_SAMPLER").is_some() {
            return;
        }
        let (sampler, warnings) = configured_sampler();
        assert_eq!(format!("{sampler:?}"), "ParentBased(AlwaysOn)");
        assert_eq!(warnings, Vec::<String>::new());
    }

    #[test]
    fn a_failing_exporter_logs_once_per_interval() {
        let t0 = Instant::now();
        let mut log = ErrorLog::new(Duration::from_secs(60));
        assert_eq!(log.failed(t0), Some(0));
        let logged = (1..=100)
            .filter(|i| log.failed(t0 + Duration::from_millis(500 * i)).is_some())
            .count();
        assert_eq!(logged, 0, "100 failures within the minute after the first");
        assert_eq!(log.failed(t0 + Duration::from_secs(61)), Some(100));
        // Recovery is reported within the same budget, then failures start over.
        assert!(!log.succeeded(t0 + Duration::from_secs(62)));
        assert!(log.succeeded(t0 + Duration::from_secs(122)));
        assert!(!log.succeeded(t0 + Duration::from_secs(200)));
        assert_eq!(log.failed(t0 + Duration::from_secs(300)), Some(0));
    }

    #[test]
    fn sdk_logs_are_off_unless_rust_log_names_them() {
        let f = log_filter(None).to_string();
        assert!(f.contains("opentelemetry=off"), "{f}");
        let f = log_filter(Some("debug")).to_string();
        assert!(f.contains("opentelemetry=off"), "{f}");
        let f = log_filter(Some("info,opentelemetry_sdk=debug")).to_string();
        assert!(!f.contains("opentelemetry=off"), "{f}");
    }

    #[test]
    fn service_name_defaults_to_reclaimd() {
        // OTEL_SERVICE_NAME is not set in the test environment (CI neither).
        if std::env::var_os("OTEL_SERVICE_NAME").is_some()
            || std::env::var_os("OTEL_RESOURCE_ATTRIBUTES").is_some()
        {
            return;
        }
        let r = resource();
        let name = r.get(&opentelemetry::Key::from_static_str("service.name"));
        assert_eq!(
            name.map(|v| v.as_str().into_owned()),
            Some("reclaimd".into())
        );
    }
}
