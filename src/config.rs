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
/// Half the admin listener's 256 connections: streams never leave health checks without room.
const MAX_VIEWERS: usize = 128;
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
    #[serde(deserialize_with = "de_mode")]
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
    #[serde(deserialize_with = "de_addr")]
    pub listen: SocketAddr,
    /// Connections beyond this wait in the kernel's accept backlog.
    #[serde(deserialize_with = "de_count")]
    pub max_connections: usize,
    /// A client that has not sent a full request head within this time is disconnected.
    #[serde(deserialize_with = "de_duration")]
    pub header_read_timeout: Duration,
    /// How long shutdown waits for in-flight requests before giving up on them.
    #[serde(deserialize_with = "de_duration")]
    pub drain_timeout: Duration,
    /// Threads of the HTTP runtime (accepting, parsing, writing responses). Handlers never
    /// run there, in either mode, so the comparison isolates how handlers run.
    #[serde(deserialize_with = "de_count")]
    pub http_threads: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[admin]`: the admin listener.
pub struct AdminConfig {
    /// Serves /metrics, /healthz, /readyz and /admin/mode.
    #[serde(deserialize_with = "de_addr")]
    pub listen: SocketAddr,
    /// Bearer token for `PUT /admin/mode`; empty disables it.
    #[serde(deserialize_with = "de_secret")]
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[sync]`: the sync dispatcher.
pub struct SyncConfig {
    /// OS threads in the pool; each runs one request start to finish.
    #[serde(deserialize_with = "de_count")]
    pub workers: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[async]`: the async dispatcher.
pub struct AsyncConfig {
    /// Threads of the tokio runtime that runs handlers.
    #[serde(deserialize_with = "de_count")]
    pub worker_threads: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[limits]`: what the daemon admits and for how long.
pub struct LimitsConfig {
    /// Requests allowed to wait for a worker (sync) or a first poll (async) before new ones
    /// are shed with 503.
    #[serde(deserialize_with = "de_count")]
    pub max_queue: usize,
    /// Requests in progress at once in async mode (they hold memory, not threads).
    #[serde(deserialize_with = "de_count")]
    pub max_in_flight: usize,
    /// Arrival to response; past it the client gets 504.
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// Shedding by time: a request whose predicted wait for a worker (sync), or for the
    /// handler threads plus a MongoDB connection per driver call (async), exceeds this is
    /// answered 503 at once instead of waiting. The effective value is at most half of
    /// `request_timeout`.
    #[serde(deserialize_with = "de_duration")]
    pub max_queue_wait: Duration,
    /// A request body must arrive within this long after the request head, or the client
    /// gets 408 and the connection is closed.
    #[serde(deserialize_with = "de_duration")]
    pub body_read_timeout: Duration,
    /// Larger request bodies get 413.
    #[serde(deserialize_with = "de_count")]
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
    #[serde(deserialize_with = "de_secret")]
    pub uri: String,
    /// Database holding `users` and `orders`.
    #[serde(deserialize_with = "de_string")]
    pub database: String,
    /// Driver connection pool size, per client. The driver's default (10) would cap async
    /// concurrency at 10 DB calls in flight.
    #[serde(deserialize_with = "de_count")]
    pub max_pool_size: u32,
    /// How long the driver looks for a server before failing a call; short, so that an
    /// outage answers 503 quickly instead of after the driver's 30 s default.
    #[serde(deserialize_with = "de_duration")]
    pub server_selection_timeout: Duration,
    #[serde(deserialize_with = "de_duration")]
    /// How long connecting to a server may take; also how long the driver's monitor waits
    /// for a check, so after a stalled server recovers, calls resume within about this long.
    pub connect_timeout: Duration,
}

/// CPU cost of each compute segment, as real hashing work (never a sleep). Live.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// `GET /api/users/{id}`: one segment after the user is fetched.
    #[serde(deserialize_with = "de_ms")]
    pub user_compute_ms: f64,
    /// `GET /api/users/{id}/report`: each of its two segments (access check, summary).
    #[serde(deserialize_with = "de_ms")]
    pub report_compute_ms: f64,
    /// `POST /api/orders`: one segment between validating the user and the insert.
    #[serde(deserialize_with = "de_ms")]
    pub order_compute_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
/// `[telemetry]`: tracing.
pub struct TelemetryConfig {
    /// Create spans (exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
    /// Metrics never depend on it. Off to benchmark the overhead of tracing.
    #[serde(deserialize_with = "de_bool")]
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
            connect_timeout: Duration::from_secs(1),
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

/// A configuration that could not be loaded. The message is one line (log search is by line)
/// and names where the bad value came from: `FILE:LINE`, `environment variable NAME` or
/// `flag --NAME`, then the key and what it must be.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl ConfigError {
    fn new(message: impl Into<String>) -> Self {
        let message: String = message.into();
        ConfigError(message.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

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
    /// `--mongodb-uri`.
    pub mongodb_uri: Option<String>,
}

impl Overrides {
    /// The flag that set `key`, if one did.
    fn flag_for(&self, key: &str) -> Option<&'static str> {
        match key {
            "mode" if self.mode.is_some() => Some("--mode"),
            "server.listen" if self.listen.is_some() => Some("--listen"),
            "admin.listen" if self.admin_listen.is_some() => Some("--admin-listen"),
            "mongodb.uri" if self.mongodb_uri.is_some() => Some("--mongodb-uri"),
            _ => None,
        }
    }
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
            Ok(text) if text.trim().is_empty() => Err(ConfigError::new(format!(
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
                return Err(ConfigError::new(format!(
                    "{}: cannot read the config file: {e}",
                    self.path.display()
                )))
            }
        };
        let origin = self.path.display().to_string();
        Config::from_layers(&text, &origin, &self.env, &self.overrides)
    }
}

impl Config {
    /// Builds a config from TOML text (read from `origin`), environment variables and CLI
    /// overrides.
    ///
    /// Each layer is checked on its own first, so that an error names the line of the file,
    /// or the variable, that holds the bad value; range checks run on the merged result and
    /// name the layer that set the key last.
    pub fn from_layers(
        toml_text: &str,
        origin: &str,
        env: &BTreeMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let file = FileLayer {
            path: origin,
            text: toml_text,
        };
        let mut table: toml::Table = toml_text.parse().map_err(|e| file.syntax_error(&e))?;
        toml::from_str::<Config>(toml_text).map_err(|e| file.error(&e))?;

        let mut env_keys = Vec::new();
        for (name, value) in env {
            let in_env =
                |why: String| ConfigError::new(format!("environment variable {name}: {why}"));
            let mut alone = toml::Table::new();
            let Some(key) = apply_env(&mut alone, name, value).map_err(in_env)? else {
                continue;
            };
            Config::deserialize(alone).map_err(|e| in_env(describe(Some(&key), e.message())))?;
            apply_env(&mut table, name, value).map_err(in_env)?;
            env_keys.push((name.as_str(), key));
        }
        // Each layer is valid alone and keys are independent, so this cannot fail on a value.
        let mut config = Config::deserialize(table)
            .map_err(|e| ConfigError::new(describe(None, e.message())))?;

        if let Some(mode) = overrides.mode {
            config.mode = mode;
        }
        if let Some(listen) = overrides.listen {
            config.server.listen = listen;
        }
        if let Some(listen) = overrides.admin_listen {
            config.admin.listen = listen;
        }
        if let Some(uri) = &overrides.mongodb_uri {
            config.mongodb.uri.clone_from(uri);
        }
        config.check().map_err(|invalid| {
            let key = invalid.key;
            let source = if let Some(flag) = overrides.flag_for(key) {
                format!("flag {flag}: ")
            } else if let Some((name, _)) = env_keys
                .iter()
                .rev()
                .find(|(_, k)| key == k || key.starts_with(&format!("{k}.")))
            {
                format!("environment variable {name}: ")
            } else if let Some(line) = file.line_of_key(key) {
                format!("{origin}:{line}: ")
            } else {
                String::new()
            };
            ConfigError::new(format!("{source}{invalid}"))
        })?;
        Ok(config)
    }

    /// Checks ranges that types alone do not. The message names the key, not where it was
    /// set; [`Config::from_layers`] adds that.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check()
            .map_err(|invalid| ConfigError::new(invalid.to_string()))
    }

    fn check(&self) -> Result<(), Invalid> {
        let count = |key: &'static str, v: usize, max: usize| {
            if (1..=max).contains(&v) {
                Ok(())
            } else {
                Err(Invalid::new(
                    key,
                    format!("must be between 1 and {max} (got {v})"),
                ))
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
        count("live.max_viewers", self.live.max_viewers, MAX_VIEWERS)?;
        if !(20_000..=100_000_000).contains(&self.live.max_stream_bytes_per_second) {
            return Err(Invalid::new(
                "live.max_stream_bytes_per_second",
                format!(
                    "must be between 20000 and 100000000 (got {})",
                    self.live.max_stream_bytes_per_second
                ),
            ));
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
                return Err(Invalid::new(
                    key,
                    format!(
                        "must be between {} and 1h (got {d:?})",
                        if min.is_zero() { "0" } else { "1ms" }
                    ),
                ));
            }
        }
        if !self.mongodb.uri.starts_with("mongodb://")
            && !self.mongodb.uri.starts_with("mongodb+srv://")
        {
            // The value is not shown: a connection string may hold credentials.
            return Err(Invalid::new(
                "mongodb.uri",
                "must start with mongodb:// or mongodb+srv://",
            ));
        }
        if self.mongodb.database.is_empty() || self.mongodb.database.contains(['/', '.', ' ']) {
            return Err(Invalid::new(
                "mongodb.database",
                format!(
                    "must be a plain database name, without '/', '.' or spaces (got {:?})",
                    self.mongodb.database
                ),
            ));
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
                return Err(Invalid::new(
                    key,
                    format!("must be between 0 and 10000 milliseconds (got {ms:?})"),
                ));
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

/// A value out of its range: the key (`sync.workers`) and what it must be.
#[derive(Debug)]
struct Invalid {
    key: &'static str,
    why: String,
}

impl Invalid {
    fn new(key: &'static str, why: impl Into<String>) -> Self {
        Invalid {
            key,
            why: why.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key, self.why)
    }
}

/// The config file's text, for pointing at the line of a key or an error.
struct FileLayer<'a> {
    path: &'a str,
    text: &'a str,
}

impl FileLayer<'_> {
    /// `FILE:LINE: key what-is-wrong`, from a parse or deserialization error of this file.
    fn error(&self, e: &toml::de::Error) -> ConfigError {
        let Some(span) = e.span() else {
            return ConfigError::new(format!("{}: {}", self.path, describe(None, e.message())));
        };
        let key = toml::de::DeTable::parse(self.text)
            .ok()
            .and_then(|table| key_at(table.get_ref(), span.start))
            .map(|path| path.join("."));
        ConfigError::new(format!(
            "{}:{}: {}",
            self.path,
            line_of(self.text, span.start),
            describe(key.as_deref(), e.message())
        ))
    }

    /// `FILE:LINE: not valid TOML: ...`.
    fn syntax_error(&self, e: &toml::de::Error) -> ConfigError {
        let line = e
            .span()
            .map(|span| format!(":{}", line_of(self.text, span.start)))
            .unwrap_or_default();
        ConfigError::new(format!(
            "{}{line}: not valid TOML: {}",
            self.path,
            e.message()
        ))
    }

    /// The line `key` (`sync.workers`) is set on, when the file sets it.
    fn line_of_key(&self, key: &str) -> Option<usize> {
        let doc = toml::de::DeTable::parse(self.text).ok()?;
        let mut table = doc.get_ref();
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            let (k, v) = table.iter().find(|(k, _)| k.get_ref() == part)?;
            if parts.peek().is_none() {
                return Some(line_of(self.text, k.span().start));
            }
            table = v.get_ref().as_table()?;
        }
        None
    }
}

/// 1-based line number of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The dotted key whose name or value covers byte offset `at`, searching nested tables first.
fn key_at(table: &toml::de::DeTable<'_>, at: usize) -> Option<Vec<String>> {
    for (k, v) in table.iter() {
        if let Some(inner) = v.get_ref().as_table() {
            if let Some(mut path) = key_at(inner, at) {
                path.insert(0, k.get_ref().to_string());
                return Some(path);
            }
        }
        if k.span().contains(&at) || v.span().contains(&at) {
            return Some(vec![k.get_ref().to_string()]);
        }
    }
    None
}

/// Phrases a deserialization message about `key` for a person: the key first, and serde's
/// own wording (`unknown field`, `expected struct SyncConfig`) in the config's words.
fn describe(key: Option<&str>, message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // "workerz`, expected `workers`"
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let full = match key {
            Some(k) if k == field || k.ends_with(&format!(".{field}")) => k.to_string(),
            Some(k) => format!("{k}.{field}"),
            None => field.to_string(),
        };
        return format!("unknown key `{full}`{expected}");
    }
    if message.contains("expected struct") {
        let key = key.unwrap_or("this key");
        return format!("{key} must be a section ([{key}]), not a single value");
    }
    match key {
        Some(k) => format!("{k} {message}"),
        None => message.to_string(),
    }
}

/// Keys whose environment value is always taken as text, never as a TOML number or boolean
/// (a numeric token or database name stays exactly as written).
const TEXT_KEYS: [&str; 3] = ["admin.token", "mongodb.uri", "mongodb.database"];

/// Sets the key a `RECLAIMD_*` variable names in `table`; returns that key (`sync.workers`),
/// or `None` for variables that are not config keys.
fn apply_env(table: &mut toml::Table, name: &str, value: &str) -> Result<Option<String>, String> {
    let Some(rest) = name.strip_prefix("RECLAIMD_") else {
        return Ok(None);
    };
    if rest.starts_with("TEST_") {
        return Ok(None);
    }
    let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    let key = path.join(".");
    let parsed = if TEXT_KEYS.contains(&key.as_str()) {
        toml::Value::String(value.into())
    } else {
        parse_env_value(value)
    };
    match path.as_slice() {
        [key] if !key.is_empty() => {
            table.insert(key.clone(), parsed);
        }
        [section, key] if !section.is_empty() && !key.is_empty() => {
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = entry else {
                return Err(format!("`{section}` is not a section"));
            };
            section_table.insert(key.clone(), parsed);
        }
        _ => {
            return Err("expected RECLAIMD_<KEY> or RECLAIMD_<SECTION>__<KEY>".to_string());
        }
    }
    Ok(Some(key))
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

/// Parses a listen address: an IP address and a port. Host names are refused rather than
/// looked up, so the address bound is the one written; the message says so.
pub fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        let hint = match s.rsplit_once(':') {
            None => "; the port is missing".to_string(),
            Some((host, _)) if host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[') => {
                let ip = if host == "localhost" { "127.0.0.1" } else { "its IP address" };
                format!("; host names are not looked up: write {ip} instead of {host:?}")
            }
            Some(_) => String::new(),
        };
        format!(
            "must be an IP address and port such as \"127.0.0.1:8080\" or \"0.0.0.0:8080\" (got {s:?}){hint}"
        )
    })
}

/// A value as the user wrote it, for "(got ...)".
fn shown(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format!("{f:?}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "a list".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

// Field deserializers: each takes any TOML value and says, in the config's words, what the
// key must be and what it got (serde's own messages say `expected usize`).

fn de_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
    let v = toml::Value::deserialize(d)?;
    match v.as_str().map(str::parse::<Mode>) {
        Some(Ok(mode)) => Ok(mode),
        _ => Err(serde::de::Error::custom(format!(
            "must be \"sync\" or \"async\" (got {})",
            shown(&v)
        ))),
    }
}

fn de_count<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
    let v = toml::Value::deserialize(d)?;
    match v.as_integer() {
        Some(i) if i >= 0 => {
            T::try_from(i).map_err(|_| serde::de::Error::custom(format!("is too large (got {i})")))
        }
        _ => Err(serde::de::Error::custom(format!(
            "must be a whole number ≥ 0 (got {})",
            shown(&v)
        ))),
    }
}

fn de_ms<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = toml::Value::deserialize(d)?;
    match v {
        toml::Value::Float(f) => Ok(f),
        #[allow(clippy::cast_precision_loss)] // milliseconds far below 2^52
        toml::Value::Integer(i) => Ok(i as f64),
        other => Err(serde::de::Error::custom(format!(
            "must be a number of milliseconds such as 2.0 (got {})",
            shown(&other)
        ))),
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    const WHAT: &str = "must be a duration such as \"500ms\", \"10s\" or \"2m\"";
    let v = toml::Value::deserialize(d)?;
    let secs = match &v {
        toml::Value::String(s) => {
            return parse_duration(s).map_err(|e| serde::de::Error::custom(format!("{WHAT}: {e}")))
        }
        // A bare number is seconds, as in a string.
        #[allow(clippy::cast_precision_loss)]
        toml::Value::Integer(i) if *i >= 0 => *i as f64,
        toml::Value::Float(f) if *f >= 0.0 => *f,
        other => {
            return Err(serde::de::Error::custom(format!(
                "{WHAT} (got {})",
                shown(other)
            )))
        }
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| serde::de::Error::custom(format!("{WHAT} (got {}): too long", shown(&v))))
}

fn de_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let v = toml::Value::deserialize(d)?;
    match v.as_str() {
        Some(s) => parse_socket_addr(s).map_err(serde::de::Error::custom),
        None => Err(serde::de::Error::custom(format!(
            "must be an IP address and port in quotes, such as \"127.0.0.1:8080\" (got {})",
            shown(&v)
        ))),
    }
}

fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) => Ok(s),
        other => Err(serde::de::Error::custom(format!(
            "must be text in quotes (got {})",
            shown(&other)
        ))),
    }
}

/// A string that may hold a credential: a bad value is never echoed.
fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) => Ok(s),
        _ => Err(serde::de::Error::custom(
            "must be text in quotes (the value is not shown: it may be a credential)",
        )),
    }
}

fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::Boolean(b) => Ok(b),
        other => Err(serde::de::Error::custom(format!(
            "must be true or false (got {})",
            shown(&other)
        ))),
    }
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

    /// Every message is one line, names where the value came from and the key, and says
    /// what the key must be in words, not Rust types.
    #[test]
    fn errors_name_the_source_the_key_and_what_it_must_be() {
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let err = |text: &str, vars: &[(&str, &str)], overrides: &Overrides| {
            Config::from_layers(text, "my.toml", &env(vars), overrides)
                .unwrap_err()
                .0
        };
        let none = Overrides::default();
        for (text, vars, expected) in [
            (
                "mode = 1",
                &[][..],
                r#"my.toml:1: mode must be "sync" or "async" (got 1)"#,
            ),
            (
                "\nmode = \"turbo\"",
                &[],
                r#"my.toml:2: mode must be "sync" or "async" (got "turbo")"#,
            ),
            (
                "[sync]\nworkers = \"many\"",
                &[],
                r#"my.toml:2: sync.workers must be a whole number ≥ 0 (got "many")"#,
            ),
            (
                "[limits]\nmax_queue = 2.5",
                &[],
                "my.toml:2: limits.max_queue must be a whole number ≥ 0 (got 2.5)",
            ),
            (
                "[sync]\nworkerz = 3",
                &[],
                "my.toml:2: unknown key `sync.workerz`, expected `workers`",
            ),
            (
                "sync = 3",
                &[],
                "my.toml:1: sync must be a section ([sync]), not a single value",
            ),
            (
                "[sync]\n\nworkers = 0",
                &[],
                "my.toml:3: sync.workers must be between 1 and 4096 (got 0)",
            ),
            (
                "[server]\nlisten = \"localhost:8080\"",
                &[],
                r#"my.toml:2: server.listen must be an IP address and port such as "127.0.0.1:8080" or "0.0.0.0:8080" (got "localhost:8080"); host names are not looked up: write 127.0.0.1 instead of "localhost""#,
            ),
            (
                "[limits]\nrequest_timeout = \"10 parsecs\"",
                &[],
                r#"my.toml:2: limits.request_timeout must be a duration such as "500ms", "10s" or "2m": "10 parsecs": unknown unit "parsecs" (use ms, s, m or h)"#,
            ),
            (
                "[telemetry]\nspans = \"yes\"",
                &[],
                r#"my.toml:2: telemetry.spans must be true or false (got "yes")"#,
            ),
            (
                "mode = ",
                &[],
                "my.toml:1: not valid TOML: string values must be quoted, expected literal string",
            ),
            (
                "",
                &[("RECLAIMD_MODE", "bogus")],
                r#"environment variable RECLAIMD_MODE: mode must be "sync" or "async" (got "bogus")"#,
            ),
            (
                "[sync]\nworkers = 2",
                &[("RECLAIMD_SYNC__WORKERS", "many")],
                r#"environment variable RECLAIMD_SYNC__WORKERS: sync.workers must be a whole number ≥ 0 (got "many")"#,
            ),
            (
                "[sync]\nworkers = 2",
                &[("RECLAIMD_SYNC__WORKERS", "0")],
                "environment variable RECLAIMD_SYNC__WORKERS: sync.workers must be between 1 and 4096 (got 0)",
            ),
            (
                "",
                &[("RECLAIMD_PORT", "tcp://10.0.0.1:80")],
                "environment variable RECLAIMD_PORT: unknown key `port`, expected one of `mode`, `server`, `admin`, `sync`, `async`, `limits`, `mongodb`, `workload`, `telemetry`, `live`",
            ),
            (
                "",
                &[("RECLAIMD_SYNC__WORKERS__X", "1")],
                "environment variable RECLAIMD_SYNC__WORKERS__X: expected RECLAIMD_<KEY> or RECLAIMD_<SECTION>__<KEY>",
            ),
        ] {
            let e = err(text, vars, &none);
            assert_eq!(e, expected, "{text:?} {vars:?}");
        }
        // A flag names itself.
        let flag = Overrides {
            mongodb_uri: Some("postgres://db".into()),
            ..Overrides::default()
        };
        assert_eq!(
            err("", &[], &flag),
            "flag --mongodb-uri: mongodb.uri must start with mongodb:// or mongodb+srv://"
        );
        // The layer that set the key last is named: the flag over the variable over the file.
        let e = err(
            "[mongodb]\nuri = \"x://file\"",
            &[("RECLAIMD_MONGODB__URI", "x://env")],
            &Overrides::default(),
        );
        assert!(
            e.starts_with("environment variable RECLAIMD_MONGODB__URI:"),
            "{e}"
        );
        assert!(err("[mongodb]\nuri = \"x://file\"", &[], &none).starts_with("my.toml:2:"));
    }

    #[test]
    fn error_messages_never_echo_credentials() {
        let env: BTreeMap<String, String> = [(
            "RECLAIMD_MONGODB__URI".to_string(),
            "postgres://user:hunter2@db".to_string(),
        )]
        .into();
        let e = Config::from_layers("", "t", &env, &Overrides::default())
            .unwrap_err()
            .0;
        assert!(e.contains("mongodb.uri") && !e.contains("hunter2"), "{e}");
        let e = load("[admin]\ntoken = 1234", &[]).unwrap_err().0;
        assert!(e.contains("admin.token") && !e.contains("1234"), "{e}");
    }

    #[test]
    fn environment_values_take_the_key_s_type() {
        // Text keys keep the variable's text exactly, even when it reads as a number.
        let c = load(
            "",
            &[
                ("RECLAIMD_ADMIN__TOKEN", "0123"),
                ("RECLAIMD_MONGODB__DATABASE", "2024"),
                // A bare number of seconds is a duration, as in the file.
                ("RECLAIMD_LIMITS__REQUEST_TIMEOUT", "12"),
                ("RECLAIMD_SERVER__DRAIN_TIMEOUT", "0.5"),
            ],
        )
        .unwrap();
        assert_eq!(c.admin.token, "0123");
        assert_eq!(c.mongodb.database, "2024");
        assert_eq!(c.limits.request_timeout, Duration::from_secs(12));
        assert_eq!(c.server.drain_timeout, Duration::from_millis(500));
        let c = load("[limits]\nrequest_timeout = 3", &[]).unwrap();
        assert_eq!(c.limits.request_timeout, Duration::from_secs(3));
    }

    #[test]
    fn every_message_is_one_line_in_plain_words() {
        let long = format!("[sync]\nworkers = \"{}\nx\"", "a".repeat(10));
        for text in [
            "mode = 1",
            "mode = [1, 2]",
            "[sync]\nworkers = -1",
            "[mongodb]\nmax_pool_size = 1.5",
            "[workload]\nuser_compute_ms = \"fast\"",
            "[server]\nlisten = 8080",
            "[server]\nlisten = \"::1:80\"",
            "[limits]\nrequest_timeout = true",
            "[[sync]]\nworkers = 1",
            "[sync\nworkers = 1",
            "mode = \"sync\"\nmode = \"async\"",
            long.as_str(),
        ] {
            let e = load(text, &[]).unwrap_err().0;
            assert!(!e.contains('\n'), "{text:?}: {e}");
            assert!(e.starts_with("test.toml:"), "{text:?}: {e}");
            for rust in [
                "usize",
                "u32",
                "f64",
                "invalid type",
                "unit variant",
                "struct",
            ] {
                assert!(!e.contains(rust), "{text:?}: {e}");
            }
        }
    }

    /// A rejected reload is logged with this message: one line, with the file and line.
    #[test]
    fn a_rejected_reload_names_the_file_and_line_on_one_line() {
        let path =
            std::env::temp_dir().join(format!("reclaimd-reload-{}.toml", std::process::id()));
        let source = Source::new(Some(&path), Overrides::default());
        std::fs::write(&path, "mode = \"sync\"\n[sync\nworkers = 2\n").unwrap();
        let syntax = source.reload().unwrap_err().0;
        std::fs::write(&path, "mode = \"sync\"\n\n[limits]\nmax_queue = -5\n").unwrap();
        let value = source.reload().unwrap_err().0;
        std::fs::write(&path, "  \n").unwrap();
        let empty = source.reload().unwrap_err().0;
        let _ = std::fs::remove_file(&path);
        let shown = path.display().to_string();
        assert!(
            syntax.starts_with(&format!("{shown}:2: not valid TOML: ")),
            "{syntax}"
        );
        assert_eq!(
            value,
            format!("{shown}:4: limits.max_queue must be a whole number ≥ 0 (got -5)")
        );
        assert!(empty.contains("is empty"), "{empty}");
        for e in [syntax, value, empty] {
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn listen_addresses_need_an_ip_and_a_port() {
        assert_eq!(
            parse_socket_addr("127.0.0.1:8080"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 8080)))
        );
        assert!(parse_socket_addr("[::1]:8080").is_ok());
        let e = parse_socket_addr("db.example:80").unwrap_err();
        assert!(
            e.contains("(got \"db.example:80\")") && e.contains("write its IP address"),
            "{e}"
        );
        assert!(parse_socket_addr(":8080").is_err());
        assert!(parse_socket_addr("8080")
            .unwrap_err()
            .ends_with("the port is missing"));
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
            // Streams beyond half the admin listener's slots could crowd out health checks.
            ("[live]\nmax_viewers = 129", "live.max_viewers"),
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
