//! The app's shared state and the two dispatchers (DESIGN.md §3).
//!
//! The HTTP layer parses a request and calls [`App::serve`], which reads the live mode once
//! and hands the request to one dispatcher; the request finishes in that mode even if the
//! mode flips meanwhile.
//! - [`SyncPool`]: `sync.workers` OS threads take jobs from a bounded queue and run each
//!   request start to finish with the blocking driver.
//! - [`AsyncRuntime`]: a tokio runtime with `async.worker_threads` threads runs each request
//!   as a task with the async driver.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use tokio_metrics::TaskMonitor;

use crate::config::{Config, ConfigError, Source, WorkloadConfig};
use crate::db::{Backend, Clients, Db};
use crate::error::AppError;
use crate::handlers::{self, Ctx, Reply, Route};
use crate::measure::{block_on, Instrumented, Phase, Timing, Tracker};
use crate::metrics::{Metrics, Runtime, RuntimeCollector, WorkerState};
use crate::server_timing::Mode;

/// What the HTTP layer needs to answer a request.
#[derive(Debug)]
pub struct Outcome {
    pub mode: Mode,
    pub route: &'static str,
    pub result: Result<Reply, AppError>,
    pub timing: Timing,
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
    pub config: Config,
    source: Option<Source>,
    live: RwLock<Live>,
    pub metrics: Arc<Metrics>,
    clients: Arc<Clients>,
    pool: SyncPool,
    async_rt: AsyncRuntime,
    shutting_down: AtomicBool,
}

impl App {
    /// Builds the dispatchers and both MongoDB clients. Blocking: call it outside any async
    /// runtime. `source` enables reloads; `http` is the HTTP runtime, for its metrics.
    pub fn new(
        config: Config,
        source: Option<Source>,
        http: Option<tokio::runtime::Handle>,
    ) -> Result<Arc<App>, String> {
        crate::workload::calibrate();
        let metrics = Arc::new(Metrics::new());
        metrics.queue_capacity.set(config.limits.max_queue as i64);
        metrics.set_mode(config.mode);

        let async_rt = AsyncRuntime::new(config.async_.worker_threads)?;
        let opts = async_rt
            .handle()
            .block_on(crate::db::client_options(&config.mongodb))?;
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
            config.telemetry.spans,
        )?;
        let mut runtimes = vec![Runtime::new(
            "handlers",
            async_rt.handle().clone(),
            Some(metrics.mode(Mode::Async).clone()),
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
        Ok(Arc::new(App {
            config,
            source,
            live: RwLock::new(live),
            metrics,
            clients,
            pool,
            async_rt,
            shutting_down: AtomicBool::new(false),
        }))
    }

    fn live(&self) -> Live {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The mode new requests are served in.
    pub fn mode(&self) -> Mode {
        self.live().mode
    }

    /// Flips the mode for new requests; in-flight requests finish in theirs.
    pub fn set_mode(&self, mode: Mode, by: &str) -> Mode {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        self.flip(&mut live, mode, by)
    }

    /// The one place the mode changes: the live setting, the mode gauge and the log line.
    fn flip(&self, live: &mut Live, mode: Mode, by: &str) -> Mode {
        let previous = live.mode;
        live.mode = mode;
        self.metrics.set_mode(mode);
        if previous != mode {
            tracing::info!(from = %previous, to = %mode, by, "mode flipped");
        }
        previous
    }

    /// Re-reads the config file (SIGHUP or file change). An invalid file is rejected whole
    /// and the running config stays.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        match source.load() {
            Ok(new) => {
                let restart = self.config.restart_needed(&new);
                if !restart.is_empty() {
                    tracing::warn!(
                        keys = %restart.join(", "),
                        "config file changes keys that need a restart; they are not applied"
                    );
                }
                {
                    let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
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
    pub async fn ready(&self) -> bool {
        let clients = self.clients.clone();
        let mode = self.mode();
        let ping = self
            .async_rt
            .handle()
            .spawn(async move { clients.ping(mode, Duration::from_secs(1)).await });
        matches!(ping.await, Ok(true))
    }

    /// Stops taking new requests (they get 503) while in-flight ones finish.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// The tokio-metrics monitor of async request tasks (the cross-check of the phases).
    pub fn task_monitor(&self) -> &TaskMonitor {
        &self.async_rt.monitor
    }

    /// Answers one request that arrived (head parsed) at `arrival`.
    pub async fn serve(
        self: &Arc<Self>,
        route: Result<Route, (AppError, &'static str)>,
        body: Result<Bytes, AppError>,
        arrival: Instant,
        method: &str,
        path: &str,
    ) -> Outcome {
        let live = self.live();
        let mode = live.mode;
        let template = match &route {
            Ok(r) => r.template(),
            Err((_, t)) => t,
        };
        let spans = self.config.telemetry.spans;
        let span = if spans {
            // Semantic conventions: a request that matched no route is named by its method
            // alone and has no `http.route`.
            let matched = template != handlers::UNMATCHED;
            let span = tracing::info_span!(
                "request",
                otel.name = if matched { template } else { method },
                otel.kind = "server",
                http.request.method = method,
                http.route = tracing::field::Empty,
                url.path = path,
                url.scheme = "http",
                http.response.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                reclaimd.mode = mode.as_str(),
            );
            if matched {
                span.record("http.route", template);
            }
            span
        } else {
            tracing::Span::none()
        };
        let outcome = match (route, body) {
            (Err((e, _)), _) | (Ok(_), Err(e)) => Outcome {
                mode,
                route: template,
                result: Err(e),
                timing: Timing {
                    total: arrival.elapsed(),
                    ..Timing::default()
                },
            },
            (Ok(route), Ok(body)) => {
                let tracker = Tracker::new(mode, self.metrics.mode(mode).clone(), arrival);
                let job = Job {
                    route,
                    body,
                    workload: live.workload,
                    queue_span: if spans {
                        tracing::info_span!(parent: &span, "queue")
                    } else {
                        tracing::Span::none()
                    },
                    span: span.clone(),
                    deadline: arrival + self.config.limits.request_timeout,
                    tracker: tracker.clone(),
                };
                let (result, timing) = self.dispatch(mode, job).await;
                Outcome {
                    mode,
                    route: template,
                    result,
                    timing,
                }
            }
        };
        let status = match &outcome.result {
            Ok(reply) => reply.status,
            Err(e) => e.status(),
        };
        // As i64: tracing-opentelemetry would export a u64 as a string.
        span.record("http.response.status_code", i64::from(status));
        if let Err(e) = &outcome.result {
            if status >= 500 {
                span.record("error.type", e.code());
                span.record("otel.status_code", "error");
            }
        }
        outcome
    }

    async fn dispatch(self: &Arc<Self>, mode: Mode, job: Job) -> (Result<Reply, AppError>, Timing) {
        let tracker = job.tracker.clone();
        let deadline = job.deadline;
        let shed = |reason: &'static str, e: AppError| {
            self.metrics
                .shed_total
                .with_label_values(&[mode.as_str(), reason])
                .inc();
            (Err(e), tracker.snapshot(Instant::now()))
        };
        if self.shutting_down.load(Ordering::SeqCst) {
            return shed("shutdown", AppError::Overloaded("shutting down"));
        }
        let waited = match mode {
            Mode::Sync => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                match self.pool.try_submit(job, tx) {
                    Ok(()) => {}
                    Err(Refused::Full) => {
                        return shed("queue_full", AppError::Overloaded("queue full"))
                    }
                    Err(Refused::Closed) => {
                        return shed("shutdown", AppError::Overloaded("shutting down"))
                    }
                }
                match tokio::time::timeout_at(deadline.into(), rx).await {
                    Ok(Ok(done)) => Some(done),
                    Ok(Err(_)) => Some((Err(AppError::Internal), tracker.snapshot(Instant::now()))),
                    Err(_) => None,
                }
            }
            Mode::Async => {
                let limits = &self.config.limits;
                if self.async_rt.in_flight.load(Ordering::SeqCst) >= limits.max_in_flight {
                    return shed(
                        "in_flight",
                        AppError::Overloaded("too many requests in flight"),
                    );
                }
                if self.metrics.mode(Mode::Async).in_state(Phase::Queue) > limits.max_queue as i64 {
                    return shed("queue_full", AppError::Overloaded("queue full"));
                }
                let mut task = self.async_rt.spawn(self.clone(), job);
                match tokio::time::timeout_at(deadline.into(), &mut task).await {
                    Ok(Ok(done)) => Some(done),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "request task failed");
                        Some((Err(AppError::Internal), tracker.snapshot(Instant::now())))
                    }
                    Err(_) => {
                        task.abort();
                        None
                    }
                }
            }
        };
        match waited {
            Some(done) => done,
            None => shed("timeout", AppError::Timeout),
        }
    }

    /// Waits for the sync pool's threads to finish their jobs and exit.
    pub fn join_workers(&self, timeout: Duration) {
        self.pool.close_and_join(timeout);
    }
}

/// One request on its way to a dispatcher.
struct Job {
    route: Route,
    body: Bytes,
    workload: Arc<WorkloadConfig>,
    /// Child of `span`, open from arrival until a worker (or first poll) starts the request.
    queue_span: tracing::Span,
    span: tracing::Span,
    deadline: Instant,
    tracker: Arc<Tracker>,
}

impl Job {
    /// Runs the request's handler through `backend`: the one path both dispatchers share.
    async fn run(
        self,
        backend: Backend<'_>,
        metrics: &Metrics,
        spans: bool,
    ) -> Result<Reply, AppError> {
        // The request has started: its queue span ends here.
        drop(self.queue_span);
        let ctx = Ctx {
            workload: &self.workload,
            span: &self.span,
            spans,
        };
        let db = Db::new(backend, &self.tracker, metrics, &self.span, spans);
        handlers::handle(&self.route, &self.body, &ctx, &db).await
    }
}

type Done = (Result<Reply, AppError>, Timing);
type Reply1 = tokio::sync::oneshot::Sender<Done>;

/// Why the pool did not take a job.
enum Refused {
    Full,
    Closed,
}

/// The sync dispatcher: a fixed pool of OS threads fed by a bounded queue.
pub struct SyncPool {
    tx: RwLock<Option<Sender<(Job, Reply1)>>>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl SyncPool {
    fn start(
        workers: usize,
        max_queue: usize,
        clients: Arc<Clients>,
        metrics: Arc<Metrics>,
        spans: bool,
    ) -> Result<SyncPool, String> {
        let (tx, rx) = crossbeam_channel::bounded(max_queue);
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx = rx.clone();
            let clients = clients.clone();
            let metrics = metrics.clone();
            let thread = std::thread::Builder::new()
                .name(format!("reclaimd-sync-{i}"))
                .spawn(move || worker_loop(rx, clients, metrics, spans))
                .map_err(|e| format!("cannot start sync worker thread: {e}"))?;
            threads.push(thread);
        }
        Ok(SyncPool {
            tx: RwLock::new(Some(tx)),
            threads: std::sync::Mutex::new(threads),
        })
    }

    fn try_submit(&self, job: Job, reply: Reply1) -> Result<(), Refused> {
        match &*self.tx.read().unwrap_or_else(|e| e.into_inner()) {
            Some(tx) => tx.try_send((job, reply)).map_err(|e| match e {
                TrySendError::Full(_) => Refused::Full,
                TrySendError::Disconnected(_) => Refused::Closed,
            }),
            None => Err(Refused::Closed),
        }
    }

    fn close_and_join(&self, timeout: Duration) {
        self.tx.write().unwrap_or_else(|e| e.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let deadline = Instant::now() + timeout;
        for t in threads {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// One pool thread: idle while waiting for a job, then busy (own code) or blocked (inside a
/// driver call) until the job is answered. Its three counters add up to its wall time.
fn worker_loop(
    rx: Receiver<(Job, Reply1)>,
    clients: Arc<Clients>,
    metrics: Arc<Metrics>,
    spans: bool,
) {
    let counters = metrics.mode(Mode::Sync).clone();
    let mut mark = Instant::now();
    loop {
        let received = rx.recv_timeout(Duration::from_secs(1));
        let now = Instant::now();
        counters.add_worker(WorkerState::Idle, now - mark);
        mark = now;
        let (job, reply) = match received {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if now >= job.deadline || reply.is_closed() {
            // The client was already answered 504 (or went away): don't start the work.
            continue;
        }
        job.tracker.transition_on_thread(Phase::Compute, now);
        let tracker = job.tracker.clone();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            block_on(job.run(Backend::Sync(&clients.sync), &metrics, spans))
        }))
        .unwrap_or_else(|_| {
            tracing::error!("request handler panicked");
            Err(AppError::Internal)
        });
        let end = Instant::now();
        let timing = tracker.finish_on_thread(end);
        let _ = reply.send((result, timing));
        let blocked = timing.get(Phase::Db);
        counters.add_worker(WorkerState::Blocked, blocked);
        counters.add_worker(WorkerState::Busy, (end - mark).saturating_sub(blocked));
        mark = end;
    }
}

/// The async dispatcher: a tokio runtime whose threads run request tasks.
pub struct AsyncRuntime {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    monitor: TaskMonitor,
    in_flight: Arc<AtomicUsize>,
}

impl AsyncRuntime {
    fn new(threads: usize) -> Result<AsyncRuntime, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("reclaimd-async")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok(AsyncRuntime {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            monitor: TaskMonitor::new(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    fn spawn(&self, app: Arc<App>, job: Job) -> tokio::task::JoinHandle<Done> {
        struct InFlight(Arc<AtomicUsize>);
        impl Drop for InFlight {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self.in_flight.clone());
        let tracker = job.tracker.clone();
        let spans = app.config.telemetry.spans;
        let request = async move {
            let _guard = guard;
            job.run(Backend::Async(&app.clients.async_), &app.metrics, spans)
                .await
        };
        self.handle
            .spawn(self.monitor.instrument(Instrumented::new(request, tracker)))
    }
}

impl Drop for AsyncRuntime {
    fn drop(&mut self) {
        // Dropping a runtime from inside another runtime's thread would panic.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
