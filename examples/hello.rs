//! A plain hyper hello-world: the benchmark suite's baseline for the daemon's HTTP overhead
//! (P5) and a cheap target for the load generator's own ceiling (P6).
//!
//! `cargo run --release --example hello -- [ADDR] [THREADS] [DELAY_MS]` (default
//! `127.0.0.1:18081`, 1 runtime thread like the daemon's `async.worker_threads = 1`, no
//! delay; a delay makes requests wait, for a memory baseline). Answers every request with
//! `200 {"hello":"world"}` and a `Server-Timing` header with zero phases; the benchmark
//! also uses it as a sink for OTLP/HTTP span export.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

async fn hello(
    req: Request<hyper::body::Incoming>,
    delay: std::time::Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read (and drop) any body, so a client that posts keeps its connection.
    let _ = http_body_util::BodyExt::collect(req.into_body()).await;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"hello":"world"}"#)));
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "server-timing",
        hyper::header::HeaderValue::from_static(
            "queue;dur=0, compute;dur=0, db;dur=0, sched;dur=0, total;dur=0",
        ),
    );
    Ok(response)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18081".to_string());
    let threads: usize = match args.next() {
        Some(t) => t
            .parse()
            .map_err(|_| format!("THREADS must be a number, not {t:?}"))?,
        None => 1,
    };
    let delay = match args.next() {
        Some(ms) => std::time::Duration::from_millis(
            ms.parse()
                .map_err(|_| format!("DELAY_MS must be a number, not {ms:?}"))?,
        ),
        None => std::time::Duration::ZERO,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("hello listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    eprintln!("hello: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(|req| hello(req, delay)))
                    .await;
            });
        }
    })
}
