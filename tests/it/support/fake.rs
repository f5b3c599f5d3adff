//! A stand-in for the daemon's app listener: known delays, a `Server-Timing` header on every
//! response, and a record of what it received. `serial` makes it serve one request at a time,
//! like the daemon in sync mode with one worker.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reclaimd::api::Mode;
use reclaimd::server_timing::ServerTiming;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// How long `GET /api/users/{id}` takes.
    pub user_delay: Duration,
    /// How long `GET /api/users/{id}/report` takes.
    pub report_delay: Duration,
    /// Serve one request at a time (the time spent waiting for the turn is `queue`).
    pub serial: bool,
    /// `POST /api/orders` answers 503 instead of 201.
    pub orders_unavailable: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            user_delay: Duration::from_millis(20),
            report_delay: Duration::from_millis(20),
            serial: false,
            orders_unavailable: true,
        }
    }
}

pub struct FakeServer {
    pub addr: SocketAddr,
    /// `"GET /api/users/7"` etc., in arrival order.
    pub received: Arc<Mutex<Vec<String>>>,
    /// The most requests the server ever had in progress at once.
    pub max_concurrent: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The phases the fake reports for a request that waited `queue` and then slept `delay`.
pub fn fake_timing(queue: Duration, delay: Duration, mode: Mode) -> ServerTiming {
    ServerTiming {
        queue,
        compute: Duration::from_micros(500),
        db: delay,
        sched: Duration::ZERO,
        total: queue + delay + Duration::from_micros(500),
        // Serial (sync, one at a time): nothing reclaimed; otherwise half of its compute, as if
        // another request waited on the DB meanwhile.
        reclaimed: Some(match mode {
            Mode::Sync => Duration::ZERO,
            Mode::Async => Duration::from_micros(250),
        }),
        mode: Some(mode),
    }
}

struct Shared {
    opts: FakeOptions,
    received: Arc<Mutex<Vec<String>>>,
    current: AtomicUsize,
    max_concurrent: Arc<AtomicUsize>,
    turn: tokio::sync::Mutex<()>,
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrival = Instant::now();
    shared
        .received
        .lock()
        .unwrap()
        .push(format!("{} {}", req.method(), req.uri().path()));
    let now = shared.current.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_concurrent.fetch_max(now, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // Read the body, as the daemon does, so the connection stays reusable.
    let _ = http_body_util::BodyExt::collect(req.into_body()).await;
    let response = if method == hyper::Method::POST && path == "/api/orders" {
        if shared.opts.orders_unavailable {
            Response::builder()
                .status(503)
                .header("retry-after", "1")
                .body(Full::new(Bytes::from_static(
                    br#"{"error":{"code":"unavailable","message":"try later"}}"#,
                )))
                .unwrap()
        } else {
            Response::builder()
                .status(201)
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap()
        }
    } else {
        let delay = if path.ends_with("/report") {
            shared.opts.report_delay
        } else {
            shared.opts.user_delay
        };
        let (mode, queue) = if shared.opts.serial {
            let _turn = shared.turn.lock().await;
            let queue = arrival.elapsed();
            tokio::time::sleep(delay).await;
            (Mode::Sync, queue)
        } else {
            tokio::time::sleep(delay).await;
            (Mode::Async, Duration::ZERO)
        };
        Response::builder()
            .status(200)
            .header("server-timing", fake_timing(queue, delay, mode).to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(br#"{"ok":true}"#)))
            .unwrap()
    };
    shared.current.fetch_sub(1, Ordering::SeqCst);
    Ok(response)
}

pub async fn start(opts: FakeOptions) -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let max_concurrent = Arc::new(AtomicUsize::new(0));
    let shared = Arc::new(Shared {
        opts,
        received: received.clone(),
        current: AtomicUsize::new(0),
        max_concurrent: max_concurrent.clone(),
        turn: tokio::sync::Mutex::new(()),
    });
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(shared.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    FakeServer {
        addr,
        received,
        max_concurrent,
        task,
    }
}
