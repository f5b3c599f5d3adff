//! Logging and span export (docs/ARCHITECTURE.md §2, §4).
//!
//! Logs go to stderr, filtered by `RUST_LOG` (default `info`). The OpenTelemetry SDK's own
//! diagnostics (targets `opentelemetry*`) stay off unless `RUST_LOG` names them: an
//! unreachable collector is reported here instead, at most once a minute.
//!
//! Spans: `app`, `handlers` and `db` create `tracing` spans (`request`, `queue`, `compute`,
//! `db`). When export is configured, tracing-opentelemetry turns those of target `reclaimd`
//! into OpenTelemetry spans, which a batch processor exports over OTLP. The standard
//! variables configure it:
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`: where to send.
//!   Neither set (or `OTEL_TRACES_EXPORTER=none`, or `OTEL_SDK_DISABLED=true`): no exporter
//!   and no OpenTelemetry layer; the `tracing` spans cost a registry entry each.
//! - `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`: `http/protobuf` (default) or `grpc`.
//! - `OTEL_SERVICE_NAME` (default `reclaimd`), `OTEL_RESOURCE_ATTRIBUTES`.
//! - `OTEL_TRACES_SAMPLER[_ARG]`: `always_on`, `always_off`, `traceidratio`, and their
//!   `parentbased_` forms (default `parentbased_always_on`). Metrics never depend on it.
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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
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
    let mut runtime = None;
    let mut provider = None;
    if spans {
        match ExportSettings::from_vars(env_var) {
            Ok(Some(settings)) => match settings.build(env_var) {
                Ok(built) => {
                    problems.extend(built.warnings);
                    runtime = Some(built.runtime);
                    provider = Some((built.provider, settings));
                }
                Err(e) => problems.push(e),
            },
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    let settings = provider.as_ref().map(|(_, s)| s.clone());
    let mut guard = init_with_provider(provider.map(|(p, _)| p));
    if guard.provider.is_some() {
        guard.runtime = runtime;
    } else if let Some(rt) = runtime {
        rt.shutdown_background();
    }
    for problem in problems {
        tracing::error!("span export: {problem}");
    }
    if let (Some(s), true) = (settings, guard.exporting()) {
        tracing::info!(protocol = s.protocol_name(), endpoint = %s.endpoint, "exporting spans over OTLP");
    }
    guard
}

/// Installs the global subscriber with spans going to `provider` (if any) instead of the
/// `OTEL_*` configuration; tests pass one with an in-memory exporter. Does nothing (and
/// shuts `provider` down) if a global subscriber is already installed.
pub fn init_with_provider(provider: Option<SdkTracerProvider>) -> TelemetryGuard {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(log_filter(std::env::var("RUST_LOG").ok().as_deref()));
    // Only the daemon's own spans: an exporter's HTTP/gRPC stack may create spans of its
    // own, which would otherwise be exported in turn.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("reclaimd"))
            .with_location(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(Targets::new().with_target("reclaimd", tracing::Level::TRACE))
    });
    match tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
    {
        Ok(()) => TelemetryGuard {
            provider,
            runtime: None,
        },
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

    /// Builds the exporter (on its own runtime) and the provider.
    fn build(&self, var: impl Fn(&str) -> Option<String>) -> Result<Built, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("reclaimd-otlp")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the export runtime: {e}"))?;
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
        let (sampler, warnings) = SamplerChoice::from_vars(&var);
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler.to_sampler())
            .with_resource(resource())
            .with_batch_exporter(exporter)
            .build();
        Ok(Built {
            provider,
            runtime,
            warnings,
        })
    }
}

struct Built {
    provider: SdkTracerProvider,
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

/// The sampler named by `OTEL_TRACES_SAMPLER[_ARG]`.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplerChoice {
    /// Sample every trace.
    AlwaysOn,
    /// Sample no trace.
    AlwaysOff,
    /// Sample this fraction of traces, by trace id.
    TraceIdRatio(f64),
    /// Follow the parent's decision; use the inner sampler for roots.
    ParentBased(Box<SamplerChoice>),
}

impl SamplerChoice {
    /// The sampler, and warnings about values that were not understood (the default
    /// `parentbased_always_on`, or ratio 1.0, is used instead).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> (SamplerChoice, Vec<String>) {
        let mut warnings = Vec::new();
        let ratio = |warnings: &mut Vec<String>| match var("OTEL_TRACES_SAMPLER_ARG") {
            None => 1.0,
            Some(arg) => match arg.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => r,
                _ => {
                    warnings.push(format!(
                        "OTEL_TRACES_SAMPLER_ARG={arg} is not a ratio in [0, 1]; using 1.0"
                    ));
                    1.0
                }
            },
        };
        let parent = |s| SamplerChoice::ParentBased(Box::new(s));
        let choice = match var("OTEL_TRACES_SAMPLER").as_deref().map(str::trim) {
            None | Some("parentbased_always_on") => parent(SamplerChoice::AlwaysOn),
            Some("always_on") => SamplerChoice::AlwaysOn,
            Some("always_off") => SamplerChoice::AlwaysOff,
            Some("traceidratio") => SamplerChoice::TraceIdRatio(ratio(&mut warnings)),
            Some("parentbased_always_off") => parent(SamplerChoice::AlwaysOff),
            Some("parentbased_traceidratio") => {
                parent(SamplerChoice::TraceIdRatio(ratio(&mut warnings)))
            }
            Some(other) => {
                warnings.push(format!(
                    "OTEL_TRACES_SAMPLER={other} is not supported; using parentbased_always_on"
                ));
                parent(SamplerChoice::AlwaysOn)
            }
        };
        (choice, warnings)
    }

    /// The SDK sampler for this choice.
    pub fn to_sampler(&self) -> Sampler {
        match self {
            SamplerChoice::AlwaysOn => Sampler::AlwaysOn,
            SamplerChoice::AlwaysOff => Sampler::AlwaysOff,
            SamplerChoice::TraceIdRatio(r) => Sampler::TraceIdRatioBased(*r),
            SamplerChoice::ParentBased(root) => Sampler::ParentBased(Box::new(root.to_sampler())),
        }
    }
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
        let mut log = self.errors.lock().unwrap_or_else(|e| e.into_inner());
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

    #[test]
    fn sampler_follows_the_standard_variables() {
        use SamplerChoice::*;
        let pick = |pairs: &[(&str, &str)]| SamplerChoice::from_vars(vars(pairs));
        let parent = |s| ParentBased(Box::new(s));
        assert_eq!(pick(&[]), (parent(AlwaysOn), vec![]));
        assert_eq!(pick(&[("OTEL_TRACES_SAMPLER", "always_off")]).0, AlwaysOff);
        assert_eq!(pick(&[("OTEL_TRACES_SAMPLER", "always_on")]).0, AlwaysOn);
        assert_eq!(
            pick(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")]).0,
            parent(AlwaysOff)
        );
        assert_eq!(
            pick(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25")
            ])
            .0,
            TraceIdRatio(0.25)
        );
        assert_eq!(
            pick(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.5")
            ])
            .0,
            parent(TraceIdRatio(0.5))
        );
        let (choice, warnings) = pick(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ]);
        assert_eq!(choice, TraceIdRatio(1.0));
        assert_eq!(warnings.len(), 1);
        let (choice, warnings) = pick(&[("OTEL_TRACES_SAMPLER", "xray")]);
        assert_eq!(choice, parent(AlwaysOn));
        assert!(warnings[0].contains("xray"), "{warnings:?}");
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
