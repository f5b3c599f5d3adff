//! Configuration: one typed struct, layered as TOML file → `RECLAIMD_*` environment → CLI
//! flags, validated before any port is bound.
//!
//! Every key is documented in the annotated `config/reclaimd.toml`. An environment variable
//! `RECLAIMD_<SECTION>__<KEY>` (or `RECLAIMD_<KEY>` for top-level keys) overrides the file;
//! its value is read as a TOML value when it parses as one (`4`, `true`, `1.5`) and as a string
//! otherwise. Variables named `RECLAIMD_TEST_*` are reserved for the test suite and ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::api::Mode;

/// Upper bounds of counts and sizes: beyond them the process could not allocate what the
/// setting asks for (the sync queue is allocated up front), or the runtime would refuse it.
const MAX_CONNECTIONS: usize = 1_000_000;
const MAX_QUEUE: usize = 100_000;
const MAX_IN_FLIGHT: usize = 1_000_000;
const MAX_BODY_BYTES: usize = 64 << 20;
const MAX_POOL_SIZE: usize = 10_000;
/// The longest duration any setting accepts.
const MAX_DURATION: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);

/// The path used when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/reclaimd.toml";

/// The whole configuration of the daemon.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Which dispatcher serves new requests. Live: applies to new requests at once.
    pub mode: Mode,
    /// `[server]`: the app listener and connection handling.
    pub server: ServerConfig,
    /// `[admin]`: the admin listener and its token.
    pub admin: AdminConfig,
    /// `[sync]`: the OS-thread pool.
    pub sync: SyncConfig,
    #[serde(rename = "async")]
    /// `[async]`: the tokio runtime that runs handlers.
    pub async_: AsyncConfig,
    /// `[limits]`: admission, timeouts and sizes.
    pub limits: LimitsConfig,
    /// `[mongodb]`: the database both clients connect to.
    pub mongodb: MongoConfig,
    /// `[workload]`: CPU cost per compute segment. Live.
    pub workload: WorkloadConfig,
    /// `[telemetry]`: spans.
    pub telemetry: TelemetryConfig,
    /// `[live]`: the live view on the admin listener.
    pub live: LiveConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[server]`: the app listener and connection handling.
pub struct ServerConfig {
    /// The app listener.
    pub listen: SocketAddr,
    /// Connections beyond this wait in the kernel's accept backlog.
    pub max_connections: usize,
    /// A client that has not sent a full request head within this time is disconnected.
    #[serde(deserialize_with = "de_duration")]
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before giving up on them.
    #[serde(deserialize_with = "de_duration")]
    pub drain_timeout: Duration,
    /// Threads of the HTTP runtime (accepting, parsing, writing responses). Handlers never
    /// run there, in either mode, so the comparison isolates how handlers run.
    pub http_threads: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[admin]`: the admin listener.
pub struct AdminConfig {
    /// Serves /metrics, /healthz, /readyz and /admin/mode.
    pub listen: SocketAddr,
    /// Bearer token for `PUT /admin/mode`; empty disables it.
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[sync]`: the sync dispatcher.
pub struct SyncConfig {
    /// OS threads in the pool; each runs one request start to finish.
    pub workers: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[async]`: the async dispatcher.
pub struct AsyncConfig {
    /// Threads of the tokio runtime that runs handlers.
    pub worker_threads: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[limits]`: what the daemon admits and for how long.
pub struct LimitsConfig {
    /// Requests allowed to wait for a worker (sync) or a first poll (async) before new ones
    /// are shed with 503.
    pub max_queue: usize,
    /// Requests in progress at once in async mode (they hold memory, not threads).
    pub max_in_flight: usize,
    /// Arrival to response; past it the client gets 504.
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// Shedding by time: a request whose predicted wait for a worker (sync) or for the
    /// handler threads (async) exceeds this is answered 503 at once instead of waiting. The
    /// effective value is at most half of `request_timeout`.
    #[serde(deserialize_with = "de_duration")]
    pub max_queue_wait: Duration,
    /// A request body must arrive within this long after the request head, or the client
    /// gets 408 and the connection is closed.
    #[serde(deserialize_with = "de_duration")]
    pub body_read_timeout: Duration,
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
}

/// How request bodies are read.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Larger bodies get 413.
    pub max_bytes: usize,
    /// Bodies that take longer get 408.
    pub timeout: Duration,
}

impl LimitsConfig {
    /// The limits app request bodies are read within.
    pub fn body_limits(&self) -> BodyLimits {
        BodyLimits {
            max_bytes: self.max_body_bytes,
            timeout: self.body_read_timeout,
        }
    }

    /// The predicted wait beyond which requests are shed: `max_queue_wait`, at most half of
    /// `request_timeout`.
    pub fn queue_wait_budget(&self) -> Duration {
        self.max_queue_wait.min(self.request_timeout / 2)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[mongodb]`: the database.
pub struct MongoConfig {
    /// Connection string. Never logged or sent to clients (it may hold credentials).
    pub uri: String,
    /// Database holding `users` and `orders`.
    pub database: String,
    /// Driver connection pool size, per client. The driver's default (10) would cap async
    /// concurrency at 10 DB calls in flight.
    pub max_pool_size: u32,
    /// How long the driver looks for a server before failing a call; short, so that an
    /// outage answers 503 quickly instead of after the driver's 30 s default.
    #[serde(deserialize_with = "de_duration")]
    pub server_selection_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    /// How long connecting to a server may take.
    pub connect_timeout: Duration,
}

/// CPU cost of each compute segment, as real hashing work (never a sleep). Live.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// `GET /api/users/{id}`: one segment after the user is fetched.
    pub user_compute_ms: f64,
    /// `GET /api/users/{id}/report`: each of its two segments (access check, summary).
    pub report_compute_ms: f64,
    /// `POST /api/orders`: one segment between validating the user and the insert.
    pub order_compute_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[telemetry]`: tracing.
pub struct TelemetryConfig {
    /// Create spans (exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
    /// Metrics never depend on it. Off to benchmark the overhead of tracing.
    pub spans: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[live]`: the live view (`GET /live` and its stream `/live/events`, admin listener).
pub struct LiveConfig {
    /// Serve the page and its stream.
    pub enabled: bool,
    /// Streams open at once; more get 503.
    pub max_viewers: usize,
    /// Each stream's bytes per second at most, at any load: requests are sampled and lanes
    /// coarsened in time to stay within it.
    pub max_stream_bytes_per_second: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            enabled: true,
            max_viewers: 4,
            max_stream_bytes_per_second: 200_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Sync,
            server: ServerConfig::default(),
            admin: AdminConfig::default(),
            sync: SyncConfig::default(),
            async_: AsyncConfig::default(),
            limits: LimitsConfig::default(),
            mongodb: MongoConfig::default(),
            workload: WorkloadConfig::default(),
            telemetry: TelemetryConfig::default(),
            live: LiveConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 20_000,
            header_read_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(15),
            http_threads: 1,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            token: String::new(),
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig { workers: 1 }
    }
}

impl Default for AsyncConfig {
    fn default() -> Self {
        AsyncConfig { worker_threads: 1 }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_queue: 1000,
            max_in_flight: 20_000,
            request_timeout: Duration::from_secs(10),
            max_queue_wait: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(5),
            max_body_bytes: 65_536,
        }
    }
}

impl Default for MongoConfig {
    fn default() -> Self {
        MongoConfig {
            uri: "mongodb://127.0.0.1:27017".into(),
            database: "reclaimd".into(),
            max_pool_size: 200,
            server_selection_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            user_compute_ms: 0.2,
            report_compute_ms: 2.0,
            order_compute_ms: 0.5,
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig { spans: true }
    }
}

/// A configuration that could not be loaded; the message names the bad key or file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Values given on the command line; they override file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--mode`.
    pub mode: Option<Mode>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--admin-listen`.
    pub admin_listen: Option<SocketAddr>,
}

/// Where the configuration comes from; kept so that a reload re-reads the same layers.
#[derive(Debug, Clone)]
pub struct Source {
    /// The TOML file.
    pub path: PathBuf,
    /// Whether the file must exist (an explicit `--config`) or may be absent (the default).
    pub required: bool,
    /// The `RECLAIMD_*` variables, captured when the source was made.
    pub env: BTreeMap<String, String>,
    /// Command-line values.
    pub overrides: Overrides,
}

impl Source {
    /// A source reading `path` (or the default path when `None`) and this process's
    /// environment.
    pub fn new(path: Option<&Path>, overrides: Overrides) -> Self {
        Source {
            path: path.map_or_else(|| PathBuf::from(DEFAULT_PATH), Path::to_path_buf),
            required: path.is_some(),
            env: std::env::vars()
                .filter(|(k, _)| k.starts_with("RECLAIMD_"))
                .collect(),
            overrides,
        }
    }

    /// Reads and validates all layers again, for a live reload. Unlike at start, an empty
    /// file is rejected: it is almost always an editor caught between truncating the file
    /// and writing it, and applying it would reset every key to its default.
    pub fn reload(&self) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) if text.trim().is_empty() => Err(ConfigError(format!(
                "{} is empty (caught mid-write?); not applied",
                self.path.display()
            ))),
            _ => self.load(),
        }
    }

    /// Reads and validates all layers.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !self.required => String::new(),
            Err(e) => {
                return Err(ConfigError(format!(
                    "cannot read config file {}: {e}",
                    self.path.display()
                )))
            }
        };
        let origin = self.path.display().to_string();
        Config::from_layers(&text, &origin, &self.env, &self.overrides)
    }
}

impl Config {
    /// Builds a config from TOML text, environment variables and CLI overrides.
    pub fn from_layers(
        toml_text: &str,
        origin: &str,
        env: &BTreeMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml_text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError(format!("{origin}: {e}")))?;
        for (name, value) in env {
            apply_env(&mut table, name, value)?;
        }
        let mut config = Config::deserialize(table).map_err(|e| ConfigError(format!("{e}")))?;
        if let Some(mode) = overrides.mode {
            config.mode = mode;
        }
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        if let Some(listen) = overrides.admin_listen {
            config.admin.listen = listen;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges that types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let count = |key: &str, v: usize, max: usize| {
            if (1..=max).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError(format!(
                    "invalid `{key}`: must be between 1 and {max} (got {v})"
                )))
            }
        };
        count("sync.workers", self.sync.workers, 4096)?;
        count("async.worker_threads", self.async_.worker_threads, 256)?;
        count("server.http_threads", self.server.http_threads, 64)?;
        count(
            "server.max_connections",
            self.server.max_connections,
            MAX_CONNECTIONS,
        )?;
        count("limits.max_queue", self.limits.max_queue, MAX_QUEUE)?;
        count(
            "limits.max_in_flight",
            self.limits.max_in_flight,
            MAX_IN_FLIGHT,
        )?;
        count(
            "limits.max_body_bytes",
            self.limits.max_body_bytes,
            MAX_BODY_BYTES,
        )?;
        count(
            "mongodb.max_pool_size",
            self.mongodb.max_pool_size as usize,
            MAX_POOL_SIZE,
        )?;
        count("live.max_viewers", self.live.max_viewers, 1000)?;
        if !(20_000..=100_000_000).contains(&self.live.max_stream_bytes_per_second) {
            return Err(ConfigError(format!(
                "invalid `live.max_stream_bytes_per_second`: must be between 20000 and 100000000 (got {})",
                self.live.max_stream_bytes_per_second
            )));
        }
        // Durations are added to `Instant`s; bounding them keeps that arithmetic exact.
        for (key, d, min) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
                MS,
            ),
            (
                "server.drain_timeout",
                self.server.drain_timeout,
                Duration::ZERO,
            ),
            ("limits.request_timeout", self.limits.request_timeout, MS),
            ("limits.max_queue_wait", self.limits.max_queue_wait, MS),
            (
                "limits.body_read_timeout",
                self.limits.body_read_timeout,
                MS,
            ),
            (
                "mongodb.server_selection_timeout",
                self.mongodb.server_selection_timeout,
                MS,
            ),
            ("mongodb.connect_timeout", self.mongodb.connect_timeout, MS),
        ] {
            if d < min || d > MAX_DURATION {
                return Err(ConfigError(format!(
                    "invalid `{key}`: must be between {} and 1h (got {d:?})",
                    if min.is_zero() { "0" } else { "1ms" }
                )));
            }
        }
        let err = |key: &str, why: &str| Err(ConfigError(format!("invalid `{key}`: {why}")));
        if !self.mongodb.uri.starts_with("mongodb://")
            && !self.mongodb.uri.starts_with("mongodb+srv://")
        {
            return err(
                "mongodb.uri",
                "must start with mongodb:// or mongodb+srv://",
            );
        }
        if self.mongodb.database.is_empty() || self.mongodb.database.contains(['/', '.', ' ']) {
            return err("mongodb.database", "must be a plain database name");
        }
        for (key, ms) in [
            ("workload.user_compute_ms", self.workload.user_compute_ms),
            (
                "workload.report_compute_ms",
                self.workload.report_compute_ms,
            ),
            ("workload.order_compute_ms", self.workload.order_compute_ms),
        ] {
            if !(0.0..=10_000.0).contains(&ms) {
                return err(key, "must be between 0 and 10000 (milliseconds)");
            }
        }
        Ok(())
    }

    /// Keys whose change needs a restart, as found between `self` (running) and `new`.
    pub fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let mut check = |changed: bool, key: &'static str| {
            if changed {
                keys.push(key);
            }
        };
        check(self.server != new.server, "server.*");
        check(self.admin != new.admin, "admin.*");
        check(self.sync != new.sync, "sync.workers");
        check(self.async_ != new.async_, "async.worker_threads");
        check(self.limits != new.limits, "limits.*");
        check(self.mongodb != new.mongodb, "mongodb.*");
        check(self.telemetry != new.telemetry, "telemetry.*");
        check(self.live != new.live, "live.*");
        keys
    }
}

fn apply_env(table: &mut toml::Table, name: &str, value: &str) -> Result<(), ConfigError> {
    let Some(rest) = name.strip_prefix("RECLAIMD_") else {
        return Ok(());
    };
    if rest.starts_with("TEST_") {
        return Ok(());
    }
    let parsed = parse_env_value(value);
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    match path.as_slice() {
        [key] if !key.is_empty() => {
            table.insert(key.clone(), parsed);
        }
        [section, key] if !section.is_empty() && !key.is_empty() => {
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = entry else {
                return Err(ConfigError(format!("{name}: `{section}` is not a section")));
            };
            section_table.insert(key.clone(), parsed);
        }
        _ => {
            return Err(ConfigError(format!(
                "{name}: expected RECLAIMD_<KEY> or RECLAIMD_<SECTION>__<KEY>"
            )))
        }
    }
    Ok(())
}

fn parse_env_value(value: &str) -> toml::Value {
    let doc = format!("v = {value}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(value.into())),
        Err(_) => toml::Value::String(value.into()),
    }
}

/// Parses durations like `250ms`, `10s`, `2m`, `1.5h`; a bare number is seconds (`0`).
/// The one duration syntax of config files, environment and command-line flags.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 500ms, 10s, 2m, 0)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("{s:?}: unknown unit {other:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(n * scale).map_err(|_| format!("{s:?} is too long"))
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_layers(text, "test.toml", &env, &Overrides::default())
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(load("", &[]).unwrap(), Config::default());
    }

    #[test]
    fn shipped_example_is_valid_and_matches_defaults() {
        let text = include_str!("../config/reclaimd.toml");
        assert_eq!(load(text, &[]).unwrap(), Config::default());
    }

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        let text = "mode = \"sync\"\n[sync]\nworkers = 4\n";
        let c = load(
            text,
            &[
                ("RECLAIMD_MODE", "async"),
                ("RECLAIMD_SYNC__WORKERS", "8"),
                ("RECLAIMD_MONGODB__URI", "mongodb://db:27017"),
                ("RECLAIMD_LIMITS__REQUEST_TIMEOUT", "250ms"),
                ("RECLAIMD_TEST_MONGODB_URI", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(c.mode, Mode::Async);
        assert_eq!(c.sync.workers, 8);
        assert_eq!(c.mongodb.uri, "mongodb://db:27017");
        assert_eq!(c.limits.request_timeout, Duration::from_millis(250));

        let env = [("RECLAIMD_MODE".to_string(), "async".to_string())].into();
        let overrides = Overrides {
            mode: Some(Mode::Sync),
            ..Overrides::default()
        };
        let c = Config::from_layers(text, "t", &env, &overrides).unwrap();
        assert_eq!(c.mode, Mode::Sync);
    }

    #[test]
    fn errors_name_the_bad_key() {
        let e = load("mode = \"turbo\"", &[]).unwrap_err().0;
        assert!(e.contains("turbo"), "{e}");
        let e = load("[sync]\nworkerz = 3", &[]).unwrap_err().0;
        assert!(e.contains("workerz"), "{e}");
        let e = load("[sync]\nworkers = 0", &[]).unwrap_err().0;
        assert!(e.contains("sync.workers"), "{e}");
        let e = load("[limits]\nrequest_timeout = \"10 parsecs\"", &[])
            .unwrap_err()
            .0;
        assert!(
            e.contains("request_timeout") || e.contains("parsecs"),
            "{e}"
        );
        let e = load("", &[("RECLAIMD_SYNC__WORKERS", "many")])
            .unwrap_err()
            .0;
        assert!(e.contains("workers"), "{e}");
        let e = load("", &[("RECLAIMD_MONGODB__URI", "postgres://x")])
            .unwrap_err()
            .0;
        assert!(e.contains("mongodb.uri"), "{e}");
        let e = load("mode = ", &[]).unwrap_err().0;
        assert!(e.contains("test.toml"), "{e}");
    }

    #[test]
    fn values_serve_could_not_run_with_are_rejected_with_key_and_range() {
        for (text, key) in [
            (
                "[server]\nmax_connections = 9223372036854775807",
                "server.max_connections",
            ),
            (
                "[limits]\nmax_queue = 4611686018427387904",
                "limits.max_queue",
            ),
            ("[limits]\nmax_queue = 1000000000", "limits.max_queue"),
            ("[limits]\nmax_in_flight = 0", "limits.max_in_flight"),
            ("[limits]\nmax_body_bytes = 0", "limits.max_body_bytes"),
            (
                "[mongodb]\nmax_pool_size = 4000000000",
                "mongodb.max_pool_size",
            ),
            (
                "[limits]\nrequest_timeout = \"10000000000000000000s\"",
                "request_timeout",
            ),
            (
                "[server]\nheader_read_timeout = \"10000000000000000000s\"",
                "header_read_timeout",
            ),
            (
                "[server]\ndrain_timeout = \"10000000000000000000s\"",
                "drain_timeout",
            ),
            ("[server]\ndrain_timeout = \"2h\"", "server.drain_timeout"),
            ("[limits]\nmax_queue_wait = \"0\"", "limits.max_queue_wait"),
            (
                "[limits]\nbody_read_timeout = \"2h\"",
                "limits.body_read_timeout",
            ),
        ] {
            let e = load(text, &[]).unwrap_err().0;
            assert!(e.contains(key), "{text}: {e}");
        }
        let e = load("[limits]\nmax_queue = 1000000000", &[]).unwrap_err().0;
        assert!(e.contains("between 1 and 100000"), "{e}");
        let c = load(
            "[limits]\nmax_queue = 100000\nrequest_timeout = \"1h\"",
            &[],
        )
        .unwrap();
        assert_eq!(c.limits.max_queue, 100_000);
        assert_eq!(c.limits.queue_wait_budget(), Duration::from_secs(1));
        let c = load("[limits]\nrequest_timeout = \"1s\"", &[]).unwrap();
        assert_eq!(c.limits.queue_wait_budget(), Duration::from_millis(500));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "s", "-1s", "1e3s", "5 parsecs", "forever", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn restart_needed_names_changed_sections() {
        let a = Config::default();
        let mut b = a.clone();
        b.mode = Mode::Async;
        b.workload.report_compute_ms = 5.0;
        assert!(a.restart_needed(&b).is_empty());
        b.sync.workers = 7;
        assert_eq!(a.restart_needed(&b), vec!["sync.workers"]);
    }
}
