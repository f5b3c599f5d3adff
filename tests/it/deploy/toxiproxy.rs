//! toxiproxy/keep-latency.sh, compose's `toxiproxy-latency` service, against a stand-in for
//! toxiproxy's API: the latency comes back after toxiproxy restarts, a value set live survives
//! the keeper's own restart, and a recreated keeper (new .env values) applies them. Runs the
//! real script with `sh` and `curl`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value as Json;

use super::repo;
use crate::support::eventually;
use crate::support::temp::TempPath;

/// The `latency` toxic of the `mongo` proxy, as toxiproxy's API serves it; `None` after a
/// toxiproxy restart.
type Toxic = Arc<Mutex<Option<Json>>>;

/// The four calls the scripts make, answered as toxiproxy 2.12 does.
fn fake_toxiproxy() -> (SocketAddr, Toxic) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let toxic: Toxic = Arc::default();
    let state = toxic.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = header.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let body: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
            let mut toxic = state.lock().unwrap();
            let (status, reply) =
                match request_line.split_whitespace().take(2).collect::<Vec<_>>()[..] {
                    ["GET", "/proxies/mongo/toxics/latency"] => match &*toxic {
                        Some(t) => (200, t.to_string()),
                        None => (404, r#"{"error":"toxic not found"}"#.into()),
                    },
                    ["DELETE", "/proxies/mongo/toxics/latency"] => match toxic.take() {
                        Some(_) => (204, String::new()),
                        None => (404, r#"{"error":"toxic not found"}"#.into()),
                    },
                    ["POST", "/proxies/mongo/toxics"] if toxic.is_none() => {
                        *toxic = Some(body);
                        (200, toxic.as_ref().unwrap().to_string())
                    }
                    ["POST", "/proxies/mongo/toxics"] => {
                        (409, r#"{"error":"toxic already exists"}"#.into())
                    }
                    _ => (404, "{}".into()),
                };
            drop(toxic);
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (addr, toxic)
}

/// The keeper script, killed on drop so a failed test leaves no loop behind.
struct Keeper(Child);

impl Drop for Keeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keeper(api: SocketAddr, state: &Path, latency_ms: u32) -> Keeper {
    let child = Command::new("sh")
        .arg(repo().join("toxiproxy/keep-latency.sh"))
        .env("TOXIPROXY_API", format!("http://{api}"))
        .env("LATENCY_STATE_DIR", state)
        .env("MONGO_LATENCY_MS", latency_ms.to_string())
        .env("MONGO_JITTER_MS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sh");
    Keeper(child)
}

fn latency(toxic: &Toxic) -> Option<i64> {
    toxic.lock().unwrap().as_ref()?["attributes"]["latency"].as_i64()
}

/// SIGTERM, as `docker stop` sends it.
fn stop(mut keeper: Keeper) {
    let _ = Command::new("kill").arg(keeper.0.id().to_string()).status();
    let _ = keeper.0.wait();
}

#[test]
fn the_latency_survives_toxiproxy_restarts_and_a_live_value_survives_up() {
    let (api, toxic) = fake_toxiproxy();
    let state = TempPath::new("keeper-state");
    std::fs::create_dir_all(state.path()).unwrap();
    let wait_for = |what: &str, ms: i64| {
        eventually(what, Duration::from_secs(20), || {
            (latency(&toxic) == Some(ms))
                .then_some(())
                .ok_or(latency(&toxic))
        })
    };

    // First start: .env's value, and healthy once it is in place.
    let first = keeper(api, state.path(), 20);
    wait_for("the keeper applies MONGO_LATENCY_MS", 20);
    eventually("the keeper reports ready", Duration::from_secs(20), || {
        state.path().join("latency-ready").exists()
    });
    assert_eq!(
        toxic.lock().unwrap().as_ref().unwrap()["stream"],
        "downstream"
    );

    // toxiproxy restarts and forgets its toxics: the keeper puts .env's value back.
    *toxic.lock().unwrap() = None;
    wait_for(
        "the keeper re-applies the latency after a toxiproxy restart",
        20,
    );

    // A value set live stays, also when the keeper's container restarts (same state).
    toxic.lock().unwrap().as_mut().unwrap()["attributes"]["latency"] = 70.into();
    stop(first);
    let restarted = keeper(api, state.path(), 20);
    eventually(
        "the restarted keeper reports ready",
        Duration::from_secs(20),
        || state.path().join("latency-ready").exists(),
    );
    // Nothing to wait for but time: the keeper looks every second.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(latency(&toxic), Some(70), "a live latency is left alone");
    stop(restarted);

    // Recreated (new .env values: compose makes a new container, with fresh state).
    let fresh = TempPath::new("keeper-state-new");
    std::fs::create_dir_all(fresh.path()).unwrap();
    let recreated = keeper(api, fresh.path(), 35);
    wait_for("a recreated keeper applies the new .env value", 35);
    stop(recreated);
}
