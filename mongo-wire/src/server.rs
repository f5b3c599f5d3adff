//! The server: the accept loop (which closes and re-opens its listener for the `refuse`
//! fault), one task per connection (read a frame, run the command, write the reply), injected
//! latency, the `stall` and `drop` faults, and the counters [`crate::Handle`] reads.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::commands::{self, Engine};
use crate::wire;

/// Distinct command names counted before the rest are lumped under `<other>`: the names
/// come from clients and must not grow memory without bound.
const MAX_COUNTED_NAMES: usize = 1024;
/// How long the synchronous handle calls wait for the server to act on a fault.
const FAULT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by the accept loop, every connection task and every [`crate::Handle`].
pub(crate) struct Shared {
    pub engine: Engine,
    pub addr: SocketAddr,
    latency_ns: AtomicU64,
    jitter_ns: AtomicU64,
    rng: AtomicU64,
    stall: AtomicBool,
    /// Desired listener state; the accept loop follows it and reports in `listening`.
    refuse: AtomicBool,
    control: Notify,
    listening: Mutex<bool>,
    listening_cv: Condvar,
    /// Bumped to close every open connection; each connection task watches it.
    drop_tx: watch::Sender<u64>,
    /// Ids of open connections, so `drop_connections` can wait for the old ones to close.
    conns: Mutex<BTreeSet<u64>>,
    conns_cv: Condvar,
    next_conn: AtomicU64,
    next_reply_id: AtomicI32,
    counts: RwLock<HashMap<String, AtomicU64>>,
    /// Data commands being processed now (latency sleep included), and its high-water mark.
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(addr: SocketAddr, opts: &crate::Options) -> Shared {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x1234_5678);
        Shared {
            engine: Engine::default(),
            addr,
            latency_ns: AtomicU64::new(nanos(opts.latency)),
            jitter_ns: AtomicU64::new(nanos(opts.jitter)),
            rng: AtomicU64::new(seed),
            stall: AtomicBool::new(opts.stall),
            refuse: AtomicBool::new(opts.refuse),
            control: Notify::new(),
            listening: Mutex::new(!opts.refuse),
            listening_cv: Condvar::new(),
            drop_tx: watch::channel(0).0,
            conns: Mutex::new(BTreeSet::new()),
            conns_cv: Condvar::new(),
            next_conn: AtomicU64::new(1),
            next_reply_id: AtomicI32::new(1),
            counts: RwLock::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    pub(crate) fn set_latency(&self, latency: Duration, jitter: Duration) {
        self.latency_ns.store(nanos(latency), Ordering::Relaxed);
        self.jitter_ns.store(nanos(jitter), Ordering::Relaxed);
    }

    /// Latency for the next data command: fixed part plus uniform jitter in [0, jitter].
    fn next_latency(&self) -> Duration {
        let base = self.latency_ns.load(Ordering::Relaxed);
        let jitter = self.jitter_ns.load(Ordering::Relaxed);
        let extra = if jitter == 0 {
            0
        } else {
            // splitmix64 over a shared counter: cheap, lock-free, good enough for jitter.
            let mut z = self
                .rng
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            z % (jitter + 1)
        };
        Duration::from_nanos(base.saturating_add(extra))
    }

    pub(crate) fn set_stall(&self, stall: bool) {
        self.stall.store(stall, Ordering::SeqCst);
    }

    /// Returns whether the fault took effect within [`FAULT_ACK_TIMEOUT`] (re-binding the port
    /// can fail while another process holds it; the accept loop keeps trying).
    pub(crate) fn set_refuse(&self, refuse: bool) -> bool {
        self.refuse.store(refuse, Ordering::SeqCst);
        self.control.notify_one();
        let guard = lock(&self.listening);
        let (listening, _) = self
            .listening_cv
            .wait_timeout_while(guard, FAULT_ACK_TIMEOUT, |l| *l == refuse)
            .unwrap_or_else(|p| p.into_inner());
        let in_effect = *listening != refuse;
        drop(listening);
        if refuse {
            // A server that is down has no open connections either.
            return self.drop_connections() && in_effect;
        }
        in_effect
    }

    fn report_listening(&self, listening: bool) {
        *lock(&self.listening) = listening;
        self.listening_cv.notify_all();
    }

    /// Returns whether every connection open at the call closed within [`FAULT_ACK_TIMEOUT`].
    pub(crate) fn drop_connections(&self) -> bool {
        let newest = self.next_conn.load(Ordering::SeqCst);
        self.drop_tx.send_modify(|epoch| *epoch += 1);
        let guard = lock(&self.conns);
        let (open, timeout) = self
            .conns_cv
            .wait_timeout_while(guard, FAULT_ACK_TIMEOUT, |open| {
                open.first().is_some_and(|oldest| *oldest < newest)
            })
            .unwrap_or_else(|p| p.into_inner());
        drop(open);
        !timeout.timed_out()
    }

    pub(crate) fn open_connections(&self) -> usize {
        lock(&self.conns).len()
    }

    fn count(&self, name: &str) {
        {
            let counts = self.counts.read().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = counts.get(name) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut counts = self.counts.write().unwrap_or_else(|p| p.into_inner());
        let key = if counts.len() >= MAX_COUNTED_NAMES {
            "<other>"
        } else {
            name
        };
        counts
            .entry(key.to_string())
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn command_count(&self, name: &str) -> u64 {
        let counts = self.counts.read().unwrap_or_else(|p| p.into_inner());
        counts.get(name).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn command_counts(&self) -> Vec<(String, u64)> {
        let counts = self.counts.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(String, u64)> = counts
            .iter()
            .map(|(k, c)| (k.clone(), c.load(Ordering::Relaxed)))
            .collect();
        v.sort();
        v
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn reset_max_in_flight(&self) {
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Counts a data command as in flight for as long as it lives.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Removes a connection from the open set when its task ends, however it ends.
struct ConnGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.id);
        self.shared.conns_cv.notify_all();
    }
}

/// Accepts connections until `shutdown` fires, closing and re-binding the listener as the
/// `refuse` fault asks.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    mut listener: Option<TcpListener>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let refuse = shared.refuse.load(Ordering::SeqCst);
        if refuse && listener.is_some() {
            listener = None;
            shared.report_listening(false);
        } else if !refuse && listener.is_none() {
            match TcpListener::bind(shared.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    shared.report_listening(true);
                }
                Err(e) => {
                    eprintln!("mongo-wire: re-binding {} failed: {e}", shared.addr);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            }
        }
        match &listener {
            Some(l) => tokio::select! {
                accepted = l.accept() => match accepted {
                    Ok((sock, _)) => {
                        backoff = Duration::from_millis(5);
                        spawn_connection(&shared, sock);
                    }
                    Err(_) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                },
                _ = shared.control.notified() => {}
                _ = shutdown.changed() => return,
            },
            None => tokio::select! {
                _ = shared.control.notified() => {}
                _ = shutdown.changed() => return,
            },
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, sock: TcpStream) {
    // Subscribe before registering, so a drop signalled after registration is always seen.
    let drop_rx = shared.drop_tx.subscribe();
    let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
    lock(&shared.conns).insert(id);
    let guard = ConnGuard {
        shared: shared.clone(),
        id,
    };
    tokio::spawn(serve_connection(guard, sock, drop_rx));
}

/// One connection: read a message, answer it, repeat. Any framing error closes this
/// connection only. The driver never pipelines, so commands on one connection run in order.
async fn serve_connection(guard: ConnGuard, sock: TcpStream, mut drop_rx: watch::Receiver<u64>) {
    let shared = guard.shared.clone();
    let conn_id = guard.id as i64;
    let _ = sock.set_nodelay(true);
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    loop {
        let frame = tokio::select! {
            f = wire::read_frame(&mut rd) => f,
            _ = drop_rx.changed() => return,
        };
        let Ok(frame) = frame else { return };
        let req = match wire::parse_message(&frame) {
            Ok(r) => r,
            Err(_) => return,
        };
        drop(frame);
        let name = req.command_name().to_string();
        shared.count(&name);
        if shared.stall.load(Ordering::SeqCst) {
            // Stalled: the command is read and never answered. Keep reading so a client
            // that gives up and closes is noticed.
            continue;
        }
        let reply = tokio::select! {
            r = execute(&shared, &req, &name, conn_id) => r,
            _ = drop_rx.changed() => return,
        };
        if req.more_to_come {
            continue;
        }
        let id = shared.next_reply_id.fetch_add(1, Ordering::Relaxed);
        let bytes = wire::encode_reply(req.framing, id, req.request_id, &reply);
        let written = tokio::select! {
            w = wr.write_all(&bytes) => w,
            _ = drop_rx.changed() => return,
        };
        if written.is_err() {
            return;
        }
    }
}

async fn execute(shared: &Shared, req: &wire::Request, name: &str, conn_id: i64) -> bson::Document {
    if commands::is_handshake(name) {
        return shared.engine.run(&req.db, &req.body, conn_id);
    }
    let _in_flight = InFlight::enter(shared);
    let latency = shared.next_latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    shared.engine.run(&req.db, &req.body, conn_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_fixed_plus_bounded_jitter() {
        let addr: SocketAddr = ([127, 0, 0, 1], 0).into();
        let shared = Shared::new(addr, &crate::Options::default());
        assert_eq!(shared.next_latency(), Duration::ZERO);
        let (base, jitter) = (Duration::from_millis(20), Duration::from_millis(5));
        shared.set_latency(base, jitter);
        let samples: Vec<Duration> = (0..1000).map(|_| shared.next_latency()).collect();
        assert!(samples.iter().all(|d| *d >= base && *d <= base + jitter));
        let distinct: BTreeSet<Duration> = samples.into_iter().collect();
        assert!(distinct.len() > 100, "jitter varies: {}", distinct.len());
    }
}
