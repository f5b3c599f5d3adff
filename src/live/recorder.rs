//! What the live view records while someone watches: the thread lanes (exact, never
//! sampled), a sample of requests' phase changes, and per-second counts for the headline.
//!
//! It is the measurement core's [`Watcher`]: every call comes from a request-handling thread
//! with that request's tracker locked, so each does a few atomic operations and at most one
//! uncontended lock (its own thread's lane), and never waits for the stream. A full event
//! queue drops the event and counts it.
//!
//! Lanes. A sync pool thread (`reclaimd-sync-N`) runs one request start to finish, so its
//! lane is `compute` and `db` (blocked in a driver call) segments of that request. An async
//! runtime thread (`reclaimd-async`) is on a request only inside `poll`, so its lane is the
//! `compute` segments of whatever requests it polls; their DB waits happen off the thread.
//! Threads are mapped to lanes on their first event (a thread-local cache). Segments are kept
//! exactly (`EXACT` per lane and tick), and past that merged into bins by start time: the
//! time in each state is always exact, only the positions inside a bin are coarsened.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use crate::api::Mode;
use crate::observe::measure::Phase;
use crate::observe::watch::{Change, Watcher};

/// Exact segments kept per lane and tick before further ones are binned.
pub(crate) const EXACT: usize = 32;
/// The bin width past `EXACT`, in microseconds.
pub(crate) const BIN_US: u64 = 2_000;
/// Lanes per group (sync pool, async runtime): past it, the last lane holds the remaining
/// threads together (and says how many).
pub(crate) const MAX_LANES: usize = 64;
/// Sampled requests in flight at most.
pub(crate) const SLOTS: usize = 128;
/// Request events buffered between two ticks; beyond, they are dropped and counted.
const EVENT_QUEUE: usize = 8192;

/// The thread name prefixes of the sync pool's workers and the async runtime's threads
/// (`serve::dispatch`).
const SYNC_THREAD_PREFIX: &str = "reclaimd-sync-";
const ASYNC_THREAD_NAME: &str = "reclaimd-async";

/// The time origin of every live view in the process (shared, so instances line up).
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds from [`epoch`] to `at` (0 before it).
pub(crate) fn micros(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX)
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A lane group: the sync pool's threads or the async runtime's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    Sync = 0,
    Async = 1,
}

impl Group {
    pub(crate) const ALL: [Group; 2] = [Group::Sync, Group::Async];

    fn of(mode: Mode) -> Group {
        match mode {
            Mode::Sync => Group::Sync,
            Mode::Async => Group::Async,
        }
    }
}

/// Some time on a lane: `c` µs computing and `d` µs blocked in a DB call, from `t0` (µs since
/// [`epoch`]). An exact segment has one of them and `n = 1`; a bin sums `n` segments that
/// started in it, and `id` is the request with the longest of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) t0: u64,
    pub(crate) c: u64,
    pub(crate) d: u64,
    pub(crate) id: u64,
    pub(crate) n: u32,
    /// The longest merged segment, µs (decides `id`).
    pub(crate) best: u64,
}

impl Entry {
    fn segment(db: bool, id: u64, t0: u64, dur: u64) -> Entry {
        let (c, d) = if db { (0, dur) } else { (dur, 0) };
        Entry {
            t0,
            c,
            d,
            id,
            n: 1,
            best: dur,
        }
    }

    pub(crate) fn merge(&mut self, other: &Entry) {
        self.c += other.c;
        self.d += other.d;
        self.n += other.n;
        if other.best > self.best {
            self.best = other.best;
            self.id = other.id;
        }
    }
}

/// A lane's current segment, cut at every tick so long ones show as they go.
#[derive(Debug, Clone, Copy)]
struct Open {
    db: bool,
    id: u64,
    since: u64,
}

#[derive(Debug, Default)]
struct LaneAcc {
    open: Option<Open>,
    entries: Vec<Entry>,
    /// The last entry is a bin (further segments in its bin merge into it).
    binned: bool,
}

impl LaneAcc {
    fn push(&mut self, db: bool, id: u64, t0: u64, t1: u64) {
        if t1 <= t0 {
            return;
        }
        let seg = Entry::segment(db, id, t0, t1 - t0);
        if self.entries.len() < EXACT {
            self.entries.push(seg);
            return;
        }
        let bin = t0 - t0 % BIN_US;
        match self.entries.last_mut() {
            Some(last) if self.binned && last.t0 == bin => last.merge(&seg),
            _ => {
                self.entries.push(Entry { t0: bin, ..seg });
                self.binned = true;
            }
        }
    }
}

/// One lane: one thread, or (the last lane of a large group) several.
#[derive(Debug)]
pub(crate) struct Lane {
    acc: Mutex<LaneAcc>,
    /// Threads on this lane; more than one only on a group's last lane.
    pub(crate) threads: usize,
}

impl Lane {
    fn new(threads: usize) -> Lane {
        Lane {
            acc: Mutex::new(LaneAcc::default()),
            threads,
        }
    }

    /// The request `id` left the lane state `closes` (entered at `since`) and/or entered
    /// `opens`, at `at`. `true` = blocked in a DB call, `false` = computing.
    fn change(
        &self,
        id: u64,
        closes: Option<bool>,
        since: u64,
        opens: Option<bool>,
        at: u64,
        floor: u64,
    ) {
        let mut acc = self.acc.lock();
        if let Some(db) = closes {
            // The segment began at the open one's start (or its last cut) if this lane saw it
            // open; otherwise (watching began meanwhile, or a shared lane) at `since`.
            let start = match acc.open.take() {
                Some(o) if o.id == id && o.db == db && self.threads == 1 => o.since,
                _ => since.max(floor),
            };
            acc.push(db, id, start, at);
        }
        if let Some(db) = opens {
            if self.threads == 1 {
                acc.open = Some(Open { db, id, since: at });
            }
        }
    }

    /// Takes the entries recorded since the last call, cutting the open segment at `now`.
    fn take(&self, now: u64) -> Vec<Entry> {
        let mut acc = self.acc.lock();
        if let Some(o) = acc.open {
            if now > o.since {
                acc.push(o.db, o.id, o.since, now);
                acc.open = Some(Open { since: now, ..o });
            }
        }
        acc.binned = false;
        std::mem::replace(&mut acc.entries, Vec::with_capacity(EXACT + 8))
    }

    fn reset(&self) {
        *self.acc.lock() = LaneAcc::default();
    }
}

/// A phase-change event of a sampled request. `from == ARRIVE`: its arrival (`t0 == t1`);
/// `to == DONE`: it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReqEvent {
    pub(crate) id: u64,
    pub(crate) mode: Mode,
    pub(crate) from: u8,
    pub(crate) t0: u64,
    pub(crate) t1: u64,
    pub(crate) to: u8,
}

/// `ReqEvent::from` of an arrival.
pub(crate) const ARRIVE: u8 = 9;
/// `ReqEvent::to` of a finish.
pub(crate) const DONE: u8 = 9;

/// Request latencies, arrival to handler end: 8 buckets per power of two of microseconds
/// (within 12.5%).
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
}

pub(crate) const HIST_BUCKETS: usize = 8 * 62;

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: (0..HIST_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn index(us: u64) -> usize {
        if us < 8 {
            return us as usize;
        }
        let p = 63 - us.leading_zeros() as usize; // >= 3
        let sub = ((us >> (p - 3)) & 7) as usize;
        ((p - 2) * 8 + sub).min(HIST_BUCKETS - 1)
    }

    /// The smallest value in bucket `i`.
    pub(crate) fn lower(i: usize) -> u64 {
        if i < 8 {
            return i as u64;
        }
        let (p, sub) = (i / 8 + 2, (i % 8) as u64);
        (8 + sub) << (p - 3)
    }

    fn record(&self, us: u64) {
        self.buckets[Self::index(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, reset to zero.
    fn take(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect()
    }
}

/// The upper end of the bucket holding quantile `q` of `counts`, in µs; `None` when empty.
pub(crate) fn quantile(counts: &[u64], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(Histogram::lower(i + 1).saturating_sub(1).max(1));
        }
    }
    None
}

/// Per-mode counts since the last tick that read them.
struct ModeCounts {
    /// Requests that finished after starting (any status).
    served: AtomicU64,
    /// Requests that finished without ever starting (shed, or timed out in the queue).
    refused: AtomicU64,
    /// Compute time, ns.
    compute_ns: AtomicU64,
    latency: Histogram,
}

impl ModeCounts {
    fn new() -> ModeCounts {
        ModeCounts {
            served: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            compute_ns: AtomicU64::new(0),
            latency: Histogram::new(),
        }
    }
}

/// What [`Recorder::take_counts`] returns for a mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Counts {
    pub(crate) served: u64,
    pub(crate) refused: u64,
    pub(crate) compute_us: u64,
    pub(crate) latency: Vec<u64>,
}

/// The recorder of one daemon (both modes).
pub(crate) struct Recorder {
    /// Unique in the process: the thread-local lane cache is keyed by it.
    key: u64,
    lanes: [Vec<Lane>; 2],
    /// The async runtime's threads in the order they were first seen: their lane indices.
    async_threads: Mutex<Vec<ThreadId>>,
    /// Sampled requests in flight: `slots[id % SLOTS] == id`.
    slots: Box<[AtomicU64]>,
    /// The earliest arrival (µs) that may be sampled next, and the gap after it.
    next_sample: AtomicU64,
    sample_gap_us: AtomicU64,
    events_tx: Sender<ReqEvent>,
    events_rx: Receiver<ReqEvent>,
    /// Request events dropped because the queue was full.
    dropped: AtomicU64,
    counts: [ModeCounts; 2],
    /// When watching last began, µs: nothing earlier is recorded.
    floor: AtomicU64,
}

thread_local! {
    /// (recorder key, lane code) of this thread, see [`Recorder::lane_of`].
    static LANE: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

const NOT_A_LANE: u32 = u32::MAX;

/// The lane count of a group of `threads` threads, and the threads on its last lane.
pub(crate) fn lane_layout(threads: usize) -> (usize, usize) {
    let lanes = threads.clamp(1, MAX_LANES);
    (lanes, threads.saturating_sub(lanes - 1).max(1))
}

impl Recorder {
    /// A recorder for `sync_threads` pool threads and `async_threads` runtime threads, with
    /// at most one request sampled per `sample_gap`.
    pub(crate) fn new(sync_threads: usize, async_threads: usize, sample_gap: Duration) -> Self {
        static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
        let group = |threads: usize| {
            let (lanes, last) = lane_layout(threads);
            (0..lanes)
                .map(|i| Lane::new(if i + 1 == lanes { last } else { 1 }))
                .collect::<Vec<_>>()
        };
        let (events_tx, events_rx) = crossbeam_channel::bounded(EVENT_QUEUE);
        // Fix the epoch now: everything recorded later is after it.
        epoch();
        Recorder {
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            lanes: [group(sync_threads), group(async_threads)],
            async_threads: Mutex::new(Vec::new()),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            next_sample: AtomicU64::new(0),
            sample_gap_us: AtomicU64::new(us(sample_gap)),
            events_tx,
            events_rx,
            dropped: AtomicU64::new(0),
            counts: [ModeCounts::new(), ModeCounts::new()],
            floor: AtomicU64::new(0),
        }
    }

    pub(crate) fn lanes(&self, group: Group) -> &[Lane] {
        &self.lanes[group as usize]
    }

    /// Forgets everything recorded so far (watching starts again at `now`).
    pub(crate) fn reset(&self, now: Instant) {
        self.floor.store(micros(now), Ordering::Relaxed);
        for lane in self.lanes.iter().flatten() {
            lane.reset();
        }
        for slot in self.slots.iter() {
            slot.store(0, Ordering::Relaxed);
        }
        while self.events_rx.try_recv().is_ok() {}
        for c in &self.counts {
            c.served.store(0, Ordering::Relaxed);
            c.refused.store(0, Ordering::Relaxed);
            c.compute_ns.store(0, Ordering::Relaxed);
            c.latency.take();
        }
    }

    pub(crate) fn set_sample_gap(&self, gap: Duration) {
        self.sample_gap_us.store(us(gap), Ordering::Relaxed);
    }

    pub(crate) fn sample_gap(&self) -> Duration {
        Duration::from_micros(self.sample_gap_us.load(Ordering::Relaxed))
    }

    /// This thread's lane: (group, index), if it is a handler thread of this daemon.
    fn lane_of(&self) -> Option<(Group, usize)> {
        let (key, code) = LANE.with(Cell::get);
        let code = if key == self.key {
            code
        } else {
            let code = self.register();
            LANE.with(|c| c.set((self.key, code)));
            code
        };
        match code {
            NOT_A_LANE => None,
            c => Some((
                if c & 0x8000_0000 == 0 {
                    Group::Sync
                } else {
                    Group::Async
                },
                (c & 0x7fff_ffff) as usize,
            )),
        }
    }

    fn register(&self) -> u32 {
        let thread = std::thread::current();
        let Some(name) = thread.name() else {
            return NOT_A_LANE;
        };
        let (group, index) = if let Some(n) = name.strip_prefix(SYNC_THREAD_PREFIX) {
            match n.parse::<usize>() {
                Ok(i) => (Group::Sync, i),
                Err(_) => return NOT_A_LANE,
            }
        } else if name == ASYNC_THREAD_NAME {
            let mut seen = self.async_threads.lock();
            let i = match seen.iter().position(|t| *t == thread.id()) {
                Some(i) => i,
                None => {
                    seen.push(thread.id());
                    seen.len() - 1
                }
            };
            (Group::Async, i)
        } else {
            return NOT_A_LANE;
        };
        let lanes = self.lanes(group).len();
        let index = index.min(lanes - 1) as u32;
        match group {
            Group::Sync => index,
            Group::Async => index | 0x8000_0000,
        }
    }

    /// Takes every lane's entries (cut at `now`).
    pub(crate) fn take_lanes(&self, now: Instant) -> [Vec<Vec<Entry>>; 2] {
        let now = micros(now);
        Group::ALL.map(|g| self.lanes(g).iter().map(|l| l.take(now)).collect())
    }

    /// Takes the request events queued so far, and the count dropped since the last call.
    pub(crate) fn take_events(&self) -> (Vec<ReqEvent>, u64) {
        let events = self.events_rx.try_iter().collect();
        (events, self.dropped.swap(0, Ordering::Relaxed))
    }

    /// Takes a mode's counts since the last call.
    pub(crate) fn take_counts(&self, mode: Mode) -> Counts {
        let c = &self.counts[Group::of(mode) as usize];
        Counts {
            served: c.served.swap(0, Ordering::Relaxed),
            refused: c.refused.swap(0, Ordering::Relaxed),
            compute_us: c.compute_ns.swap(0, Ordering::Relaxed) / 1000,
            latency: c.latency.take(),
        }
    }

    fn event(&self, e: ReqEvent) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.events_tx.try_send(e)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn arrived(&self, mode: Mode, id: u64, at: Instant) {
        let slot = &self.slots[(id % SLOTS as u64) as usize];
        if slot.load(Ordering::Relaxed) != 0 {
            return;
        }
        let now = micros(at);
        let next = self.next_sample.load(Ordering::Relaxed);
        if now < next {
            return;
        }
        let gap = self.sample_gap_us.load(Ordering::Relaxed);
        if self
            .next_sample
            .compare_exchange(next, now + gap, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        if slot
            .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.event(ReqEvent {
                id,
                mode,
                from: ARRIVE,
                t0: now,
                t1: now,
                to: Phase::Queue as u8,
            });
        }
    }

    fn changed(&self, mode: Mode, c: &Change) {
        let at = micros(c.at);
        // The lane state a phase is, on the thread that makes the change: compute in both
        // modes; a DB wait only in sync mode (an async request waits off the thread).
        let lane_state = |p: Phase| match (p, mode) {
            (Phase::Compute, _) => Some(false),
            (Phase::Db, Mode::Sync) => Some(true),
            _ => None,
        };
        let closes = lane_state(c.from);
        let opens = c.to.and_then(lane_state);
        if closes.is_some() || opens.is_some() {
            if let Some((group, i)) = self.lane_of() {
                if group == Group::of(mode) {
                    let floor = self.floor.load(Ordering::Relaxed);
                    self.lanes(group)[i].change(c.id, closes, micros(c.since), opens, at, floor);
                }
            }
        }
        let counts = &self.counts[Group::of(mode) as usize];
        if c.from == Phase::Compute {
            let ns = u64::try_from(c.spent.as_nanos()).unwrap_or(u64::MAX);
            counts.compute_ns.fetch_add(ns, Ordering::Relaxed);
        }
        if c.to.is_none() {
            if c.from == Phase::Queue {
                counts.refused.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.served.fetch_add(1, Ordering::Relaxed);
                counts
                    .latency
                    .record(us(c.at.saturating_duration_since(c.arrival)));
            }
        }
        let slot = &self.slots[(c.id % SLOTS as u64) as usize];
        if slot.load(Ordering::Relaxed) == c.id {
            self.event(ReqEvent {
                id: c.id,
                mode,
                from: c.from as u8,
                t0: micros(c.since),
                t1: at,
                to: c.to.map_or(DONE, |p| p as u8),
            });
            if c.to.is_none() {
                slot.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// The [`Watcher`] installed on one mode's stats.
pub(crate) struct ModeWatcher {
    pub(crate) mode: Mode,
    pub(crate) recorder: Arc<Recorder>,
}

impl Watcher for ModeWatcher {
    fn arrived(&self, id: u64, at: Instant) {
        self.recorder.arrived(self.mode, id, at);
    }

    fn changed(&self, change: &Change) {
        self.recorder.changed(self.mode, change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: u64, from: Phase, since: Instant, to: Option<Phase>, at: Instant) -> Change {
        Change {
            id,
            arrival: since,
            from,
            since,
            spent: at - since,
            to,
            at,
        }
    }

    /// Runs `f` on a thread named `name` (as the dispatchers name theirs).
    fn on_thread<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn histogram_buckets_are_monotonic_and_within_an_eighth() {
        let mut last = 0;
        for v in (0..20)
            .map(|p| 1u64 << p)
            .flat_map(|b| [b, b + b / 3, b * 2 - 1])
        {
            let i = Histogram::index(v);
            assert!(i >= last, "{v}");
            last = i;
            let lo = Histogram::lower(i);
            let hi = Histogram::lower(i + 1);
            assert!(lo <= v && v < hi, "{v}: [{lo}, {hi})");
            assert!((hi - lo) as f64 <= (v as f64 / 8.0).max(1.0), "{v}");
        }
        let mut counts = vec![0; HIST_BUCKETS];
        for v in 1..=1000u64 {
            counts[Histogram::index(v * 100)] += 1;
        }
        let p99 = quantile(&counts, 0.99).unwrap();
        assert!((99_000..=99_000 * 9 / 8 + 100).contains(&p99), "{p99}");
        assert_eq!(quantile(&vec![0; HIST_BUCKETS], 0.99), None);
    }

    #[test]
    fn sync_lane_shows_compute_then_blocked_then_idle_exactly() {
        let rec = Arc::new(Recorder::new(2, 1, Duration::ZERO));
        let t0 = Instant::now();
        rec.reset(t0);
        let ms = Duration::from_millis;
        let r = rec.clone();
        on_thread("reclaimd-sync-1", move || {
            let w = ModeWatcher {
                mode: Mode::Sync,
                recorder: r,
            };
            w.changed(&change(
                7,
                Phase::Queue,
                t0,
                Some(Phase::Compute),
                t0 + ms(1),
            ));
            w.changed(&change(
                7,
                Phase::Compute,
                t0 + ms(1),
                Some(Phase::Db),
                t0 + ms(3),
            ));
            w.changed(&change(
                7,
                Phase::Db,
                t0 + ms(3),
                Some(Phase::Compute),
                t0 + ms(23),
            ));
            w.changed(&change(7, Phase::Compute, t0 + ms(23), None, t0 + ms(24)));
        });
        let [sync, asyn] = rec.take_lanes(t0 + ms(100));
        assert!(sync[0].is_empty() && asyn[0].is_empty());
        let base = micros(t0);
        let lane: Vec<_> = sync[1]
            .iter()
            .map(|e| (e.t0 - base, e.c, e.d, e.id))
            .collect();
        assert_eq!(
            lane,
            vec![
                (1000, 2000, 0, 7),
                (3000, 0, 20_000, 7),
                (23_000, 1000, 0, 7)
            ]
        );
        let counts = rec.take_counts(Mode::Sync);
        assert_eq!(
            (counts.served, counts.refused, counts.compute_us),
            (1, 0, 3000)
        );
    }

    #[test]
    fn an_open_segment_is_cut_at_each_tick_without_double_counting() {
        let rec = Arc::new(Recorder::new(1, 1, Duration::ZERO));
        let t0 = Instant::now();
        rec.reset(t0);
        let ms = Duration::from_millis;
        let r = rec.clone();
        let w = Arc::new(ModeWatcher {
            mode: Mode::Sync,
            recorder: r,
        });
        let w1 = w.clone();
        on_thread("reclaimd-sync-0", move || {
            w1.changed(&change(3, Phase::Compute, t0, Some(Phase::Db), t0 + ms(1)));
        });
        let first = rec.take_lanes(t0 + ms(50))[0][0].clone();
        on_thread("reclaimd-sync-0", move || {
            w.changed(&change(
                3,
                Phase::Db,
                t0 + ms(1),
                Some(Phase::Compute),
                t0 + ms(80),
            ));
        });
        let second = rec.take_lanes(t0 + ms(100))[0][0].clone();
        let db: u64 = first.iter().chain(&second).map(|e| e.d).sum();
        assert_eq!(db, 79_000, "{first:?} {second:?}");
        // The compute segment opened at 80 ms is cut at 100 ms.
        assert_eq!(second.last().map(|e| e.c), Some(20_000));
    }

    #[test]
    fn a_busy_async_lane_is_binned_past_the_exact_segments_and_keeps_every_microsecond() {
        let rec = Arc::new(Recorder::new(1, 2, Duration::ZERO));
        let t0 = Instant::now();
        rec.reset(t0);
        let r = rec.clone();
        // What the segments add up to at the recorder's resolution (whole µs since the epoch).
        let expected = on_thread("reclaimd-async", move || {
            let w = ModeWatcher {
                mode: Mode::Async,
                recorder: r,
            };
            // 10,000 polls of 7 µs, 3 µs apart, from 1,000 requests: 100 ms.
            let mut t = t0;
            let mut expected = 0;
            for k in 0..10_000u64 {
                let start = t;
                t += Duration::from_micros(7);
                w.changed(&change(
                    k % 1000 + 1,
                    Phase::Sched,
                    start,
                    Some(Phase::Compute),
                    start,
                ));
                w.changed(&change(
                    k % 1000 + 1,
                    Phase::Compute,
                    start,
                    Some(Phase::Db),
                    t,
                ));
                expected += micros(t) - micros(start);
                t += Duration::from_micros(3);
            }
            expected
        });
        let lanes = rec.take_lanes(t0 + Duration::from_millis(100));
        let lane = &lanes[Group::Async as usize][0];
        assert!(lane.len() <= EXACT + 100 / 2 + 2, "{}", lane.len());
        assert_eq!(lane.iter().map(|e| e.c).sum::<u64>(), expected);
        assert!((69_000..=71_000).contains(&expected), "{expected}");
        assert_eq!(lane.iter().map(|e| u64::from(e.n)).sum::<u64>(), 10_000);
        assert!(lane.iter().all(|e| e.d == 0));
        // The second async lane never ran anything.
        assert!(lanes[Group::Async as usize][1].is_empty());
    }

    #[test]
    fn async_db_waits_and_other_threads_are_not_lane_time() {
        let rec = Arc::new(Recorder::new(1, 1, Duration::ZERO));
        let t0 = Instant::now();
        rec.reset(t0);
        let ms = Duration::from_millis;
        let w = ModeWatcher {
            mode: Mode::Async,
            recorder: rec.clone(),
        };
        // On a thread that is no lane (the HTTP runtime, a driver thread).
        w.changed(&change(
            1,
            Phase::Queue,
            t0,
            Some(Phase::Compute),
            t0 + ms(1),
        ));
        w.changed(&change(
            1,
            Phase::Compute,
            t0 + ms(1),
            Some(Phase::Db),
            t0 + ms(2),
        ));
        let r = rec.clone();
        on_thread("reclaimd-async", move || {
            let w = ModeWatcher {
                mode: Mode::Async,
                recorder: r,
            };
            w.changed(&change(
                1,
                Phase::Db,
                t0 + ms(2),
                Some(Phase::Sched),
                t0 + ms(30),
            ));
        });
        let lanes = rec.take_lanes(t0 + ms(100));
        assert!(lanes.iter().flatten().all(Vec::is_empty), "{lanes:?}");
        assert_eq!(rec.take_counts(Mode::Async).compute_us, 1000);
    }

    #[test]
    fn sampling_follows_whole_requests_at_the_set_rate() {
        let gap = Duration::from_millis(10);
        let rec = Recorder::new(1, 1, gap);
        let t0 = Instant::now();
        rec.reset(t0);
        let w = ModeWatcher {
            mode: Mode::Async,
            recorder: Arc::new(rec),
        };
        // 10,000 requests in one second (10k req/s), each with three changes.
        for id in 1..=10_000u64 {
            let at = t0 + Duration::from_micros(id * 100);
            w.arrived(id, at);
            let ms = Duration::from_millis;
            w.changed(&change(
                id,
                Phase::Queue,
                at,
                Some(Phase::Compute),
                at + ms(1),
            ));
            w.changed(&change(
                id,
                Phase::Compute,
                at + ms(1),
                Some(Phase::Db),
                at + ms(2),
            ));
            w.changed(&change(id, Phase::Db, at + ms(2), None, at + ms(3)));
        }
        let (events, dropped) = w.recorder.take_events();
        assert_eq!(dropped, 0);
        let arrivals: Vec<u64> = events
            .iter()
            .filter(|e| e.from == ARRIVE)
            .map(|e| e.id)
            .collect();
        // One per 10 ms: 100 in the second.
        assert!((99..=101).contains(&arrivals.len()), "{}", arrivals.len());
        // Every sampled request is followed to the end, and nothing else is sent.
        for id in &arrivals {
            let mine: Vec<_> = events.iter().filter(|e| e.id == *id).collect();
            assert_eq!(mine.len(), 4, "{mine:?}");
            assert_eq!(mine.last().map(|e| e.to), Some(DONE));
        }
        assert_eq!(events.len(), arrivals.len() * 4);
        let counts = w.recorder.take_counts(Mode::Async);
        assert_eq!(counts.served, 10_000);
        assert_eq!(counts.latency.iter().sum::<u64>(), 10_000);
    }

    #[test]
    fn a_full_event_queue_drops_and_counts() {
        let rec = Recorder::new(1, 1, Duration::ZERO);
        let t0 = Instant::now();
        rec.reset(t0);
        for k in 0..(EVENT_QUEUE as u64 + 10) {
            rec.event(ReqEvent {
                id: k,
                mode: Mode::Sync,
                from: ARRIVE,
                t0: 0,
                t1: 0,
                to: 0,
            });
        }
        let (events, dropped) = rec.take_events();
        assert_eq!((events.len(), dropped), (EVENT_QUEUE, 10));
    }

    #[test]
    fn large_pools_share_the_last_lane() {
        assert_eq!(lane_layout(1), (1, 1));
        assert_eq!(lane_layout(64), (64, 1));
        assert_eq!(lane_layout(100), (64, 37));
        let rec = Arc::new(Recorder::new(100, 1, Duration::ZERO));
        let t0 = Instant::now();
        rec.reset(t0);
        let ms = Duration::from_millis;
        for thread in [70, 99] {
            let r = rec.clone();
            on_thread(&format!("reclaimd-sync-{thread}"), move || {
                let w = ModeWatcher {
                    mode: Mode::Sync,
                    recorder: r,
                };
                w.changed(&change(thread, Phase::Queue, t0, Some(Phase::Compute), t0));
                w.changed(&change(
                    thread,
                    Phase::Compute,
                    t0,
                    Some(Phase::Db),
                    t0 + ms(1),
                ));
                w.changed(&change(thread, Phase::Db, t0 + ms(1), None, t0 + ms(5)));
            });
        }
        let lanes = rec.take_lanes(t0 + ms(10));
        let last = &lanes[0][63];
        assert_eq!(rec.lanes(Group::Sync)[63].threads, 37);
        assert_eq!(last.iter().map(|e| e.d).sum::<u64>(), 8000);
        assert_eq!(last.iter().map(|e| e.c).sum::<u64>(), 2000);
    }
}
