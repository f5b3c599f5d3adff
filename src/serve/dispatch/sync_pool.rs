//! The sync dispatcher: a fixed pool of OS threads fed by a bounded queue. Each thread runs
//! one request start to finish with the blocking driver, and accounts for its own time as
//! busy, blocked (inside a driver call) or idle.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;

use crate::api::Mode;
use crate::observe::measure::{block_on, Phase, WorkerState};
use crate::observe::metrics::Metrics;
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
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx = rx.clone();
            let clients = clients.clone();
            let metrics = metrics.clone();
            let thread = std::thread::Builder::new()
                .name(format!("reclaimd-sync-{i}"))
                .spawn(move || worker_loop(rx, clients, metrics))
                .map_err(|e| format!("cannot start sync worker thread: {e}"))?;
            threads.push(thread);
        }
        Ok(SyncPool {
            tx: RwLock::new(Some(tx)),
            threads: Mutex::new(threads),
        })
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

/// One pool thread: idle while waiting for a job, then busy (own code) or blocked (inside a
/// driver call) until the job is answered. Its three counters add up to its wall time.
fn worker_loop(rx: Receiver<Queued>, clients: Arc<Clients>, metrics: Arc<Metrics>) {
    let counters = metrics.stats(Mode::Sync).clone();
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
            block_on(job.run(Backend::Sync(&clients.sync), &metrics))
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
