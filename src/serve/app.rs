//! The app's shared state: the configuration, the live settings (mode, workload) and their
//! reloads, the metrics, both MongoDB clients and both dispatchers.
//!
//! The HTTP layer parses a request and calls [`App::serve`], which reads the live mode once
//! and hands the request to that mode's dispatcher; the request finishes in that mode even
//! if the mode flips meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::RwLock;
use tokio_metrics::TaskMonitor;

use crate::api::{Call, Mode, NoMatch};
use crate::config::{Config, ConfigError, Source, WorkloadConfig};
use crate::observe::measure::{Timing, Tracker};
use crate::observe::metrics::Metrics;
use crate::observe::runtime::{Runtime, RuntimeCollector};
use crate::observe::spans;
use crate::serve::db::{self, Clients};
use crate::serve::dispatch::async_rt::AsyncRuntime;
use crate::serve::dispatch::sync_pool::SyncPool;
use crate::serve::dispatch::{Dispatchers, Job};
use crate::serve::error::AppError;
use crate::serve::handlers::Reply;

/// What the HTTP layer needs to answer a request.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) mode: Mode,
    /// The `route` label: the route template, or `unmatched`.
    pub(crate) route: &'static str,
    pub(crate) result: Result<Reply, AppError>,
    pub(crate) timing: Timing,
}

/// The settings that change without a restart.
#[derive(Debug, Clone)]
struct Live {
    mode: Mode,
    /// The mode the config file last said; a reload flips the mode only when this changes,
    /// so that a reload caused by another edit does not undo a `PUT /admin/mode`.
    file_mode: Mode,
    workload: Arc<WorkloadConfig>,
}

/// Shared state of a running daemon.
pub struct App {
    /// The configuration as started; keys other than `mode` and `workload.*` stay as here.
    pub(crate) config: Config,
    source: Option<Source>,
    live: RwLock<Live>,
    pub(crate) metrics: Arc<Metrics>,
    /// The live view (`/live` on the admin listener).
    pub(crate) live_view: Arc<crate::live::Hub>,
    clients: Arc<Clients>,
    dispatchers: Dispatchers,
}

impl App {
    /// Builds the dispatchers and both MongoDB clients. Blocking: call it outside any async
    /// runtime. `source` enables reloads; `http` is the HTTP runtime, for its metrics.
    pub(crate) fn new(
        config: Config,
        source: Option<Source>,
        http: Option<tokio::runtime::Handle>,
    ) -> Result<Arc<App>, String> {
        crate::serve::workload::calibrate();
        let metrics = Arc::new(Metrics::new());
        metrics
            .queue_capacity
            .set(i64::try_from(config.limits.max_queue).unwrap_or(i64::MAX));
        metrics.set_mode(config.mode);
        let live_view = crate::live::Hub::new(
            &config,
            metrics.stats(Mode::Sync).clone(),
            metrics.stats(Mode::Async).clone(),
        );

        let async_rt = AsyncRuntime::new(config.async_.worker_threads)?;
        let opts = async_rt
            .handle()
            .block_on(db::client_options(&config.mongodb))?;
        let clients = Arc::new(Clients::new(
            opts,
            &config.mongodb.database,
            async_rt.handle(),
        )?);
        let pool = SyncPool::start(
            config.sync.workers,
            config.limits.max_queue,
            clients.clone(),
            metrics.clone(),
        )?;
        let mut runtimes = vec![Runtime::new(
            "handlers",
            async_rt.handle().clone(),
            Some(metrics.stats(Mode::Async).clone()),
        )];
        if let Some(http) = http {
            runtimes.push(Runtime::new("http", http, None));
        }
        metrics
            .register(Box::new(RuntimeCollector::new(runtimes)))
            .map_err(|e| format!("registering runtime metrics: {e}"))?;

        let live = Live {
            mode: config.mode,
            file_mode: config.mode,
            workload: Arc::new(config.workload.clone()),
        };
        let dispatchers = Dispatchers::new(
            pool,
            async_rt,
            clients.clone(),
            metrics.clone(),
            config.limits.clone(),
            config.async_.worker_threads,
        );
        Ok(Arc::new(App {
            config,
            source,
            live: RwLock::new(live),
            metrics,
            live_view,
            clients,
            dispatchers,
        }))
    }

    fn live(&self) -> Live {
        self.live.read().clone()
    }

    /// The mode new requests are served in.
    pub fn mode(&self) -> Mode {
        self.live().mode
    }

    /// Flips the mode for new requests; in-flight requests finish in theirs.
    pub fn set_mode(&self, mode: Mode, by: &str) -> Mode {
        let mut live = self.live.write();
        self.flip(&mut live, mode, by)
    }

    /// The one place the mode changes: the live setting, the mode gauge and the log line.
    fn flip(&self, live: &mut Live, mode: Mode, by: &str) -> Mode {
        let previous = live.mode;
        live.mode = mode;
        self.metrics.set_mode(mode);
        self.live_view.set_mode(mode);
        if previous != mode {
            tracing::info!(from = %previous, to = %mode, by, "mode flipped");
        }
        previous
    }

    /// Re-reads the config file (SIGHUP or file change). An invalid file is rejected whole
    /// and the running config stays.
    pub(crate) fn reload(&self) -> Result<(), ConfigError> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        match source.reload() {
            Ok(new) => {
                let restart = self.config.restart_needed(&new);
                if !restart.is_empty() {
                    tracing::warn!(
                        keys = %restart.join(", "),
                        "config file changes keys that need a restart; they are not applied"
                    );
                }
                {
                    let mut live = self.live.write();
                    live.workload = Arc::new(new.workload.clone());
                    if new.mode != live.file_mode {
                        live.file_mode = new.mode;
                        self.flip(&mut live, new.mode, "config");
                    }
                }
                self.metrics
                    .config_reloads_total
                    .with_label_values(&["ok"])
                    .inc();
                tracing::info!(path = %source.path.display(), "config reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .config_reloads_total
                    .with_label_values(&["error"])
                    .inc();
                tracing::error!(error = %e, "config reload rejected; the running config stays");
                Err(e)
            }
        }
    }

    /// Whether MongoDB answers a ping within a second, through the client of the mode new
    /// requests are served in.
    pub(crate) async fn ready(&self) -> bool {
        let clients = self.clients.clone();
        let mode = self.mode();
        let ping = self
            .dispatchers
            .async_rt
            .handle()
            .spawn(async move { clients.ping(mode, Duration::from_secs(1)).await });
        matches!(ping.await, Ok(true))
    }

    /// Stops taking new requests (they get 503) while in-flight ones finish.
    pub(crate) fn begin_shutdown(&self) {
        self.dispatchers.begin_shutdown();
    }

    /// The tokio-metrics monitor of async request tasks (the cross-check of the phases).
    pub fn task_monitor(&self) -> &TaskMonitor {
        &self.dispatchers.async_rt.monitor
    }

    /// Answers one request that arrived (head parsed) at `arrival`; `remote` is the trace
    /// context its `traceparent` header carried, if any.
    pub(crate) async fn serve(
        &self,
        call: Result<Call, (AppError, &'static str)>,
        body: Result<Bytes, AppError>,
        arrival: Instant,
        method: &str,
        path: &str,
        remote: Option<opentelemetry::Context>,
    ) -> Outcome {
        let live = self.live();
        let mode = live.mode;
        let label = match &call {
            Ok(c) => c.route().template(),
            Err((_, label)) => label,
        };
        // Sampled once, here, before any span is built; an unsampled request builds none.
        let span = if self.config.telemetry.spans {
            let matched = !matches!(&call, Err((AppError::NotFound(_), _)));
            spans::request(matched.then_some(label), method, path, mode, remote)
        } else {
            tracing::Span::none()
        };
        let (result, timing) = match (call, body) {
            (Err((e, _)), _) | (Ok(_), Err(e)) => (
                Err(e),
                Timing {
                    total: arrival.elapsed(),
                    ..Timing::default()
                },
            ),
            (Ok(call), Ok(body)) => {
                let job = Job {
                    call,
                    body,
                    workload: live.workload,
                    queue_span: spans::queue(&span),
                    span: span.clone(),
                    deadline: arrival + self.config.limits.request_timeout,
                    tracker: Tracker::new(self.metrics.stats(mode).clone(), arrival),
                };
                self.dispatchers.dispatch(mode, job).await
            }
        };
        let (status, code) = match &result {
            Ok(reply) => (reply.status, None),
            Err(e) => (e.status(), Some(e.code())),
        };
        spans::record_response(&span, status, code);
        Outcome {
            mode,
            route: label,
            result,
            timing,
        }
    }

    /// Waits for the sync pool's threads to finish their jobs and exit.
    pub(crate) fn join_workers(&self, timeout: Duration) {
        self.dispatchers.pool.close_and_join(timeout);
    }
}

/// Maps a request line that matched no call to its error and `route` label.
pub(crate) fn unmatched(e: NoMatch) -> (AppError, &'static str) {
    let label = e.label();
    let error = match e {
        NoMatch::NotFound => AppError::NotFound("no such route".into()),
        NoMatch::Method(route) => AppError::MethodNotAllowed(route.method()),
        NoMatch::BadId(_, id) => {
            AppError::BadRequest(format!("user id must be a positive integer, got {id:?}"))
        }
    };
    (error, label)
}
