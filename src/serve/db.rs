//! MongoDB access, written once for both modes.
//!
//! [`Db`] holds either the blocking client (`mongodb::sync`, sync mode) or the async client.
//! Each operation is an `async fn` with one `match`: the sync arm blocks the calling thread
//! inside `poll` (the pool worker, which is what sync mode means), the async arm awaits. Every
//! call goes through [`Db::observe`], the one instrumentation point for DB calls: it moves
//! the request's tracker to `db` and back around a blocking call, opens the client span, and
//! counts errors.
//!
//! An async driver call is never dropped half-way. The driver's pool worker hands out at most
//! one queued checkout per event, and a checkout whose operation future was dropped stays in
//! its wait queue until it reaches the front; after an overload burst of requests aborted at
//! `limits.request_timeout`, thousands of such entries drained at two a second and the daemon
//! answered nothing for minutes. So [`AsyncDb::run`] waits for one of `max_pool_size` permits
//! (cancel-safe) and then runs the call to completion even if the request that started it is
//! aborted.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::IndexModel;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::api::{Mode, Route};
use crate::config::MongoConfig;
use crate::observe::measure::{Phase, Tracker};
use crate::observe::metrics::Metrics;
use crate::observe::spans;
use crate::serve::admission::Stage;
use crate::serve::error::AppError;

pub(crate) const USERS: &str = "users";
pub(crate) const ORDERS: &str = "orders";

/// Both clients, kept connected so a mode flip costs nothing.
#[derive(Clone)]
pub(crate) struct Clients {
    pub(crate) sync: mongodb::sync::Database,
    pub(crate) async_: AsyncDb,
    /// One readiness ping at a time per client: a ping outlives a caller that timed out, and
    /// a stalled MongoDB must not collect one per probe.
    sync_ping: Arc<Semaphore>,
    async_ping: Arc<Semaphore>,
}

/// The async client's database, behind a gate of one permit per pooled connection.
#[derive(Clone)]
pub(crate) struct AsyncDb {
    db: mongodb::Database,
    /// Held by each driver call from before it asks the pool for a connection until the
    /// driver returns: the driver's wait queue holds only live checkouts, and at most
    /// `max_pool_size` calls (in requests or handed off) exist however many were aborted.
    gate: Arc<Semaphore>,
    /// The permits as an admission stage: how long a call holds one.
    pub(crate) gate_stage: Arc<Stage>,
    /// Calls waiting for a permit right now.
    gate_waiting: Arc<AtomicUsize>,
    /// When the gate last moved, a permit taken or given back (nanoseconds since `epoch`):
    /// with every permit held, the time since then is how long the database has not moved.
    /// A permit taken counts too, or a gate filled at once after a quiet spell would look
    /// stuck for the whole spell.
    moved: Arc<AtomicU64>,
    epoch: Instant,
    /// A request passes the gate once per driver call; admission predicts each pass's wait.
    calls_per_route: Arc<CallsPerRoute>,
}

impl AsyncDb {
    pub(crate) fn name(&self) -> &str {
        self.db.name()
    }

    /// Runs one driver call to completion, whatever happens to the caller. Waiting for the
    /// permit is cancel-safe. The call then runs inside the caller's task, so its polls stay
    /// the request's `compute` and its wake-ups the request's own; if the caller is dropped
    /// first (a request aborted at its timeout), the unfinished call is handed to a task of
    /// its own, still holding the permit, in the same span. Its lifetime is then the
    /// driver's: a reply, a network error, or the monitor's heartbeat timeout, which clears
    /// the pool and interrupts in-use connections.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> mongodb::error::Result<T>
    where
        F: FnOnce(mongodb::Database) -> Fut,
        Fut: Future<Output = mongodb::error::Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let permit = {
            let _waiting = Counted::new(&self.gate_waiting);
            self.gate.clone().acquire_owned().await
        }
        .map_err(|_| mongodb::error::Error::custom("driver call gate closed"))?;
        let held_from = Instant::now();
        self.moved
            .fetch_max(nanos_since(self.epoch, held_from), Ordering::Relaxed);
        let call = call(self.db.clone());
        let stage = self.gate_stage.clone();
        let (moved, epoch) = (self.moved.clone(), self.epoch);
        RunToCompletion(Some(Box::pin(
            async move {
                let result = call.await;
                drop(permit);
                let now = Instant::now();
                stage.record(now - held_from);
                moved.fetch_max(nanos_since(epoch, now), Ordering::Relaxed);
                result
            }
            .in_current_span(),
        )))
        .await
    }

    /// With every permit held, how long since the gate last moved (a permit taken or given
    /// back); zero while a permit is free. A stalled database shows here long before any call finishes to tell the
    /// average: the calls it holds may never come back (a lost reply is only noticed when
    /// the driver's monitor times out).
    pub(crate) fn stalled_for(&self) -> Duration {
        if self.gate.available_permits() > 0 {
            return Duration::ZERO;
        }
        let now = nanos_since(self.epoch, Instant::now());
        Duration::from_nanos(now.saturating_sub(self.moved.load(Ordering::Relaxed)))
    }

    /// Calls waiting for a permit right now.
    pub(crate) fn waiting(&self) -> usize {
        self.gate_waiting.load(Ordering::Relaxed)
    }

    /// How many times a request of `route` passes the gate.
    pub(crate) fn calls_per_request(&self, route: Route) -> u32 {
        self.calls_per_route.get(route)
    }

    /// Records the driver calls one finished request of `route` made.
    pub(crate) fn record_calls(&self, route: Route, calls: u32) {
        self.calls_per_route.record(route, calls);
    }
}

/// The most driver calls a request of each route has made, learnt from finished requests
/// rather than written down next to the handlers, so it cannot drift from them.
#[derive(Debug, Default)]
pub(crate) struct CallsPerRoute([AtomicU32; Route::ALL.len()]);

impl CallsPerRoute {
    /// The most calls a request of `route` has made; 1 before one has finished.
    pub(crate) fn get(&self, route: Route) -> u32 {
        self.0[route as usize].load(Ordering::Relaxed).max(1)
    }

    pub(crate) fn record(&self, route: Route, calls: u32) {
        self.0[route as usize].fetch_max(calls, Ordering::Relaxed);
    }
}

fn nanos_since(epoch: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// Counts itself in a counter while it lives (a waiter that may be cancelled).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A future that is never dropped unfinished: dropped early, it runs on as its own task.
struct RunToCompletion<F: Future<Output: Send> + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future<Output: Send> + Send + 'static> Future for RunToCompletion<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(call) = self.0.as_mut() else {
            panic!("RunToCompletion polled after completion");
        };
        let output = std::task::ready!(call.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(output)
    }
}

impl<F: Future<Output: Send> + Send + 'static> Drop for RunToCompletion<F> {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            // Outside a runtime (it is being torn down) there is nothing left to protect.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(call);
            }
        }
    }
}

/// How often the driver's monitor checks the server (its default is 10 s). The monitor is
/// what notices a server that stopped answering: a check that times out (after
/// `mongodb.connect_timeout`) clears the pool and interrupts the calls in flight, whose
/// replies may never come (the driver has no socket timeout). Checking every second, a
/// stall is noticed within about `connect_timeout` + 1 s instead of up to 12 s, and a short
/// stall cannot fall between two checks and leave its calls stuck for good. One `hello` a
/// second per client costs nothing.
const HEARTBEAT_FREQUENCY: Duration = Duration::from_secs(1);

/// Client options from config: pool size and short timeouts so an outage fails fast.
pub(crate) async fn client_options(config: &MongoConfig) -> Result<ClientOptions, String> {
    let mut opts = ClientOptions::parse(&config.uri)
        .await
        // The driver's message can quote the URI; keep it out of logs that may be shared.
        .map_err(|e| {
            format!(
                "invalid mongodb.uri: {}",
                redact(&e.to_string(), &config.uri)
            )
        })?;
    opts.max_pool_size = Some(config.max_pool_size);
    opts.server_selection_timeout = Some(config.server_selection_timeout);
    opts.connect_timeout = Some(config.connect_timeout);
    opts.heartbeat_freq = Some(HEARTBEAT_FREQUENCY);
    opts.app_name = Some("reclaimd".into());
    Ok(opts)
}

fn redact(message: &str, uri: &str) -> String {
    message.replace(uri, "<uri>")
}

impl Clients {
    /// Clients of a server that is never contacted (port 9), for unit tests whose calls
    /// never reach the driver; `handlers` is the async handler runtime.
    #[cfg(test)]
    pub(crate) fn unreachable(handlers: &tokio::runtime::Handle, max_pool_size: u32) -> Clients {
        let opts = ClientOptions::builder()
            .hosts(vec![mongodb::options::ServerAddress::Tcp {
                host: "127.0.0.1".into(),
                port: Some(9),
            }])
            .max_pool_size(max_pool_size)
            .build();
        Clients::new(opts, "reclaimd", handlers).unwrap()
    }

    /// Creates both clients. Call outside any async runtime: the blocking client's
    /// background tasks (monitors, pool workers) then run on the driver's own runtime, and
    /// the async client's on `handlers`, the async handler runtime, so neither mode's driver
    /// work lands on the other mode's threads.
    pub(crate) fn new(
        opts: ClientOptions,
        database: &str,
        handlers: &tokio::runtime::Handle,
    ) -> Result<Clients, String> {
        let sync_client = mongodb::sync::Client::with_options(opts.clone())
            .map_err(|e| format!("cannot create MongoDB client: {}", e.kind))?;
        let pool_size = opts.max_pool_size.unwrap_or(10).max(1) as usize;
        let async_client = {
            let _guard = handlers.enter();
            mongodb::Client::with_options(opts)
                .map_err(|e| format!("cannot create MongoDB client: {}", e.kind))?
        };
        Ok(Clients {
            sync: sync_client.database(database),
            async_: AsyncDb {
                db: async_client.database(database),
                gate: Arc::new(Semaphore::new(pool_size)),
                gate_stage: Arc::new(Stage::new(pool_size)),
                gate_waiting: Arc::new(AtomicUsize::new(0)),
                moved: Arc::new(AtomicU64::new(0)),
                epoch: Instant::now(),
                calls_per_route: Arc::new(CallsPerRoute::default()),
            },
            sync_ping: Arc::new(Semaphore::new(1)),
            async_ping: Arc::new(Semaphore::new(1)),
        })
    }

    /// `ping` through the client that serves `mode`, for readiness: true if it answers
    /// within `timeout`. Run inside a tokio runtime (the sync client's ping blocks a
    /// blocking-pool thread). A ping still outstanding from an earlier probe makes this one
    /// wait for it rather than start another.
    pub(crate) async fn ping(&self, mode: Mode, timeout: Duration) -> bool {
        let ping = async {
            match mode {
                Mode::Async => {
                    let Ok(slot) = self.async_ping.clone().acquire_owned().await else {
                        return false;
                    };
                    self.async_
                        .run(|db| async move {
                            let _slot = slot;
                            db.run_command(doc! {"ping": 1}).await
                        })
                        .await
                        .is_ok()
                }
                Mode::Sync => {
                    let Ok(slot) = self.sync_ping.clone().acquire_owned().await else {
                        return false;
                    };
                    let db = self.sync.clone();
                    let ping = tokio::task::spawn_blocking(move || {
                        let _slot = slot;
                        db.run_command(doc! {"ping": 1}).run()
                    });
                    matches!(ping.await, Ok(Ok(_)))
                }
            }
        };
        tokio::time::timeout(timeout, ping).await.unwrap_or(false)
    }
}

/// The database as seen by one request.
pub(crate) struct Db<'a> {
    kind: Backend<'a>,
    tracker: &'a Tracker,
    metrics: &'a Metrics,
    /// The request's span; DB spans are its children (none when it is `Span::none()`).
    parent: &'a tracing::Span,
    /// Driver calls made so far.
    calls: AtomicU32,
}

/// Which client a request uses: the blocking one (sync mode) or the async one.
#[derive(Clone, Copy)]
pub(crate) enum Backend<'a> {
    Sync(&'a mongodb::sync::Database),
    Async(&'a AsyncDb),
}

/// One order's per-status summary, from the aggregation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatusStats {
    pub(crate) status: String,
    pub(crate) count: i64,
    pub(crate) total_cents: i64,
    pub(crate) avg_cents: f64,
    pub(crate) max_cents: i64,
}

impl<'a> Db<'a> {
    /// The database for one request, through `backend` (which decides the mode).
    pub(crate) fn new(
        backend: Backend<'a>,
        tracker: &'a Tracker,
        metrics: &'a Metrics,
        parent: &'a tracing::Span,
    ) -> Self {
        Db {
            kind: backend,
            tracker,
            metrics,
            parent,
            calls: AtomicU32::new(0),
        }
    }

    /// Driver calls this request has made so far.
    pub(crate) fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The user with this id, if any.
    pub(crate) async fn find_user(&self, id: i64) -> Result<Option<Document>, AppError> {
        // The filter is built when the call starts, not held while waiting for a permit.
        let filter = move || doc! {"_id": id};
        self.observe("find", USERS, async {
            match self.kind {
                Backend::Sync(db) => db.collection::<Document>(USERS).find_one(filter()).run(),
                Backend::Async(db) => {
                    db.run(|db| async move {
                        db.collection::<Document>(USERS).find_one(filter()).await
                    })
                    .await
                }
            }
        })
        .await
    }

    /// Per-status order counts and sums for a user, by aggregation.
    pub(crate) async fn order_stats(&self, user_id: i64) -> Result<Vec<StatusStats>, AppError> {
        let pipeline = [
            doc! {"$match": {"user_id": user_id}},
            doc! {"$group": {
                "_id": "$status",
                "count": {"$sum": 1},
                "total": {"$sum": "$amount_cents"},
                "avg": {"$avg": "$amount_cents"},
                "max": {"$max": "$amount_cents"},
            }},
            doc! {"$sort": {"_id": 1}},
        ];
        let docs = self
            .observe("aggregate", ORDERS, async {
                match self.kind {
                    Backend::Sync(db) => db
                        .collection::<Document>(ORDERS)
                        .aggregate(pipeline)
                        .run()?
                        .collect::<Result<Vec<_>, _>>(),
                    Backend::Async(db) => {
                        db.run(|db| async move {
                            let mut cursor = db
                                .collection::<Document>(ORDERS)
                                .aggregate(pipeline)
                                .await?;
                            let mut docs = Vec::new();
                            while cursor.advance().await? {
                                docs.push(cursor.deserialize_current()?);
                            }
                            Ok(docs)
                        })
                        .await
                    }
                }
            })
            .await?;
        Ok(docs.iter().map(stats_from).collect())
    }

    /// Inserts one order document.
    pub(crate) async fn insert_order(&self, order: Document) -> Result<(), AppError> {
        self.observe("insert", ORDERS, async {
            match self.kind {
                Backend::Sync(db) => db.collection::<Document>(ORDERS).insert_one(order).run(),
                Backend::Async(db) => {
                    db.run(|db| async move {
                        db.collection::<Document>(ORDERS).insert_one(order).await
                    })
                    .await
                }
            }
        })
        .await
        .map(drop)
    }

    /// The one instrumentation point of DB calls. Boxed: a request's future then holds a
    /// pointer while a call runs, instead of room for the largest call any route makes
    /// (what a request waiting at the permit gate or on MongoDB keeps allocated, P4).
    fn observe<'s, T: Send + 's>(
        &'s self,
        operation: &'static str,
        collection: &'static str,
        call: impl std::future::Future<Output = mongodb::error::Result<T>> + Send + 's,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<T, AppError>> + Send + 's>> {
        Box::pin(async move {
            let namespace = match self.kind {
                Backend::Sync(db) => db.name(),
                Backend::Async(db) => db.name(),
            };
            self.calls.fetch_add(1, Ordering::Relaxed);
            let span = spans::db(self.parent, operation, collection, namespace);
            let blocking = matches!(self.kind, Backend::Sync(_));
            if blocking {
                self.tracker.transition_on_thread(Phase::Db, Instant::now());
            }
            let result = call.instrument(span.clone()).await;
            if blocking {
                self.tracker
                    .transition_on_thread(Phase::Compute, Instant::now());
            }
            result.map_err(|e| {
                let (kind, app) = classify(&e);
                spans::record_db_error(&span, kind);
                self.metrics
                    .db_errors_total
                    .with_label_values(&[operation, kind])
                    .inc();
                if app == AppError::Internal {
                    tracing::error!(operation, collection, error = %e.kind, "MongoDB call failed");
                } else {
                    tracing::warn!(operation, collection, kind, "MongoDB unavailable");
                }
                app
            })
        })
    }
}

/// Maps a driver error to the `kind` label and the client's error.
fn classify(e: &mongodb::error::Error) -> (&'static str, AppError) {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. } => ("server_selection", AppError::DbUnavailable),
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => {
            ("network", AppError::DbUnavailable)
        }
        _ if e.contains_label("RetryableWriteError")
            || e.contains_label("TransientTransactionError") =>
        {
            ("network", AppError::DbUnavailable)
        }
        ErrorKind::Command(_) => ("command", AppError::Internal),
        ErrorKind::Write(_) | ErrorKind::InsertMany(_) | ErrorKind::BulkWrite(_) => {
            ("write", AppError::Internal)
        }
        _ => ("other", AppError::Internal),
    }
}

fn as_i64(b: Option<&Bson>) -> i64 {
    match b {
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Double(v)) => *v as i64,
        _ => 0,
    }
}

fn stats_from(d: &Document) -> StatusStats {
    StatusStats {
        status: d.get_str("_id").unwrap_or("unknown").to_string(),
        count: as_i64(d.get("count")),
        total_cents: as_i64(d.get("total")),
        avg_cents: match d.get("avg") {
            Some(Bson::Double(v)) => *v,
            other => as_i64(other) as f64,
        },
        max_cents: as_i64(d.get("max")),
    }
}

/// Creates the indexes the routes need (idempotent).
pub(crate) async fn create_indexes(db: &mongodb::Database) -> mongodb::error::Result<()> {
    db.collection::<Document>(ORDERS)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"user_id": 1})
                .options(
                    IndexOptions::builder()
                        .name("user_id_1".to_string())
                        .build(),
                )
                .build(),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_per_route_keep_the_most_seen_and_start_at_one() {
        let calls = CallsPerRoute::default();
        assert_eq!(calls.get(Route::Report), 1);
        calls.record(Route::Report, 2);
        // A request that failed after its first call does not lower it.
        calls.record(Route::Report, 1);
        calls.record(Route::User, 1);
        assert_eq!(calls.get(Route::Report), 2);
        assert_eq!(calls.get(Route::User), 1);
        assert_eq!(calls.get(Route::Order), 1);
    }

    /// Found in review: the stall clock moved only when a permit was given back, so a gate
    /// filled at once after a quiet spell (a flip to async, a burst after idling) looked
    /// stuck for the whole spell and admission shed every request until a call finished.
    #[test]
    fn a_gate_filled_after_a_quiet_spell_is_not_taken_for_a_stall() {
        let handlers = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The calls below hold their permits without touching the driver.
        let clients = Clients::unreachable(handlers.handle(), 2);
        let gate = clients.async_.clone();
        let quiet = Duration::from_millis(1500);
        std::thread::sleep(quiet);
        handlers.block_on(async {
            let (release, held) = tokio::sync::watch::channel(false);
            let calls: Vec<_> = (0..2)
                .map(|_| {
                    let (gate, mut held) = (gate.clone(), held.clone());
                    tokio::spawn(async move {
                        gate.run(|_db| async move {
                            let _ = held.wait_for(|done| *done).await;
                            Ok(())
                        })
                        .await
                    })
                })
                .collect();
            while gate.gate.available_permits() > 0 {
                tokio::task::yield_now().await;
            }
            let stalled = gate.stalled_for();
            assert!(
                stalled < quiet / 2,
                "every permit taken just now, yet stalled for {stalled:?}"
            );
            release.send(true).unwrap();
            for call in calls {
                call.await.unwrap().unwrap();
            }
        });
        assert_eq!(gate.stalled_for(), Duration::ZERO, "permits free again");
    }
}
