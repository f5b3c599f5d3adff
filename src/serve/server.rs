//! Running the daemon: listeners, accept loops, live reload and graceful shutdown.
//!
//! [`run`] is the testable core: it takes already-bound listeners and a shutdown future.
//! [`Server::start`] builds everything (app, HTTP runtime, listeners) on background threads
//! and returns the bound addresses, for `main` and for tests.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http_body_util::Either;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};

use crate::config::{Config, Source};
use crate::process;
use crate::serve::app::App;
use crate::serve::http;

/// Serves the app and admin listeners until `shutdown` completes, then stops accepting,
/// lets in-flight requests finish (up to `server.drain_timeout`) and returns.
pub(crate) async fn run(
    app: Arc<App>,
    app_listener: TcpListener,
    admin_listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let max = app.config.server.max_connections;
    let app_loop = tokio::spawn(accept_loop(
        app.clone(),
        app_listener,
        Kind::App,
        Arc::new(Semaphore::new(max)),
        stop_rx.clone(),
    ));
    let admin_loop = tokio::spawn(accept_loop(
        app.clone(),
        admin_listener,
        Kind::Admin,
        Arc::new(Semaphore::new(ADMIN_CONNECTIONS)),
        stop_rx,
    ));
    shutdown.await;
    tracing::info!("shutting down: no new connections; in-flight requests finish");
    let _ = stop_tx.send(true);
    let drain = app.config.server.drain_timeout;
    let (app_graceful, admin_graceful) = (app_loop.await, admin_loop.await);
    let drained = async {
        if let Ok(g) = app_graceful {
            g.shutdown().await;
        }
    };
    if tokio::time::timeout(drain, drained).await.is_err() {
        tracing::warn!(?drain, "drain timeout passed with requests still in flight");
    }
    app.begin_shutdown();
    if let Ok(g) = admin_graceful {
        let _ = tokio::time::timeout(Duration::from_secs(1), g.shutdown()).await;
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    App,
    Admin,
}

/// Connections the admin listener serves at once.
const ADMIN_CONNECTIONS: usize = 256;

/// How long an admin connection must have waited on its client before it may be closed to
/// make room for a new one.
const EVICT_AFTER: Duration = Duration::from_millis(250);

/// Accepts connections until `stop`, each holding one of `limit`'s permits while it lives.
///
/// With every permit taken, the app listener stops accepting: further connections wait in
/// the accept backlog (`server.max_connections`). The admin listener instead accepts and
/// closes the connection that has waited longest on its client (for a request head or a
/// body, or idle between requests) to make room, so slow or idle clients cannot keep a
/// health check out; it waits only when every connection is inside a request.
async fn accept_loop(
    app: Arc<App>,
    listener: TcpListener,
    kind: Kind,
    limit: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    let header_timeout = app.config.server.header_read_timeout;
    let slots = Arc::new(Slots::default());
    loop {
        let permit = if kind == Kind::App {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p {
                    Ok(p) => Some(p),
                    Err(_) => break,
                },
                _ = stop.changed() => break,
            };
            permit
        } else {
            None
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match permit {
            Some(p) => p,
            None => loop {
                if let Ok(p) = limit.clone().try_acquire_owned() {
                    break p;
                }
                let retry = slots.evict_longest_waiting();
                tokio::select! {
                    p = limit.clone().acquire_owned() => match p {
                        Ok(p) => break p,
                        Err(_) => return graceful,
                    },
                    _ = tokio::time::sleep(retry) => {}
                    _ = stop.changed() => return graceful,
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // Admin connections are tracked for eviction; the app's are not (no cost per request).
        let (slot, evicted) = match kind {
            Kind::Admin => {
                let (slot, evicted) = slots.open();
                (Some(slot), Some(evicted))
            }
            Kind::App => (None, None),
        };
        let app = app.clone();
        let service_slot = slot.clone();
        let service = service_fn(move |mut req| {
            let (app, slot) = (app.clone(), service_slot.clone());
            async move {
                let Some(slot) = slot else {
                    return http::app_service(app, req).await;
                };
                slot.working();
                req.extensions_mut().insert(slot.clone());
                let mut response = http::admin_service(app, req).await;
                // A live view stream is the server's work until it ends (viewers are capped
                // by `live.max_viewers`, below the listener's slots): not evictable until
                // then. A viewer that stopped reading is dropped by the hub after a while,
                // which ends its stream.
                match &mut response {
                    Ok(r) => match r.body_mut() {
                        Either::Right(stream) => {
                            let slot = slot.clone();
                            stream.on_end(move || slot.waiting_on_client());
                        }
                        Either::Left(_) => slot.waiting_on_client(),
                    },
                    Err(never) => match *never {},
                }
                response
            }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Client disconnects and header timeouts end up here; they are not our errors.
            // An evicted connection is dropped, which closes it.
            match evicted {
                Some(evicted) => {
                    tokio::select! {
                        _ = conn => {}
                        _ = evicted => {}
                    }
                }
                None => {
                    let _ = conn.await;
                }
            }
            drop(slot);
            drop(permit);
        });
    }
    graceful
}

/// A listener's open connections, and since when each has been waiting on its client.
#[derive(Default)]
struct Slots {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Open>>,
}

/// One open connection in [`Slots`].
struct Open {
    /// Since when it waits on its client; `None` while the server works on a request of it.
    waiting_since: Option<Instant>,
    /// Closes it; taken once used.
    evict: Option<oneshot::Sender<()>>,
}

impl Slots {
    /// Registers a new connection (waiting for its first request head); the receiver fires
    /// if it is evicted.
    fn open(self: &Arc<Self>) -> (Arc<Slot>, oneshot::Receiver<()>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.open.lock().insert(
            id,
            Open {
                waiting_since: Some(Instant::now()),
                evict: Some(tx),
            },
        );
        (
            Arc::new(Slot {
                id,
                slots: self.clone(),
            }),
            rx,
        )
    }

    /// Closes the connection that has waited longest on its client, if it has waited
    /// [`EVICT_AFTER`]; returns when to look again. A connection just accepted is not
    /// closed: it may be the health check, and a client reconnecting at once would
    /// otherwise turn every accept into an eviction.
    fn evict_longest_waiting(&self) -> Duration {
        let mut open = self.open.lock();
        let longest = open
            .iter()
            .filter(|(_, o)| o.evict.is_some())
            .filter_map(|(id, o)| Some((o.waiting_since?, *id)))
            .min();
        let Some((since, id)) = longest else {
            return EVICT_AFTER;
        };
        let waited = since.elapsed();
        if waited < EVICT_AFTER {
            return EVICT_AFTER - waited;
        }
        if let Some(evict) = open.get_mut(&id).and_then(|o| o.evict.take()) {
            let _ = evict.send(());
        }
        Duration::ZERO
    }

    fn set(&self, id: u64, since: Option<Instant>) {
        if let Some(o) = self.open.lock().get_mut(&id) {
            o.waiting_since = since;
        }
    }
}

/// One connection's entry in [`Slots`]; removed when dropped.
pub(crate) struct Slot {
    id: u64,
    slots: Arc<Slots>,
}

impl Slot {
    /// The server works on a request of this connection: not to be evicted.
    pub(crate) fn working(&self) {
        self.slots.set(self.id, None);
    }

    /// The connection waits on its client again (for a request body, or the next request).
    pub(crate) fn waiting_on_client(&self) {
        self.slots.set(self.id, Some(Instant::now()));
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.open.lock().remove(&self.id);
    }
}

/// Connections the kernel completes and queues before the daemon accepts them. Tokio's
/// `TcpListener::bind` asks for 128: a few hundred slow clients reconnecting at once filled
/// that, and a health check's connection then waited for SYN retransmits (1 s, 3 s).
const BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As std and tokio do on Unix: a restarted daemon can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A daemon running on background threads.
pub struct Server {
    /// Where the app listener is bound.
    pub app_addr: SocketAddr,
    /// Where the admin listener is bound.
    pub admin_addr: SocketAddr,
    /// The running app (mode flips, the task monitor).
    pub app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    reload_stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    /// Builds the app, binds both listeners (port 0 works) and starts serving. Watches the
    /// config file for changes when `source` is given. Blocking; call outside a runtime.
    pub fn start(config: Config, source: Option<Source>) -> Result<Server, String> {
        let http_rt = process::runtime("reclaimd-http", Some(config.server.http_threads))?;
        let (app_listener, admin_listener) = http_rt.block_on(async {
            let app_l = listen(config.server.listen).map_err(|e| {
                format!(
                    "cannot listen on {} (server.listen): {e}",
                    config.server.listen
                )
            })?;
            let admin_l = listen(config.admin.listen).map_err(|e| {
                format!(
                    "cannot listen on {} (admin.listen): {e}",
                    config.admin.listen
                )
            })?;
            Ok::<_, String>((app_l, admin_l))
        })?;
        let app_addr = app_listener.local_addr().map_err(|e| e.to_string())?;
        let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;

        // Stamp the file now, so an edit made any time after start is noticed.
        let watch = source
            .as_ref()
            .map(|s| (s.path.clone(), file_stamp(&s.path)));
        let app = App::new(config, source, Some(http_rt.handle().clone()))?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run_app = app.clone();
        let thread = std::thread::Builder::new()
            .name("reclaimd-main".into())
            .spawn(move || {
                http_rt.block_on(async {
                    #[cfg(unix)]
                    tokio::spawn(reload_on_sighup(run_app.clone()));
                    run(run_app.clone(), app_listener, admin_listener, async {
                        let _ = stop_rx.await;
                    })
                    .await;
                });
                run_app.join_workers(run_app.config.server.drain_timeout);
                http_rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| format!("cannot start the server thread: {e}"))?;

        let reload_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some((path, stamp)) = watch {
            let app = app.clone();
            let stop = reload_stop.clone();
            std::thread::Builder::new()
                .name("reclaimd-config-watch".into())
                .spawn(move || watch_file(&path, stamp, &app, &stop))
                .map_err(|e| format!("cannot start the config watcher: {e}"))?;
        }
        tracing::info!(%app_addr, %admin_addr, mode = %app.mode(), "reclaimd serving");
        Ok(Server {
            app_addr,
            admin_addr,
            app,
            stop: Some(stop_tx),
            thread: Some(thread),
            reload_stop,
        })
    }

    /// Starts a graceful shutdown and waits for it to finish.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    /// Serves until `signal` completes (e.g. [`process::shutdown_signal`]), then shuts down
    /// gracefully and returns.
    pub fn run_until(mut self, signal: impl Future<Output = ()>) {
        match process::runtime("", Some(1)) {
            Ok(rt) => rt.block_on(signal),
            Err(e) => tracing::error!(error = %e, "cannot wait for signals; shutting down"),
        }
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.reload_stop
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

#[cfg(unix)]
async fn reload_on_sighup(app: Arc<App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reloads follow file changes only");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading config");
        let _ = app.reload();
    }
}

/// How often the watcher looks at the config file. A change is applied once the file has
/// stayed the same for one more interval, so a file caught mid-write is not applied.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Polls the config file's stamp. Polling (not inotify) works on bind mounts in containers,
/// on Kubernetes ConfigMap mounts (an atomic symlink swap) and on every platform.
fn watch_file(
    path: &std::path::Path,
    mut applied: Option<FileStamp>,
    app: &App,
    stop: &std::sync::atomic::AtomicBool,
) {
    let mut seen = applied;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(WATCH_INTERVAL);
        let now = file_stamp(path);
        if now != seen {
            // Still changing: wait until it settles.
            seen = now;
            continue;
        }
        if now != applied {
            applied = now;
            tracing::info!(path = %path.display(), "config file changed: reloading");
            let _ = app.reload();
        }
    }
}

/// What the watcher compares: modification time, size and (on Unix) which file it is, after
/// following symlinks. The identity catches a replaced file whose time and size match the
/// old one's, as in a Kubernetes ConfigMap volume, where each update is a new file behind an
/// atomically swapped `..data` symlink and coarse timestamps can coincide.
type FileStamp = (SystemTime, u64, u64, u64);

fn file_stamp(p: &std::path::Path) -> Option<FileStamp> {
    let m = std::fs::metadata(p).ok()?;
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = (0, 0);
    Some((m.modified().ok()?, m.len(), dev, ino))
}
