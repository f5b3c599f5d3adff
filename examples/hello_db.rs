//! The daemon's true floor for the quick route (benchmark P5): plain hyper plus the async
//! `mongodb` driver doing the same `find_one` by `_id` per request, with no instrumentation,
//! no admission control, no measurement and no spans.
//!
//! ```sh
//! cargo run --release --example hello_db -- MONGODB_URI [ADDR] [THREADS]
//! ```
//!
//! `GET /api/users/{id}` answers `200 {"user": {...}}` (the same fields the daemon returns)
//! or 404; any other path 404. Defaults: `127.0.0.1:18082`, 2 runtime threads (the daemon's
//! default `server.http_threads = 1` plus `async.worker_threads = 1`), pool size 200 (the
//! daemon's `mongodb.max_pool_size`), database `reclaimd`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mongodb::bson::{doc, Bson, Document};
use serde_json::{json, Value};
use tokio::net::TcpListener;

type Users = mongodb::Collection<Document>;

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// The fields the daemon's `GET /api/users/{id}` returns.
fn user_json(d: &Document) -> Value {
    let id = match d.get("_id") {
        Some(Bson::Int64(v)) => json!(v),
        Some(Bson::Int32(v)) => json!(v),
        Some(other) => json!(other.to_string()),
        None => Value::Null,
    };
    json!({
        "id": id,
        "name": d.get_str("name").unwrap_or_default(),
        "email": d.get_str("email").unwrap_or_default(),
        "tier": d.get_str("tier").unwrap_or_default(),
        "created_at": d.get_datetime("created_at").ok()
            .and_then(|t| t.try_to_rfc3339_string().ok()),
    })
}

async fn user(req: Request<hyper::body::Incoming>, users: Users) -> Response<Full<Bytes>> {
    let id = req
        .uri()
        .path()
        .strip_prefix("/api/users/")
        .and_then(|id| id.parse::<i64>().ok());
    let Some(id) = id else {
        return respond(StatusCode::NOT_FOUND, &json!({"error": "not_found"}));
    };
    match users.find_one(doc! {"_id": id}).await {
        Ok(Some(d)) => respond(StatusCode::OK, &json!({"user": user_json(&d)})),
        Ok(None) => respond(StatusCode::NOT_FOUND, &json!({"error": "not_found"})),
        Err(_) => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "db_unavailable"}),
        ),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let uri = args
        .next()
        .ok_or("usage: hello_db MONGODB_URI [ADDR] [THREADS]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18082".to_string());
    let threads: usize = match args.next() {
        Some(t) => t
            .parse()
            .map_err(|_| format!("THREADS must be a number, not {t:?}"))?,
        None => 2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut opts = mongodb::options::ClientOptions::parse(&uri).await?;
        opts.max_pool_size = Some(200);
        let users: Users = mongodb::Client::with_options(opts)?
            .database("reclaimd")
            .collection("users");
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("hello_db listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    eprintln!("hello_db: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let users = users.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let users = users.clone();
                    async move { Ok::<_, Infallible>(user(req, users).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
