//! The measurement core: each request's time split into `queue`, `compute`, `db` and
//! `sched`, the reclaimed waiting time, and per-mode live counts ([`ModeStats`]). It is a
//! leaf: it knows nothing about exporters; `metrics` reads [`ModeStats`] at scrape time.
//!
//! A [`Tracker`] follows one request through a small state machine. Every transition closes
//! the current phase at one `Instant` and opens the next at the same `Instant`, so the phases
//! add up to the total by construction: there is no gap to leak time into.
//!
//! Who drives the transitions:
//! - sync mode: the pool worker (`queue → compute` when it takes the job) and the DB layer
//!   (`compute → db → compute` around each blocking driver call);
//! - async mode: [`Instrumented`], which wraps the request's future. A poll is `compute`;
//!   after a poll returns `Pending` the request is waiting (`db`: the only thing a handler
//!   awaits is the database) until its waker fires, then runnable (`sched`) until the runtime
//!   polls it again. This is the split tokio-metrics' `TaskMonitor` calls idle and scheduled.
//!
//! Reclaimed time: [`DbWaitClock`] integrates, per mode, the time during which at least one
//! request waits on the DB. A compute segment `[t0, t1]` reclaimed `covered(t1) − covered(t0)`
//! of it: compute that ran while another request waited. The request itself is computing, not
//! waiting, so it never counts itself. With one sync worker the clock cannot advance while the
//! worker computes, so reclaimed time is exactly zero.
//!
//! The headline, *reclaimed share of compute*, is reclaimed ÷ compute, both credited together
//! when a compute segment ends ([`ModeStats::reclaimed_and_compute`]), so the share is 0 to 1
//! by construction: exactly 0 with one sync worker. Its cost side is [`WorkerState::Blocked`]
//! thread time: sync workers parked in driver calls (async threads never block).
//!
//! Watching (`observe::watch`): a watcher installed on a mode's [`ModeStats`] (the live view)
//! is told of every arrival and transition while it is switched on; while it is off, the cost
//! is one relaxed atomic load per transition.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use crate::api::Mode;
use crate::observe::watch::{Change, Watch};
use crate::server_timing::ServerTiming;

/// A request's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Arrived, waiting for a worker (sync) or its first poll (async).
    Queue = 0,
    /// Its own code runs on a CPU.
    Compute = 1,
    /// Waiting on MongoDB.
    Db = 2,
    /// Runnable but not running: woken, waiting for the thread.
    Sched = 3,
}

impl Phase {
    /// Every phase, in label order.
    pub const ALL: [Phase; 4] = [Phase::Queue, Phase::Compute, Phase::Db, Phase::Sched];

    /// The `phase` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queue => "queue",
            Phase::Compute => "compute",
            Phase::Db => "db",
            Phase::Sched => "sched",
        }
    }

    /// The `state` label value of `reclaimd_requests_in_state`.
    pub fn state(self) -> &'static str {
        match self {
            Phase::Queue => "queued",
            Phase::Compute => "computing",
            Phase::Db => "waiting_db",
            Phase::Sched => "runnable",
        }
    }
}

/// What a handler thread is doing, for `reclaimd_worker_seconds_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Running code.
    Busy = 0,
    /// Parked inside a blocking driver call (sync mode only).
    Blocked = 1,
    /// Waiting for work.
    Idle = 2,
}

impl WorkerState {
    /// Every state, in label order.
    pub const ALL: [WorkerState; 3] = [WorkerState::Busy, WorkerState::Blocked, WorkerState::Idle];

    /// The `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Busy => "busy",
            WorkerState::Blocked => "blocked",
            WorkerState::Idle => "idle",
        }
    }
}

/// Live counts of one mode, updated on every phase transition and read by exporters.
#[derive(Debug, Default)]
pub struct ModeStats {
    /// Requests in each phase right now, indexed by `Phase as usize`.
    in_phase: [AtomicI64; 4],
    /// Reclaimed time, in nanoseconds.
    reclaimed_ns: AtomicU64,
    /// Compute time, in nanoseconds, credited with `reclaimed_ns` as each segment ends.
    compute_ns: AtomicU64,
    /// Handler thread time per [`WorkerState`], in nanoseconds.
    worker_ns: [AtomicU64; 3],
    /// Integrates "at least one request of this mode waits on the DB".
    db_clock: DbWaitClock,
    /// Who follows this mode's transitions as they happen, if anyone.
    watch: Watch,
}

impl ModeStats {
    fn enter(&self, phase: Phase) {
        self.in_phase[phase as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn leave(&self, phase: Phase) {
        self.in_phase[phase as usize].fetch_sub(1, Ordering::Relaxed);
    }

    /// Credits one finished compute segment of `compute`, of which `reclaimed` ran while
    /// another request waited on the DB (`reclaimed ≤ compute`). Compute is added first and
    /// read last ([`ModeStats::reclaimed_and_compute`]), so a reader never sees more
    /// reclaimed than compute.
    fn add_compute_segment(&self, compute: Duration, reclaimed: Duration) {
        if !compute.is_zero() {
            self.compute_ns.fetch_add(nanos(compute), Ordering::SeqCst);
        }
        if !reclaimed.is_zero() {
            self.reclaimed_ns
                .fetch_add(nanos(reclaimed), Ordering::SeqCst);
        }
    }

    /// Adds thread time in `state`.
    pub fn add_worker(&self, state: WorkerState, d: Duration) {
        if !d.is_zero() {
            self.worker_ns[state as usize].fetch_add(nanos(d), Ordering::Relaxed);
        }
    }

    /// Requests of this mode in `phase` right now.
    pub fn in_phase(&self, phase: Phase) -> i64 {
        self.in_phase[phase as usize].load(Ordering::Relaxed)
    }

    /// Compute run while another request of this mode waited on the DB, since start.
    pub fn reclaimed(&self) -> Duration {
        Duration::from_nanos(self.reclaimed_ns.load(Ordering::SeqCst))
    }

    /// Compute time of this mode's requests since start, credited as each compute segment
    /// ends (a request's compute is counted before the request finishes).
    pub fn compute(&self) -> Duration {
        Duration::from_nanos(self.compute_ns.load(Ordering::SeqCst))
    }

    /// `(reclaimed, compute)` read in the order that keeps `reclaimed ≤ compute`.
    pub fn reclaimed_and_compute(&self) -> (Duration, Duration) {
        let reclaimed = self.reclaimed();
        (reclaimed, self.compute())
    }

    /// Handler thread time in `state`, since start.
    pub fn worker(&self, state: WorkerState) -> Duration {
        Duration::from_nanos(self.worker_ns[state as usize].load(Ordering::Relaxed))
    }

    /// Requests of this mode waiting on the DB right now, as the reclaim clock sees them.
    pub fn waiting_db(&self) -> usize {
        self.db_clock.waiting()
    }

    /// The hook through which the live view follows this mode's transitions.
    pub fn watch(&self) -> &Watch {
        &self.watch
    }
}

/// The [`ModeStats`] of both modes.
#[derive(Debug, Default)]
pub struct Stats {
    sync: Arc<ModeStats>,
    async_: Arc<ModeStats>,
}

impl Stats {
    /// The stats of `mode`.
    pub fn mode(&self, mode: Mode) -> &Arc<ModeStats> {
        match mode {
            Mode::Sync => &self.sync,
            Mode::Async => &self.async_,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Integrates the time during which at least one request of a mode waits on the DB.
#[derive(Debug)]
pub struct DbWaitClock {
    inner: Mutex<ClockInner>,
}

#[derive(Debug)]
struct ClockInner {
    waiting: usize,
    since: Instant,
    covered: Duration,
}

impl ClockInner {
    fn advance(&mut self, now: Instant) {
        if now > self.since {
            if self.waiting > 0 {
                self.covered += now - self.since;
            }
            self.since = now;
        }
    }
}

impl Default for DbWaitClock {
    fn default() -> Self {
        DbWaitClock {
            inner: Mutex::new(ClockInner {
                waiting: 0,
                since: Instant::now(),
                covered: Duration::ZERO,
            }),
        }
    }
}

impl DbWaitClock {
    fn lock(&self) -> MutexGuard<'_, ClockInner> {
        self.inner.lock()
    }

    fn enter(&self, now: Instant) {
        let mut c = self.lock();
        c.advance(now);
        c.waiting += 1;
    }

    fn exit(&self, now: Instant) {
        let mut c = self.lock();
        c.advance(now);
        c.waiting = c.waiting.saturating_sub(1);
    }

    /// Total time, up to `now`, during which at least one request waited on the DB.
    pub fn covered(&self, now: Instant) -> Duration {
        let mut c = self.lock();
        c.advance(now);
        c.covered
    }

    /// Requests waiting on the DB right now.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }
}

/// The final split of one request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timing {
    /// Time in each phase, indexed by `Phase as usize`.
    pub phases: [Duration; 4],
    /// Arrival to the end of the handler; the phases add up to it.
    pub total: Duration,
    /// Compute that ran while another request of the mode waited on the DB.
    pub reclaimed: Duration,
}

impl Timing {
    /// Time in `phase`.
    pub fn get(&self, phase: Phase) -> Duration {
        self.phases[phase as usize]
    }

    /// The `Server-Timing` header value of this split, served in `mode`.
    pub fn server_timing(&self, mode: Mode) -> ServerTiming {
        ServerTiming {
            queue: self.get(Phase::Queue),
            compute: self.get(Phase::Compute),
            db: self.get(Phase::Db),
            sched: self.get(Phase::Sched),
            total: self.total,
            reclaimed: Some(self.reclaimed),
            mode: Some(mode),
        }
    }
}

/// Follows one request through its phases; see the module docs.
pub struct Tracker {
    stats: Arc<ModeStats>,
    /// Unique in the process, for watchers.
    id: u64,
    inner: Mutex<TrackerInner>,
}

/// The next [`Tracker`]'s id.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
struct TrackerInner {
    /// `None` once finished.
    phase: Option<Phase>,
    arrival: Instant,
    since: Instant,
    acc: [Duration; 4],
    reclaimed: Duration,
    /// `DbWaitClock::covered` when the current compute segment began.
    covered_at_compute_start: Duration,
    /// The waker fired during a poll: the future is runnable as soon as the poll ends.
    woken_during_poll: bool,
    /// The worker thread's run-queue delay at the last transition (sync mode).
    last_run_delay: Option<Duration>,
}

impl Tracker {
    /// Starts tracking a request that arrived at `arrival`; it is queued from then on.
    pub fn new(stats: Arc<ModeStats>, arrival: Instant) -> Arc<Tracker> {
        stats.enter(Phase::Queue);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if let Some(w) = stats.watch.get() {
            w.arrived(id, arrival);
        }
        Arc::new(Tracker {
            stats,
            id,
            inner: Mutex::new(TrackerInner {
                phase: Some(Phase::Queue),
                arrival,
                since: arrival,
                acc: [Duration::ZERO; 4],
                reclaimed: Duration::ZERO,
                covered_at_compute_start: Duration::ZERO,
                woken_during_poll: false,
                last_run_delay: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, TrackerInner> {
        self.inner.lock()
    }

    /// Moves to phase `to` at `now`. No-op once finished.
    pub fn transition(&self, to: Phase, now: Instant) {
        let mut inner = self.lock();
        self.transition_locked(&mut inner, Some(to), now, Duration::ZERO);
    }

    /// Like [`Tracker::transition`], called on the OS thread that runs the request (sync
    /// mode): the time this thread spent in the kernel's run queue since its previous
    /// transition (runnable, not running: more threads than cores) is moved out of the phase
    /// being closed into `sched`.
    pub fn transition_on_thread(&self, to: Phase, now: Instant) {
        let mut inner = self.lock();
        let carve = inner.run_delay_since_last();
        self.transition_locked(&mut inner, Some(to), now, carve);
    }

    /// [`Tracker::finish`] on the OS thread that ran the request (sync mode).
    pub fn finish_on_thread(&self, now: Instant) -> Timing {
        {
            let mut inner = self.lock();
            if inner.phase.is_some() {
                let carve = inner.run_delay_since_last();
                self.transition_locked(&mut inner, None, now, carve);
            }
        }
        self.finish(now)
    }

    fn transition_locked(
        &self,
        inner: &mut TrackerInner,
        to: Option<Phase>,
        now: Instant,
        run_queue: Duration,
    ) {
        let Some(from) = inner.phase else { return };
        if Some(from) == to {
            return;
        }
        let now = now.max(inner.since);
        let spent = now - inner.since;
        // Time runnable-but-not-running inside this segment is `sched`, not `from`.
        let run_queue = if from == Phase::Queue {
            Duration::ZERO
        } else {
            run_queue.min(spent)
        };
        let spent = spent - run_queue;
        inner.acc[from as usize] += spent;
        inner.acc[Phase::Sched as usize] += run_queue;
        self.stats.leave(from);
        match from {
            Phase::Compute => {
                let covered = self.stats.db_clock.covered(now);
                let reclaimed = covered
                    .saturating_sub(inner.covered_at_compute_start)
                    .min(spent);
                inner.reclaimed += reclaimed;
                self.stats.add_compute_segment(spent, reclaimed);
            }
            Phase::Db => self.stats.db_clock.exit(now),
            Phase::Queue | Phase::Sched => {}
        }
        match to {
            Some(Phase::Compute) => {
                inner.covered_at_compute_start = self.stats.db_clock.covered(now);
            }
            Some(Phase::Db) => self.stats.db_clock.enter(now),
            _ => {}
        }
        if let Some(to) = to {
            self.stats.enter(to);
        }
        if let Some(w) = self.stats.watch.get() {
            w.changed(&Change {
                id: self.id,
                arrival: inner.arrival,
                from,
                since: inner.since,
                spent,
                to,
                at: now,
            });
        }
        inner.phase = to;
        inner.since = now;
    }

    /// Ends tracking at `now` and returns the split. Later calls return the same split.
    pub fn finish(&self, now: Instant) -> Timing {
        let mut inner = self.lock();
        if inner.phase.is_some() {
            self.transition_locked(&mut inner, None, now, Duration::ZERO);
        }
        Timing {
            phases: inner.acc,
            total: inner.since - inner.arrival,
            reclaimed: inner.reclaimed,
        }
    }

    /// The split so far, as if the request ended at `now`, without ending it (used when the
    /// client is answered 504 while the work is still somewhere in the system).
    pub fn snapshot(&self, now: Instant) -> Timing {
        let inner = self.lock();
        let mut phases = inner.acc;
        let mut end = inner.since;
        if let Some(phase) = inner.phase {
            let now = now.max(inner.since);
            phases[phase as usize] += now - inner.since;
            end = now;
        }
        Timing {
            phases,
            total: end - inner.arrival,
            reclaimed: inner.reclaimed,
        }
    }

    fn on_poll_start(&self, now: Instant) {
        let mut inner = self.lock();
        inner.woken_during_poll = false;
        self.transition_locked(&mut inner, Some(Phase::Compute), now, Duration::ZERO);
    }

    fn on_pending(&self, now: Instant) {
        let mut inner = self.lock();
        let next = if inner.woken_during_poll {
            Phase::Sched
        } else {
            Phase::Db
        };
        self.transition_locked(&mut inner, Some(next), now, Duration::ZERO);
    }

    fn on_wake(&self, now: Instant) {
        let mut inner = self.lock();
        match inner.phase {
            Some(Phase::Db) => {
                self.transition_locked(&mut inner, Some(Phase::Sched), now, Duration::ZERO)
            }
            Some(Phase::Compute) => inner.woken_during_poll = true,
            _ => {}
        }
    }
}

impl TrackerInner {
    fn run_delay_since_last(&mut self) -> Duration {
        let now = thread_run_delay();
        let delta = match (self.last_run_delay, now) {
            (Some(before), Some(now)) => now.saturating_sub(before),
            _ => Duration::ZERO,
        };
        self.last_run_delay = now;
        delta
    }
}

/// This thread's total time spent runnable in the kernel's run queue but not running
/// (Linux `/proc/thread-self/schedstat`, second field). `None` where unavailable.
pub fn thread_run_delay() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        use std::cell::RefCell;
        use std::os::unix::fs::FileExt;
        thread_local! {
            static SCHEDSTAT: RefCell<Option<std::fs::File>> =
                RefCell::new(std::fs::File::open("/proc/thread-self/schedstat").ok());
        }
        SCHEDSTAT.with(|f| {
            let f = f.borrow();
            let file = f.as_ref()?;
            let mut buf = [0u8; 96];
            let n = file.read_at(&mut buf, 0).ok()?;
            let text = std::str::from_utf8(&buf[..n]).ok()?;
            let ns: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
            Some(Duration::from_nanos(ns))
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // A request dropped mid-way (timed out, shed after queuing, shutdown) must not leave
        // a gauge raised or the DB clock running.
        let mut inner = self.lock();
        if inner.phase.is_some() {
            let now = Instant::now();
            self.transition_locked(&mut inner, None, now, Duration::ZERO);
        }
    }
}

/// Wraps an async request's future and drives its [`Tracker`] from polls and wake-ups.
pub struct Instrumented<F> {
    future: Pin<Box<F>>,
    tracker: Arc<Tracker>,
}

impl<F: Future> Instrumented<F> {
    /// Wraps `future`, which `tracker` follows.
    pub fn new(future: F, tracker: Arc<Tracker>) -> Self {
        Instrumented {
            future: Box::pin(future),
            tracker,
        }
    }
}

impl<F> Drop for Instrumented<F> {
    fn drop(&mut self) {
        // An aborted request (timeout, shutdown) stops being counted now, even if the
        // driver still holds one of its wakers.
        self.tracker.finish(Instant::now());
    }
}

struct TimedWaker {
    inner: Waker,
    tracker: Arc<Tracker>,
}

impl Wake for TimedWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.tracker.on_wake(Instant::now());
        self.inner.wake_by_ref();
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = (F::Output, Timing);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.tracker.on_poll_start(Instant::now());
        let waker = Waker::from(Arc::new(TimedWaker {
            inner: cx.waker().clone(),
            tracker: this.tracker.clone(),
        }));
        let polled = this.future.as_mut().poll(&mut Context::from_waker(&waker));
        let now = Instant::now();
        match polled {
            Poll::Ready(output) => Poll::Ready((output, this.tracker.finish(now))),
            Poll::Pending => {
                this.tracker.on_pending(now);
                Poll::Pending
            }
        }
    }
}

/// Runs a future to completion on the current thread. Sync-mode handlers never return
/// `Pending` (every driver call blocks inside `poll`), so this polls once; the park loop is
/// there for correctness, not for use.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(stats: &Stats, mode: Mode, at: Instant) -> Arc<Tracker> {
        Tracker::new(stats.mode(mode).clone(), at)
    }

    #[test]
    fn phases_add_up_exactly_and_gauges_return_to_zero() {
        let m = Stats::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let t = tracker(&m, Mode::Sync, t0);
        assert_eq!(m.mode(Mode::Sync).in_phase(Phase::Queue), 1);
        t.transition(Phase::Compute, t0 + ms(3));
        t.transition(Phase::Db, t0 + ms(5));
        assert_eq!(m.mode(Mode::Sync).in_phase(Phase::Db), 1);
        t.transition(Phase::Compute, t0 + ms(25));
        let timing = t.finish(t0 + ms(26));
        assert_eq!(timing.get(Phase::Queue), ms(3));
        assert_eq!(timing.get(Phase::Compute), ms(3));
        assert_eq!(timing.get(Phase::Db), ms(20));
        assert_eq!(timing.total, ms(26));
        assert_eq!(timing.phases.iter().sum::<Duration>(), timing.total);
        for p in Phase::ALL {
            assert_eq!(m.mode(Mode::Sync).in_phase(p), 0, "{p:?}");
        }
    }

    #[test]
    fn compute_overlapping_another_requests_db_wait_is_reclaimed() {
        let m = Stats::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let a = tracker(&m, Mode::Async, t0);
        let b = tracker(&m, Mode::Async, t0);
        a.transition(Phase::Compute, t0);
        a.transition(Phase::Db, t0 + ms(1)); // a waits 1..11
        b.transition(Phase::Compute, t0 + ms(2)); // b computes 2..6: all reclaimed
        b.transition(Phase::Db, t0 + ms(6));
        a.transition(Phase::Compute, t0 + ms(11)); // a computes 11..13 while b waits
        a.finish(t0 + ms(13));
        b.transition(Phase::Compute, t0 + ms(20)); // b computes 20..21, nobody waits
        let tb = b.finish(t0 + ms(21));
        assert_eq!(tb.reclaimed, ms(4));
        assert_eq!(m.mode(Mode::Async).reclaimed(), ms(6));
        // Compute: a 0..1 and 11..13, b 2..6 and 20..21; 6 of its 8 ms were reclaimed.
        assert_eq!(m.mode(Mode::Async).reclaimed_and_compute(), (ms(6), ms(8)));
        // The request's own share travels in its Server-Timing header.
        let header = tb.server_timing(Mode::Async);
        assert_eq!(header.reclaimed, Some(ms(4)));
        assert_eq!(header.compute, ms(5));
    }

    #[test]
    fn one_worker_at_a_time_reclaims_nothing_but_counts_its_compute() {
        // One sync worker: requests run one after another, so while one computes nobody waits.
        let m = Stats::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut at = t0;
        for _ in 0..3 {
            let t = tracker(&m, Mode::Sync, t0);
            t.transition(Phase::Compute, at);
            t.transition(Phase::Db, at + ms(1));
            t.transition(Phase::Compute, at + ms(21));
            assert_eq!(t.finish(at + ms(23)).reclaimed, Duration::ZERO);
            at += ms(23);
        }
        assert_eq!(
            m.mode(Mode::Sync).reclaimed_and_compute(),
            (Duration::ZERO, ms(9))
        );
    }

    #[test]
    fn dropping_an_unfinished_tracker_releases_its_state() {
        let m = Stats::default();
        let t = tracker(&m, Mode::Async, Instant::now());
        t.transition(Phase::Db, Instant::now());
        assert_eq!(m.mode(Mode::Async).waiting_db(), 1);
        drop(t);
        assert_eq!(m.mode(Mode::Async).waiting_db(), 0);
        assert_eq!(m.mode(Mode::Async).in_phase(Phase::Db), 0);
    }

    #[test]
    fn instrumented_future_splits_idle_into_db_and_sched() {
        let m = Stats::default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let t = tracker(&m, Mode::Async, Instant::now());
        let fut = Instrumented::new(
            async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                std::hint::black_box(1)
            },
            t,
        );
        let (out, timing) = rt.block_on(fut);
        assert_eq!(out, 1);
        assert!(
            timing.get(Phase::Db) >= Duration::from_millis(30),
            "{timing:?}"
        );
        assert_eq!(timing.phases.iter().sum::<Duration>(), timing.total);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod linux_tests {
    use super::*;

    #[test]
    fn run_queue_delay_is_readable_and_monotonic() {
        let a = thread_run_delay().expect("/proc/thread-self/schedstat");
        std::thread::yield_now();
        let b = thread_run_delay().unwrap();
        assert!(b >= a);
    }
}
