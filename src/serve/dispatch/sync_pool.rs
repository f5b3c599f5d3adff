//! The sync dispatcher: a fixed pool of OS threads fed by a bounded queue. Each thread runs
//! one request start to finish with the blocking driver, and accounts for its own time as
//! busy, blocked (inside a driver call) or idle.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;

use crate::api::Mode;
use crate::observe::measure::{block_on, Phase, WorkerState};
use crate::observe::metrics::Metrics;
use crate::serve::admission::Stage;
use crate::serve::db::{Backend, Clients};
use crate::serve::dispatch::{Done, Job};
use crate::serve::error::AppError;

/// Why the pool did not take a job.
pub(crate) enum Refused {
    Full,
    Closed,
}

type Queued = (Job, oneshot::Sender<Done>);

/// A fixed pool of OS threads fed by a bounded queue.
pub(crate) struct SyncPool {
    /// `None` once closed for shutdown.
    tx: RwLock<Option<Sender<Queued>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Who is busy since when, for admission.
    busy: Arc<Busy>,
    /// The workers as an admission stage; each records its jobs' time on it.
    stage: Arc<Stage>,
}

/// When each worker started its current job: nanoseconds since `epoch`, plus one; 0 when
/// idle.
struct Busy {
    epoch: Instant,
    since: Vec<AtomicU64>,
}

impl Busy {
    fn start(&self, worker: usize, at: Instant) {
        let ns = u64::try_from(at.saturating_duration_since(self.epoch).as_nanos());
        self.since[worker].store(ns.unwrap_or(u64::MAX - 1) + 1, Ordering::Relaxed);
    }

    fn stop(&self, worker: usize) {
        self.since[worker].store(0, Ordering::Relaxed);
    }

    /// Idle workers, and the shortest time a busy worker has been on its job when all are
    /// busy.
    fn snapshot(&self, now: Instant) -> (usize, Duration) {
        let now =
            u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let mut idle = 0;
        let mut shortest = u64::MAX;
        for s in &self.since {
            match s.load(Ordering::Relaxed) {
                0 => idle += 1,
                started => shortest = shortest.min(now.saturating_sub(started - 1)),
            }
        }
        let shortest = if idle > 0 { 0 } else { shortest };
        (idle, Duration::from_nanos(shortest))
    }
}

impl SyncPool {
    /// Starts `workers` threads behind a queue of `max_queue` jobs.
    pub(crate) fn start(
        workers: usize,
        max_queue: usize,
        clients: Arc<Clients>,
        metrics: Arc<Metrics>,
    ) -> Result<SyncPool, String> {
        let (tx, rx) = crossbeam_channel::bounded(max_queue);
        let busy = Arc::new(Busy {
            epoch: Instant::now(),
            since: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        });
        let stage = Arc::new(Stage::new(workers));
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let worker = Worker {
                index: i,
                rx: rx.clone(),
                clients: clients.clone(),
                metrics: metrics.clone(),
                busy: busy.clone(),
                stage: stage.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("reclaimd-sync-{i}"))
                .spawn(move || worker.run())
                .map_err(|e| format!("cannot start sync worker thread: {e}"))?;
            threads.push(thread);
        }
        Ok(SyncPool {
            tx: RwLock::new(Some(tx)),
            threads: Mutex::new(threads),
            busy,
            stage,
        })
    }

    /// The wait predicted for a request with `queued` requests ahead of it in the queue
    /// (see `admission`).
    pub(crate) fn predicted_wait(&self, queued: usize) -> Duration {
        let (idle, on_job) = self.busy.snapshot(Instant::now());
        // With every worker busy, one must finish before even the head of the queue starts.
        let ahead = (queued + 1).saturating_sub(idle);
        self.stage.predicted_wait(ahead, on_job)
    }

    /// Queues `job`; the receiver gets its result.
    pub(crate) fn try_submit(&self, job: Job) -> Result<oneshot::Receiver<Done>, Refused> {
        let (reply, rx) = oneshot::channel();
        match &*self.tx.read() {
            Some(tx) => tx.try_send((job, reply)).map_err(|e| match e {
                TrySendError::Full(_) => Refused::Full,
                TrySendError::Disconnected(_) => Refused::Closed,
            })?,
            None => return Err(Refused::Closed),
        }
        Ok(rx)
    }

    /// Closes the queue and waits up to `timeout` for the threads to finish their jobs.
    pub(crate) fn close_and_join(&self, timeout: Duration) {
        self.tx.write().take();
        let threads = std::mem::take(&mut *self.threads.lock());
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

/// One pool thread and what it needs.
struct Worker {
    index: usize,
    rx: Receiver<Queued>,
    clients: Arc<Clients>,
    metrics: Arc<Metrics>,
    busy: Arc<Busy>,
    stage: Arc<Stage>,
}

impl Worker {
    /// Idle while waiting for a job, then busy (own code) or blocked (inside a driver call)
    /// until the job is answered. Its three counters add up to its wall time.
    fn run(self) {
        let counters = self.metrics.stats(Mode::Sync).clone();
        let mut mark = Instant::now();
        loop {
            let received = self.rx.recv_timeout(Duration::from_secs(1));
            let now = Instant::now();
            counters.add_worker(WorkerState::Idle, now - mark);
            mark = now;
            let (job, reply) = match received {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if reply.is_closed() {
                // The client was already answered (or went away): don't start the work.
                continue;
            }
            if now >= job.deadline {
                // Too late to start: answer 504 now rather than let the dispatcher find a
                // closed channel.
                let timing = job.tracker.finish_on_thread(now);
                let _ = reply.send((Err(AppError::Timeout), timing));
                continue;
            }
            self.busy.start(self.index, now);
            job.tracker.transition_on_thread(Phase::Compute, now);
            let tracker = job.tracker.clone();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                block_on(job.run(Backend::Sync(&self.clients.sync), &self.metrics))
            }))
            .unwrap_or_else(|_| {
                tracing::error!("request handler panicked");
                Err(AppError::Internal)
            });
            let end = Instant::now();
            self.busy.stop(self.index);
            self.stage.record(end - now);
            let timing = tracker.finish_on_thread(end);
            // Counted before the reply goes out: a client that has its answer finds the
            // worker's time in /metrics already.
            let blocked = timing.get(Phase::Db);
            counters.add_worker(WorkerState::Blocked, blocked);
            counters.add_worker(WorkerState::Busy, (end - mark).saturating_sub(blocked));
            mark = end;
            let _ = reply.send((result, timing));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Call;
    use crate::observe::measure::Tracker;

    /// Issue 9's timeout-boundary 500: a worker used to drop a job whose deadline had passed
    /// while it was queued, and a dispatcher whose own timer had not fired yet saw the closed
    /// channel and answered 500. A late job is now answered, as a timeout.
    #[test]
    fn a_job_taken_after_its_deadline_is_answered_as_a_timeout_not_dropped() {
        let handlers = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The job is answered before any call.
        let clients = Arc::new(Clients::unreachable(handlers.handle(), 10));
        let metrics = Arc::new(Metrics::new());
        let pool = SyncPool::start(1, 4, clients, metrics.clone()).unwrap();
        let arrival = Instant::now();
        let tracker = Tracker::new(metrics.stats(Mode::Sync).clone(), arrival);
        let job = Job::bare(Call::User(1), tracker, arrival);
        let Ok(reply) = pool.try_submit(job) else {
            panic!("an idle pool refused the job")
        };
        let answered = handlers.block_on(reply);
        pool.close_and_join(Duration::from_secs(5));
        match answered {
            Ok((result, _)) => assert_eq!(result.err(), Some(AppError::Timeout)),
            Err(_) => panic!("the worker dropped the late job without answering"),
        }
    }
}
