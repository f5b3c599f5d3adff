//! The two dispatchers and what they share: a [`Job`] (one request on its way to a handler)
//! and [`Dispatchers::dispatch`], which sends it to the mode's dispatcher, sheds what cannot
//! be served, and enforces the request's deadline.
//! - [`sync_pool::SyncPool`]: `sync.workers` OS threads take jobs from a bounded queue and run
//!   each request start to finish with the blocking driver.
//! - [`async_rt::AsyncRuntime`]: a tokio runtime with `async.worker_threads` threads runs
//!   each request as a task with the async driver.

pub(crate) mod async_rt;
pub(crate) mod sync_pool;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::api::{Call, Mode};
use crate::config::{LimitsConfig, WorkloadConfig};
use crate::observe::measure::Phase;
use crate::observe::measure::{Timing, Tracker};
use crate::observe::metrics::Metrics;
use crate::serve::admission::Stage;
use crate::serve::db::{Backend, Clients, Db};
use crate::serve::error::AppError;
use crate::serve::handlers::{self, Ctx, Reply};

use async_rt::AsyncRuntime;
use sync_pool::{Refused, SyncPool};

/// How long a timed-out async request's 504 waits for its task to be dropped. An idle task
/// goes within microseconds; one whose every handler thread is busy waits for the end of a
/// poll (a compute burn), and past this grace the 504 goes out regardless.
const CANCEL_GRACE: Duration = Duration::from_millis(250);

/// A request's result and its time split.
pub(crate) type Done = (Result<Reply, AppError>, Timing);

/// One request on its way to a dispatcher.
pub(crate) struct Job {
    pub(crate) call: Call,
    pub(crate) body: Bytes,
    pub(crate) workload: Arc<WorkloadConfig>,
    /// Child of `span`, open from arrival until a worker (or first poll) starts the request.
    pub(crate) queue_span: tracing::Span,
    /// The request's span; `Span::none()` when spans are off, and then no child is created.
    pub(crate) span: tracing::Span,
    pub(crate) deadline: Instant,
    pub(crate) tracker: Arc<Tracker>,
}

impl Job {
    /// Runs the request's handler through `backend`: the one path both dispatchers share.
    async fn run(self, backend: Backend<'_>, metrics: &Metrics) -> Result<Reply, AppError> {
        // The request has started: its queue span ends here.
        drop(self.queue_span);
        let ctx = Ctx {
            workload: &self.workload,
            span: &self.span,
        };
        let gate = match backend {
            Backend::Async(gate) => Some(gate),
            Backend::Sync(_) => None,
        };
        let db = Db::new(backend, &self.tracker, metrics, &self.span);
        let result = handlers::handle(self.call, &self.body, &ctx, &db).await;
        if let Some(gate) = gate {
            gate.record_calls(self.call.route(), db.calls());
        }
        result
    }
}

#[cfg(test)]
impl Job {
    /// A job for unit tests: no body, the default workload, no spans.
    pub(crate) fn bare(call: Call, tracker: Arc<Tracker>, deadline: Instant) -> Job {
        Job {
            call,
            body: Bytes::new(),
            workload: Default::default(),
            queue_span: tracing::Span::none(),
            span: tracing::Span::none(),
            deadline,
            tracker,
        }
    }
}

/// Both dispatchers, and the admission rules in front of them.
pub(crate) struct Dispatchers {
    pub(crate) pool: SyncPool,
    pub(crate) async_rt: AsyncRuntime,
    clients: Arc<Clients>,
    metrics: Arc<Metrics>,
    limits: LimitsConfig,
    /// Shedding by time: the predicted wait above which a request gets 503 at once.
    budget: Duration,
    /// The async handler threads as an admission stage (the sync pool and the driver gate
    /// keep their own).
    async_threads: Stage,
    shutting_down: AtomicBool,
}

impl Dispatchers {
    pub(crate) fn new(
        pool: SyncPool,
        async_rt: AsyncRuntime,
        clients: Arc<Clients>,
        metrics: Arc<Metrics>,
        limits: LimitsConfig,
        async_threads: usize,
    ) -> Dispatchers {
        Dispatchers {
            pool,
            async_rt,
            clients,
            metrics,
            budget: limits.queue_wait_budget(),
            async_threads: Stage::new(async_threads),
            limits,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Stops taking new requests (they get 503) while in-flight ones finish.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Serves `job` in `mode`, or sheds it: 503 at once when it cannot start in time, 504
    /// when its deadline passes.
    pub(crate) async fn dispatch(&self, mode: Mode, job: Job) -> Done {
        let tracker = job.tracker.clone();
        let deadline = job.deadline;
        let shed = |reason: &'static str, e: AppError| {
            self.metrics
                .shed_total
                .with_label_values(&[mode.as_str(), reason])
                .inc();
            (Err(e), tracker.snapshot(Instant::now()))
        };
        const TOO_LONG: &str = "predicted wait exceeds limits.max_queue_wait";
        if self.shutting_down.load(Ordering::SeqCst) {
            return shed("shutdown", AppError::Overloaded("shutting down"));
        }
        // This request is counted among the queued since its arrival.
        let others = |phase: Phase| -> usize {
            let n = self.metrics.stats(mode).in_phase(phase);
            usize::try_from(n).unwrap_or(0)
        };
        let done = match mode {
            Mode::Sync => {
                if self
                    .pool
                    .predicted_wait(others(Phase::Queue).saturating_sub(1))
                    > self.budget
                {
                    return shed("queue_wait", AppError::Overloaded(TOO_LONG));
                }
                let rx = match self.pool.try_submit(job) {
                    Ok(rx) => rx,
                    Err(Refused::Full) => {
                        return shed("queue_full", AppError::Overloaded("queue full"))
                    }
                    Err(Refused::Closed) => {
                        return shed("shutdown", AppError::Overloaded("shutting down"))
                    }
                };
                match tokio::time::timeout_at(deadline.into(), rx).await {
                    Ok(Ok(done)) => done,
                    Ok(Err(_)) if self.shutting_down.load(Ordering::SeqCst) => {
                        return shed("shutdown", AppError::Overloaded("shutting down"))
                    }
                    Ok(Err(_)) => {
                        // Workers answer every job they take, even a late one; only a
                        // worker thread that died drops it.
                        tracing::error!("a sync worker dropped a request without answering");
                        (Err(AppError::Internal), tracker.snapshot(Instant::now()))
                    }
                    Err(_) => return shed("timeout", AppError::Timeout),
                }
            }
            Mode::Async => {
                if self.async_rt.in_flight() >= self.limits.max_in_flight {
                    return shed(
                        "in_flight",
                        AppError::Overloaded("too many requests in flight"),
                    );
                }
                let queued = others(Phase::Queue);
                if queued > self.limits.max_queue {
                    return shed("queue_full", AppError::Overloaded("queue full"));
                }
                let runnable = (queued + others(Phase::Sched)).saturating_sub(1);
                let gate = &self.clients.async_;
                // The request waits for the gate once per driver call it makes, and at least
                // as long as the gate has been stuck.
                let gate_wait = gate
                    .gate_stage
                    .predicted_wait(gate.waiting(), Duration::ZERO)
                    .saturating_mul(gate.calls_per_request(job.call.route()))
                    .max(gate.stalled_for());
                let wait = self.async_threads.predicted_wait(runnable, Duration::ZERO) + gate_wait;
                if wait > self.budget {
                    return shed("queue_wait", AppError::Overloaded(TOO_LONG));
                }
                let mut task = self
                    .async_rt
                    .spawn(job, self.clients.clone(), self.metrics.clone());
                match tokio::time::timeout_at(deadline.into(), &mut task).await {
                    Ok(Ok(done)) => {
                        self.async_threads.record(done.1.get(Phase::Compute));
                        done
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "request task failed");
                        (Err(AppError::Internal), tracker.snapshot(Instant::now()))
                    }
                    Err(_) => {
                        // Answer once the task is gone, not merely told to go: until a
                        // handler thread drops it, it still counts as in flight, in its
                        // phase and among the calls waiting at the driver gate, and a request
                        // arriving right after this 504 would be judged against them.
                        task.abort();
                        let _ = tokio::time::timeout(CANCEL_GRACE, task).await;
                        return shed("timeout", AppError::Timeout);
                    }
                }
            }
        };
        if matches!(done.0, Err(AppError::Timeout)) {
            self.metrics
                .shed_total
                .with_label_values(&[mode.as_str(), "timeout"])
                .inc();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by CI: right after a burst, a fresh request was shed (503) because the burst's
    /// last requests, already answered 504, still counted as waiting at the driver gate: the
    /// dispatcher answered as soon as it had asked for their tasks to be aborted, before a
    /// handler thread had dropped them. Here the only handler thread is busy when the
    /// deadline passes, so the drop has to wait for it.
    #[test]
    fn a_timed_out_request_is_no_longer_counted_once_it_is_answered() {
        let async_rt = AsyncRuntime::new(1).unwrap();
        let clients = Arc::new(Clients::unreachable(async_rt.handle(), 1));
        let metrics = Arc::new(Metrics::new());
        let pool = SyncPool::start(1, 4, clients.clone(), metrics.clone()).unwrap();
        let handlers = async_rt.handle().clone();
        let dispatchers = Dispatchers::new(
            pool,
            async_rt,
            clients.clone(),
            metrics.clone(),
            LimitsConfig::default(),
            1,
        );
        let gate = clients.async_.clone();
        // The gate's only permit is held, so the request waits there...
        let holder = handlers.spawn(async move {
            gate.run(|_db| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok(())
            })
            .await
        });
        // ...until its deadline, when the only handler thread is busy (50 to 130 ms).
        handlers.spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            std::thread::sleep(Duration::from_millis(80));
        });
        let arrival = Instant::now();
        let tracker = Tracker::new(metrics.stats(Mode::Async).clone(), arrival);
        let job = Job::bare(Call::User(1), tracker, arrival + Duration::from_millis(100));
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (result, _) = client.block_on(dispatchers.dispatch(Mode::Async, job));
        assert_eq!(result.err(), Some(AppError::Timeout));
        assert_eq!(clients.async_.waiting(), 0, "still waiting at the gate");
        assert_eq!(dispatchers.async_rt.in_flight(), 0, "still in flight");
        let stats = metrics.stats(Mode::Async);
        for phase in [Phase::Queue, Phase::Compute, Phase::Db, Phase::Sched] {
            assert_eq!(stats.in_phase(phase), 0, "still counted in {phase:?}");
        }
        holder.abort();
    }
}
