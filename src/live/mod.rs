//! The live view: the lecture's timeline, drawn in the browser as it happens.
//!
//! `GET /live` on the admin listener serves a self-contained page (HTML, CSS and JS embedded
//! in the binary); it reads `GET /live/events`, a Server-Sent Events stream of compact JSON
//! frames (`encode` documents them), and draws one lane per handler thread, the sampled
//! requests' phases below, and the headline measures.
//!
//! - `recorder`: the measurement core's watcher: thread lanes (exact), sampled requests,
//!   per-second counts. The only part on the request path.
//! - `encode`: the stream's messages, within a byte budget.
//! - `http`: the page, its assets and the stream; the viewer limit.
//! - [`Hub`] (here): one per daemon; while anyone watches, a `reclaimd-live` thread takes
//!   what was recorded every tick (100 ms), encodes one frame and offers it to every stream.
//!   A stream whose buffer is full loses the frame (counted, and the viewer is told); one full
//!   for 30 s is closed. With nobody watching the thread is gone and the watcher is switched
//!   off: each transition then costs one relaxed atomic load.
//!
//! Bounded at any load: each frame is encoded within `max_stream_bytes_per_second` ÷ 10
//! (÷ the instances sharing a stream): lanes are coarsened in time if need be (never
//! dropped: the time each thread spent computing or blocked stays exact), then requests are
//! sampled (at most one per `gap`, which halves whenever a frame runs out of room and
//! recovers when it has room again) and cut at the budget. A frame that is still too big
//! (hundreds of lanes) delays the next one so that the bytes per second stay within bounds.

mod encode;
mod http;
mod recorder;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::api::Mode;
use crate::config::Config;
use crate::observe::measure::{ModeStats, Phase};

pub(crate) use http::{serve, Body, Stream};
use recorder::{Counts, Group, ModeWatcher, Recorder};

/// How often a frame is sent.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// Frames a stream buffers before it loses them.
const STREAM_BUFFER: usize = 32;
/// A stream that could take no frame for this long is closed.
const STALL_LIMIT: Duration = Duration::from_secs(30);
/// Sampled requests: at most one per `MIN_GAP` (200 a second), at least one per `MAX_GAP`.
const MIN_GAP: Duration = Duration::from_millis(5);
const MAX_GAP: Duration = Duration::from_secs(1);
/// Seconds of counts kept for [`Hub::summary`].
const HISTORY: usize = 30;

/// One second's counts of one mode.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModeSecond {
    pub(crate) served: u64,
    pub(crate) refused: u64,
    pub(crate) compute_us: u64,
    pub(crate) reclaimed_us: u64,
    pub(crate) latency: Vec<u64>,
    pub(crate) queue: i64,
    pub(crate) in_flight: i64,
}

/// One second of one lane group's thread time.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupSecond {
    pub(crate) busy_us: u64,
    pub(crate) blocked_us: u64,
    pub(crate) threads: usize,
}

/// One second's counts, indexed by mode (and lane group, sync = 0).
#[derive(Debug, Clone, Default)]
pub(crate) struct Second {
    pub(crate) elapsed_us: u64,
    pub(crate) modes: [ModeSecond; 2],
    pub(crate) groups: [GroupSecond; 2],
}

/// The headline of one mode over a window, for `reclaimd demo`'s summary line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Headline {
    /// Requests finished per second (after starting; any status).
    pub(crate) served_per_s: f64,
    /// Requests refused per second (shed, or timed out before starting).
    pub(crate) refused_per_s: f64,
    /// p99 from arrival to handler end, of the served requests.
    pub(crate) p99: Option<Duration>,
    /// Share of compute that ran while another request of the mode waited on the DB.
    pub(crate) reclaimed: Option<f64>,
    /// Share of the mode's handler threads' time spent blocked in DB calls.
    pub(crate) blocked: f64,
    /// Share of the mode's handler threads' time spent computing.
    pub(crate) busy: f64,
    /// Requests waiting for a worker (sync) or a first poll (async), at the window's end.
    pub(crate) queue: i64,
}

/// A stream's subscription to one hub's frames.
struct Sub {
    tx: mpsc::Sender<Bytes>,
    lost: Arc<AtomicU64>,
    full_since: Option<Instant>,
}

#[derive(Default)]
struct State {
    subs: Vec<Sub>,
    /// Watch guards held in-process (`reclaimd demo`).
    internal: usize,
    /// A flusher thread is running.
    running: bool,
    /// Instances shown with this one on its page (`reclaimd demo`).
    peers: Vec<Arc<Hub>>,
}

/// The live view of one daemon.
pub(crate) struct Hub {
    id: u64,
    name: Mutex<String>,
    recorder: Arc<Recorder>,
    stats: [Arc<ModeStats>; 2],
    mode: AtomicU8,
    /// `PUT /admin/mode` is enabled (a token is configured).
    token: bool,
    threads: [usize; 2],
    enabled: bool,
    max_viewers: usize,
    bytes_per_second: usize,
    /// Instances whose frames share one stream (budget divisor).
    share: AtomicUsize,
    state: Mutex<State>,
    /// Streams open on this daemon's admin listener.
    viewers: AtomicUsize,
    history: Mutex<VecDeque<Second>>,
}

fn mode_code(mode: Mode) -> u8 {
    match mode {
        Mode::Sync => 0,
        Mode::Async => 1,
    }
}

impl Hub {
    /// The hub of a daemon configured by `config`, watching `sync` and `async_` (installs
    /// its watchers; they stay off until someone watches).
    pub(crate) fn new(config: &Config, sync: Arc<ModeStats>, async_: Arc<ModeStats>) -> Arc<Hub> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let threads = [config.sync.workers, config.async_.worker_threads];
        let recorder = Arc::new(Recorder::new(threads[0], threads[1], MIN_GAP));
        for (mode, stats) in [(Mode::Sync, &sync), (Mode::Async, &async_)] {
            let watcher = Arc::new(ModeWatcher {
                mode,
                recorder: recorder.clone(),
            });
            if stats.watch().install(watcher).is_err() {
                tracing::warn!(%mode, "a live view already watches these stats");
            }
        }
        Arc::new(Hub {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name: Mutex::new(String::new()),
            recorder,
            stats: [sync, async_],
            mode: AtomicU8::new(mode_code(config.mode)),
            token: !config.admin.token.is_empty(),
            threads,
            enabled: config.live.enabled,
            max_viewers: config.live.max_viewers,
            bytes_per_second: config.live.max_stream_bytes_per_second,
            share: AtomicUsize::new(1),
            state: Mutex::new(State::default()),
            viewers: AtomicUsize::new(0),
            history: Mutex::new(VecDeque::new()),
        })
    }

    /// Records the mode new requests are served in (called on every flip).
    pub(crate) fn set_mode(&self, mode: Mode) {
        self.mode.store(mode_code(mode), Ordering::Relaxed);
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            0 => Mode::Sync,
            _ => Mode::Async,
        }
    }

    /// Names this instance on the page (default: none).
    pub(crate) fn set_name(&self, name: &str) {
        *self.name.lock() = name.to_string();
    }

    /// Shows `hubs` together: each one's page streams all of them, each within its share of
    /// the budget.
    pub(crate) fn group(hubs: &[Arc<Hub>]) {
        for h in hubs {
            h.share.store(hubs.len(), Ordering::Relaxed);
            h.state.lock().peers = hubs.iter().filter(|o| o.id != h.id).cloned().collect();
        }
    }

    fn hello(&self, primary: bool) -> Bytes {
        let s = format!(
            "data: {{\"type\":\"hello\",\"h\":{},\"name\":{},\"primary\":{primary},\
             \"mode\":\"{}\",\"token\":{},\"lanes\":[{},{}],\"threads\":[{},{}],\
             \"last\":[{},{}],\"tick\":{},\"t\":{}}}\n\n",
            self.id,
            encode::json_str(&self.name.lock()),
            self.mode(),
            self.token,
            self.recorder.lanes(Group::Sync).len(),
            self.recorder.lanes(Group::Async).len(),
            self.threads[0],
            self.threads[1],
            self.recorder
                .lanes(Group::Sync)
                .last()
                .map_or(1, |l| l.threads),
            self.recorder
                .lanes(Group::Async)
                .last()
                .map_or(1, |l| l.threads),
            TICK.as_micros(),
            recorder::micros(Instant::now()),
        );
        Bytes::from(s)
    }

    /// Opens a stream of this instance and its peers, or `None` at `live.max_viewers`.
    fn open_stream(self: &Arc<Hub>) -> Option<Stream> {
        let max = self.max_viewers;
        self.viewers
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let lost = Arc::new(AtomicU64::new(0));
        let peers = self.state.lock().peers.clone();
        for (i, hub) in std::iter::once(self).chain(peers.iter()).enumerate() {
            let _ = tx.try_send(hub.hello(i == 0));
            hub.subscribe(Sub {
                tx: tx.clone(),
                lost: lost.clone(),
                full_since: None,
            });
        }
        Some(Stream::new(rx, lost, ViewerGuard(self.clone())))
    }

    fn subscribe(self: &Arc<Hub>, sub: Sub) {
        let mut state = self.state.lock();
        state.subs.push(sub);
        self.ensure_running(&mut state);
    }

    fn ensure_running(self: &Arc<Hub>, state: &mut State) {
        if state.running {
            return;
        }
        self.recorder.reset(Instant::now());
        for s in &self.stats {
            s.watch().set_on(true);
        }
        let hub = self.clone();
        match std::thread::Builder::new()
            .name("reclaimd-live".into())
            .spawn(move || hub.run())
        {
            Ok(_) => state.running = true,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the live view thread");
                for s in &self.stats {
                    s.watch().set_on(false);
                }
            }
        }
    }

    /// Keeps recording (and [`Hub::summary`] fed) while the guard lives, without a stream.
    pub(crate) fn watch(self: &Arc<Hub>) -> WatchGuard {
        let mut state = self.state.lock();
        state.internal += 1;
        self.ensure_running(&mut state);
        WatchGuard(self.clone())
    }

    /// The flusher: one frame per tick while anyone watches.
    fn run(self: Arc<Hub>) {
        let mut seq = 0u64;
        let mut second_start = Instant::now();
        let mut second = Second::default();
        let mut reclaimed_at = self.stats.each_ref().map(|s| s.reclaimed());
        let mut next = Instant::now() + TICK;
        loop {
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            {
                let mut state = self.state.lock();
                if state.subs.is_empty() && state.internal == 0 {
                    state.running = false;
                    for s in &self.stats {
                        s.watch().set_on(false);
                    }
                    return;
                }
            }
            let now = Instant::now();
            let lanes = self.recorder.take_lanes(now);
            for g in Group::ALL {
                let acc = &mut second.groups[g as usize];
                for e in lanes[g as usize].iter().flatten() {
                    acc.busy_us += e.c;
                    acc.blocked_us += e.d;
                }
            }
            let queue = self.stats.each_ref().map(|s| s.in_phase(Phase::Queue));
            let in_flight = self
                .stats
                .each_ref()
                .map(|s| Phase::ALL.iter().map(|p| s.in_phase(*p)).sum::<i64>());
            let done_second = (now - second_start >= Duration::from_secs(1)).then(|| {
                let mut s = std::mem::take(&mut second);
                s.elapsed_us = u64::try_from((now - second_start).as_micros()).unwrap_or(0);
                second_start = now;
                for mode in [Mode::Sync, Mode::Async] {
                    let i = mode_code(mode) as usize;
                    // Reclaimed time first: a compute segment ending between the two reads
                    // then counts its compute this second and its reclaimed time the next,
                    // never the other way round.
                    let reclaimed = self.stats[i].reclaimed();
                    let Counts {
                        served,
                        refused,
                        compute_us,
                        latency,
                    } = self.recorder.take_counts(mode);
                    s.modes[i] = ModeSecond {
                        served,
                        refused,
                        compute_us,
                        reclaimed_us: u64::try_from(
                            reclaimed.saturating_sub(reclaimed_at[i]).as_micros(),
                        )
                        .unwrap_or(0),
                        latency,
                        queue: queue[i],
                        in_flight: in_flight[i],
                    };
                    reclaimed_at[i] = reclaimed;
                    s.groups[i].threads = self.threads[i];
                }
                let mut history = self.history.lock();
                if history.len() == HISTORY {
                    history.pop_front();
                }
                history.push_back(s.clone());
                s
            });
            let (events, dropped) = self.recorder.take_events();
            let share = self.share.load(Ordering::Relaxed).max(1);
            let per_second = self.bytes_per_second / share;
            let budget = per_second / 10;
            let gap = self.recorder.sample_gap();
            seq += 1;
            let out = encode::frame(
                encode::FrameIn {
                    hub: self.id,
                    seq,
                    t: recorder::micros(now),
                    mode: self.mode(),
                    queue,
                    in_flight,
                    lanes,
                    events: &events,
                    dropped,
                    gap_us: u64::try_from(gap.as_micros()).unwrap_or(u64::MAX),
                    second: done_second.as_ref(),
                },
                budget,
                recorder::BIN_US,
            );
            // Sampling follows the room request events had.
            let room = budget * 4 / 10;
            if out.left_out > 0 || dropped > 0 || out.req_bytes > room {
                self.recorder.set_sample_gap((gap * 2).min(MAX_GAP));
            } else if out.req_bytes < room / 2 && gap > MIN_GAP {
                self.recorder.set_sample_gap((gap * 4 / 5).max(MIN_GAP));
            }
            let len = out.text.len();
            self.broadcast(Bytes::from(out.text), now);
            // A frame over its share (hundreds of lanes) stretches the tick.
            let needed = Duration::from_secs_f64(len as f64 / per_second.max(1) as f64);
            next = now + TICK.max(needed);
        }
    }

    fn broadcast(&self, frame: Bytes, now: Instant) {
        let mut state = self.state.lock();
        state
            .subs
            .retain_mut(|sub| match sub.tx.try_send(frame.clone()) {
                Ok(()) => {
                    sub.full_since = None;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    sub.lost.fetch_add(1, Ordering::Relaxed);
                    let since = *sub.full_since.get_or_insert(now);
                    now - since < STALL_LIMIT
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
    }

    /// The headline of `mode` over the last `secs` seconds (`None` before the first one).
    pub(crate) fn summary(&self, mode: Mode, secs: usize) -> Option<Headline> {
        let history = self.history.lock();
        let window: Vec<&Second> = history.iter().rev().take(secs.max(1)).collect();
        let last = window.first()?;
        let i = mode_code(mode) as usize;
        let mut latency = vec![0u64; recorder::HIST_BUCKETS];
        let (mut served, mut refused, mut compute, mut reclaimed) = (0, 0, 0, 0);
        let (mut busy, mut blocked, mut elapsed) = (0, 0, 0);
        for s in &window {
            let m = &s.modes[i];
            served += m.served;
            refused += m.refused;
            compute += m.compute_us;
            reclaimed += m.reclaimed_us;
            for (a, b) in latency.iter_mut().zip(&m.latency) {
                *a += b;
            }
            busy += s.groups[i].busy_us;
            blocked += s.groups[i].blocked_us;
            elapsed += s.elapsed_us;
        }
        let secs = elapsed as f64 / 1e6;
        let thread_us = (elapsed as f64 * self.threads[i] as f64).max(1.0);
        Some(Headline {
            served_per_s: served as f64 / secs.max(1e-9),
            refused_per_s: refused as f64 / secs.max(1e-9),
            p99: recorder::quantile(&latency, 0.99).map(Duration::from_micros),
            reclaimed: (compute > 0).then(|| (reclaimed as f64 / compute as f64).min(1.0)),
            blocked: blocked as f64 / thread_us,
            busy: busy as f64 / thread_us,
            queue: last.modes[i].queue,
        })
    }
}

/// Counts a stream among the viewers while it lives.
pub(crate) struct ViewerGuard(Arc<Hub>);

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Keeps a hub recording while it lives; see [`Hub::watch`].
pub(crate) struct WatchGuard(Arc<Hub>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.state.lock().internal -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(max_viewers: usize) -> Arc<Hub> {
        let mut config = Config::default();
        config.live.max_viewers = max_viewers;
        Hub::new(&config, Arc::default(), Arc::default())
    }

    #[test]
    fn a_full_stream_loses_frames_counted_and_is_closed_after_the_stall_limit() {
        let hub = hub(4);
        let (tx, mut rx) = mpsc::channel(2);
        let lost = Arc::new(AtomicU64::new(0));
        hub.state.lock().subs.push(Sub {
            tx,
            lost: lost.clone(),
            full_since: None,
        });
        let t0 = Instant::now();
        for k in 0..5 {
            hub.broadcast(Bytes::from(format!("{k}")), t0 + Duration::from_secs(k));
        }
        assert_eq!(lost.load(Ordering::Relaxed), 3);
        assert_eq!(
            hub.state.lock().subs.len(),
            1,
            "still within the stall limit"
        );
        hub.broadcast(
            Bytes::from("late"),
            t0 + Duration::from_secs(2) + STALL_LIMIT,
        );
        assert!(
            hub.state.lock().subs.is_empty(),
            "closed after the stall limit"
        );
        assert_eq!(rx.try_recv().ok(), Some(Bytes::from("0")));
        assert_eq!(rx.try_recv().ok(), Some(Bytes::from("1")));
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn streams_beyond_max_viewers_are_refused_until_one_closes() {
        let hub = hub(2);
        let a = hub.open_stream().expect("first");
        let b = hub.open_stream().expect("second");
        assert!(hub.open_stream().is_none());
        drop(a);
        let c = hub.open_stream().expect("a slot again");
        drop((b, c));
        assert_eq!(hub.viewers.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn watching_switches_the_hook_on_and_off() {
        let stats: [Arc<ModeStats>; 2] = [Arc::default(), Arc::default()];
        let hub = Hub::new(&Config::default(), stats[0].clone(), stats[1].clone());
        assert!(!format!("{:?}", stats[0].watch()).contains("on: true"));
        let guard = hub.watch();
        assert!(format!("{:?}", stats[1].watch()).contains("on: true"));
        drop(guard);
        crate::live::tests::wait_until(|| !hub.state.lock().running);
        assert!(format!("{:?}", stats[0].watch()).contains("on: false"));
    }

    pub(super) fn wait_until(mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
