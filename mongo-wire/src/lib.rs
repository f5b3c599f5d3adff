//! `mongo-wire`: a MongoDB wire-protocol **test double**, the MongoDB that reclaimd's tests,
//! CI end-to-end run and benchmarks talk to. No MongoDB server can be installed where they run,
//! yet every request must go through the real `mongodb` driver over real TCP, with a latency
//! and faults the test controls. It is not a database: documents live in memory and are lost
//! on exit.
//!
//! What it implements (more than the daemon needs, so that tests and the driver's own
//! housekeeping work unmodified):
//! - Wire: OP_MSG (body plus document sequences; `moreToCome` requests get no reply; the
//!   checksum and `exhaustAllowed` flags are accepted, replies are never streamed) and the
//!   legacy OP_QUERY handshake. The Rust driver (async and sync), pymongo and mongosh connect.
//! - Handshake and monitoring: `hello`/`isMaster` (wire version 21, MongoDB 7.0; sessions;
//!   no `topologyVersion`, so drivers poll), `ping`, `buildInfo`, `endSessions`.
//! - Reads: `find` (filter, sort, skip, limit, projection, batchSize, singleBatch),
//!   `getMore`, `killCursors`, `count`, `aggregate` (`$match $sort $limit $skip $project
//!   $count $group`, see `aggregate`).
//! - Writes: `insert`, `update` (`$set $setOnInsert $unset $inc`, replacement, upsert,
//!   multi), `delete`, with MongoDB's `writeErrors` (duplicate key 11000).
//! - Catalog: `create`, `drop`, `dropDatabase`, `createIndexes` (unique enforced),
//!   `listIndexes`, `listCollections`, `listDatabases`.
//! - Faults and latency: per data command latency plus jitter, `refuse`, `stall`, `drop`.
//!
//! What it does not implement:
//! - Errors that name what is missing (never a silently wrong answer): other commands (code
//!   59 `CommandNotFound`: auth, `findAndModify`, `distinct`, `bulkWrite`, ...), other query
//!   and update operators (`$regex` and regex values, `$push`, ...), other pipeline stages,
//!   accumulators and expressions, pipeline updates, `collation`, `let`, tailable cursors.
//! - Accepted and ignored: write and read concerns, `maxTimeMS`, `hint`, `comment`.
//! - Absent by design: persistence, TLS, compression, authentication, replica sets and
//!   sharding (it is a standalone server: no transactions, no change streams), query planning
//!   (only equality or `$in` on `_id` or on a single-field index narrows a scan).
//!
//! Modules:
//! - [`wire`]: the codec: framing, OP_MSG/OP_QUERY parsing, reply encoding.
//! - `server`: listener, connection tasks, injected latency and faults, counters.
//! - `commands`: command dispatch, reply shapes, cursors.
//! - `query`: BSON ordering, filter matching, sort, projection.
//! - `update`: update operators and upsert seeds.
//! - `aggregate`: the aggregation pipeline and its expressions.
//! - `store`: in-memory collections and their indexes.
//! - `error`: command errors and their `ok: 0` replies.
//! - [`control`]: the text control protocol the binary reads with `--stdin-control`.
//!
//! [`MongoWire::start`] runs the server on its own thread with its own tokio runtime, so it
//! works from plain `#[test]`s and from any tokio test without competing with the caller's
//! runtime; [`Handle`] changes latency and faults at run time and reads the counters.

mod aggregate;
mod commands;
pub mod control;
mod error;
mod query;
mod server;
mod store;
mod update;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

/// Start-up settings. Everything here can also be changed later through [`Handle`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Added to every data command (not to the handshake/monitoring commands).
    pub latency: Duration,
    /// Uniform random extra latency in `[0, jitter]`, per command.
    pub jitter: Duration,
    /// Start with the listener closed (connections refused); see [`Handle::set_refuse`].
    pub refuse: bool,
    /// Start stalled: commands are read and never answered; see [`Handle::set_stall`].
    pub stall: bool,
}

/// A running server. Dropping it stops the server and joins its thread.
pub struct MongoWire {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl MongoWire {
    /// Binds `addr` (e.g. `"127.0.0.1:0"`) and starts serving on a background thread.
    /// Returns once the socket is listening (connections made from now on are served).
    pub fn start(addr: &str, opts: Options) -> std::io::Result<MongoWire> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mongo-wire")
            .enable_all()
            .build()?;
        let shared = Arc::new(server::Shared::new(addr, &opts));
        let (shutdown, shutdown_rx) = watch::channel(false);
        // With `refuse` set the port is only reserved by the first bind; the accept loop
        // re-binds the same port when refusing is switched off.
        let std_listener = if opts.refuse {
            drop(std_listener);
            None
        } else {
            Some(std_listener)
        };
        let loop_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mongo-wire-server".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match std_listener.map(tokio::net::TcpListener::from_std) {
                        Some(Ok(l)) => Some(l),
                        Some(Err(e)) => {
                            eprintln!("mongo-wire: cannot register listener: {e}");
                            return;
                        }
                        None => None,
                    };
                    server::accept_loop(loop_shared, listener, shutdown_rx).await;
                });
                // Ends every connection task (closing its socket) and the timers.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(MongoWire {
            addr,
            shared,
            shutdown,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A connection string the `mongodb` driver accepts.
    pub fn uri(&self) -> String {
        format!("mongodb://{}/?directConnection=true", self.addr)
    }

    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for MongoWire {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Controls and counters of a running server. Cheap to clone; usable from any thread.
/// Fault setters return once the fault is in effect.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<server::Shared>,
}

impl Handle {
    /// Latency added to each data command from now on: `latency` plus uniform `[0, jitter]`.
    pub fn set_latency(&self, latency: Duration, jitter: Duration) {
        self.shared.set_latency(latency, jitter);
    }

    /// `true`: the server goes down: the listener is closed (new connections are refused)
    /// and every open connection is closed. `false`: listening again on the same port.
    pub fn set_refuse(&self, refuse: bool) {
        let _ = self.shared.set_refuse(refuse);
    }

    /// Closes every open connection now (returns once they are closed). The listener stays.
    pub fn drop_connections(&self) {
        let _ = self.shared.drop_connections();
    }

    /// `true`: every command (handshake included) is read and never answered. `false`: new
    /// commands are answered again; the stalled ones never are.
    pub fn set_stall(&self, stall: bool) {
        self.shared.set_stall(stall);
    }

    /// Commands received with this name (e.g. "find", "aggregate", "insert", "hello").
    pub fn command_count(&self, name: &str) -> u64 {
        self.shared.command_count(name)
    }

    /// Every command name received so far with its count, sorted by name.
    pub fn command_counts(&self) -> Vec<(String, u64)> {
        self.shared.command_counts()
    }

    pub fn open_connections(&self) -> usize {
        self.shared.open_connections()
    }

    /// Data commands being processed right now, latency sleep included.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight()
    }

    /// The most data commands ever in flight at once (since the last reset).
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight()
    }

    pub fn reset_max_in_flight(&self) {
        self.shared.reset_max_in_flight();
    }
}
