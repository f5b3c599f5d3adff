//! Injected latency and faults, as the real driver sees them, and robustness against
//! malformed input. These run against the double only (a real MongoDB cannot be told to
//! fail), except the unknown-command check which lives in the driver tests.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mongo_wire::{wire, Options};
use mongodb::bson::{doc, Document};
use mongodb::error::ErrorKind;
use mongodb::Client;

async fn client(uri: &str, opts: &str) -> Client {
    Client::with_uri_str(common::with_options(uri, opts))
        .await
        .expect("client from uri")
}

async fn ping(c: &Client) -> mongodb::error::Result<Document> {
    c.database("admin").run_command(doc! { "ping": 1 }).await
}

/// Polls `cond` every 10 ms, up to 10 s: waits for an event, asserts nothing about time.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_never_serialises_500_concurrent_commands() {
    const N: usize = 500;
    let server = common::double(Options::default());
    let h = server.handle();
    let c = client(&server.uri(), "maxPoolSize=600&maxConnecting=64").await;
    let coll = c.database("lat").collection::<Document>("users");
    coll.insert_one(doc! { "_id": 1, "name": "a" })
        .await
        .expect("seed");

    let round = |latency: Duration| {
        let coll = coll.clone();
        async move {
            let start = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..N {
                let coll = coll.clone();
                tasks.spawn(async move { coll.find_one(doc! { "_id": 1 }).await });
            }
            while let Some(r) = tasks.join_next().await {
                let found = r.expect("task").expect("find_one");
                assert!(found.is_some());
            }
            println!(
                "{N} concurrent find_one with {latency:?} latency: {:?}",
                start.elapsed()
            );
        }
    };
    // Warm-up with a long latency so the pool grows to N connections. The long latency also
    // leaves ample margin to issue all N commands before the first one completes.
    let long = Duration::from_secs(1);
    h.set_latency(long, Duration::ZERO);
    round(long).await;
    // Every command sleeps concurrently: all N are in flight at the same moment.
    h.reset_max_in_flight();
    round(long).await;
    assert_eq!(h.max_in_flight(), N, "latency serialised commands");
    assert_eq!(h.in_flight(), 0);
    // The figure (50 ms); printed, not asserted (timing is noisy here).
    h.set_latency(Duration::from_millis(50), Duration::ZERO);
    h.reset_max_in_flight();
    round(Duration::from_millis(50)).await;
    println!("max in flight at 50 ms: {}", h.max_in_flight());
    // The handshake/monitoring commands are not data commands.
    assert!(h.command_count("find") >= 3 * N as u64);
}

#[tokio::test]
async fn latency_applies_to_data_commands_not_to_ping() {
    let server = common::double(Options {
        latency: Duration::from_secs(30),
        ..Options::default()
    });
    let h = server.handle();
    let c = client(&server.uri(), "").await;
    // ping answers although data commands would take 30 s.
    ping(&c).await.expect("ping is fast");
    let coll = c.database("lat").collection::<Document>("users");
    let task = tokio::spawn(async move { coll.find_one(doc! {}).await });
    wait_for("the find to be in flight", || h.in_flight() == 1).await;
    ping(&c)
        .await
        .expect("ping still answers while a find sleeps");
    assert_eq!(h.in_flight(), 1, "ping is not a data command");
    task.abort();
}

#[tokio::test]
async fn refuse_gives_server_selection_timeout_and_recovers_on_the_same_port() {
    let server = common::double(Options::default());
    let h = server.handle();
    let opts = "serverSelectionTimeoutMS=500&heartbeatFrequencyMS=500";
    let c = client(&server.uri(), opts).await;
    ping(&c).await.expect("up");

    h.set_refuse(true);
    assert_eq!(h.open_connections(), 0, "a down server has no connections");
    assert!(
        TcpStream::connect(server.addr()).is_err(),
        "listener is closed"
    );
    let fresh = client(&server.uri(), opts).await;
    let err = ping(&fresh).await.expect_err("server is down");
    assert!(
        matches!(*err.kind, ErrorKind::ServerSelection { .. }),
        "expected server selection timeout, got {err:?}"
    );
    // The existing client fails too (first perhaps on its closed pooled connection).
    let mut last = ping(&c).await.expect_err("down for the old client");
    if !matches!(*last.kind, ErrorKind::ServerSelection { .. }) {
        last = ping(&c).await.expect_err("still down");
    }
    assert!(
        matches!(*last.kind, ErrorKind::ServerSelection { .. }),
        "{last:?}"
    );

    h.set_refuse(false);
    TcpStream::connect(server.addr()).expect("listening again on the same port");
    // Each client's monitor notices on its next check; retry rather than race it.
    for (name, client) in [("fresh", &fresh), ("old", &c)] {
        let mut ok = false;
        for _ in 0..20 {
            if ping(client).await.is_ok() {
                ok = true;
                break;
            }
        }
        assert!(ok, "{name} client recovers");
    }
}

#[tokio::test]
async fn start_refusing_then_listen() {
    let server = common::double(Options {
        refuse: true,
        ..Options::default()
    });
    assert!(
        TcpStream::connect(server.addr()).is_err(),
        "refusing at start"
    );
    server.handle().set_refuse(false);
    let c = client(&server.uri(), "serverSelectionTimeoutMS=2000").await;
    ping(&c).await.expect("up after refuse is cleared");
}

#[tokio::test]
async fn drop_connections_closes_an_in_flight_command() {
    let server = common::double(Options::default());
    let h = server.handle();
    let c = client(&server.uri(), "retryReads=false&retryWrites=false").await;
    let coll = c.database("drop").collection::<Document>("users");
    coll.insert_one(doc! { "_id": 1 }).await.expect("seed");
    assert!(h.open_connections() >= 1);

    h.set_latency(Duration::from_secs(30), Duration::ZERO);
    let task = tokio::spawn({
        let coll = coll.clone();
        async move { coll.find_one(doc! { "_id": 1 }).await }
    });
    wait_for("the find to be in flight", || h.in_flight() == 1).await;
    h.drop_connections();
    let err = task
        .await
        .expect("task")
        .expect_err("connection was closed");
    match *err.kind {
        ErrorKind::Io(ref io) => assert!(
            matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ),
            "{io:?}"
        ),
        ref other => panic!("expected a closed connection, got {other:?}"),
    }
    assert_eq!(h.in_flight(), 0, "dropped command left the in-flight count");

    h.set_latency(Duration::ZERO, Duration::ZERO);
    let found = coll.find_one(doc! { "_id": 1 }).await.expect("reconnects");
    assert!(found.is_some());
}

#[tokio::test]
async fn stall_times_the_operation_out_and_clears() {
    let server = common::double(Options::default());
    let h = server.handle();
    let c = client(
        &server.uri(),
        "retryReads=false&connectTimeoutMS=300&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=1000",
    )
    .await;
    let coll = c.database("stall").collection::<Document>("users");
    coll.insert_one(doc! { "_id": 1 }).await.expect("seed");

    h.set_stall(true);
    let before = h.command_count("find");
    let err = coll
        .find_one(doc! { "_id": 1 })
        .await
        .expect_err("a stalled server never answers");
    println!("stalled find failed with: {err}");
    // The Rust driver has no socket timeout: its monitor's heartbeat (also stalled) times
    // out after connectTimeoutMS and interrupts the operations in use.
    let timed_out = match *err.kind {
        ErrorKind::ConnectionPoolCleared { ref message, .. } => message.contains("timeout"),
        ErrorKind::Io(ref io) => io.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    };
    assert!(timed_out, "expected an operation timeout, got {err:?}");
    assert!(h.command_count("find") > before, "the command was read");

    h.set_stall(false);
    let mut ok = false;
    for _ in 0..20 {
        if coll.find_one(doc! { "_id": 1 }).await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "answers again after the stall");
}

fn raw_ping(addr: std::net::SocketAddr) -> Document {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let msg = wire::encode_op_msg(1, 0, &doc! { "ping": 1, "$db": "admin" }, &[]);
    s.write_all(&msg).expect("write");
    read_reply(&mut s).expect("reply")
}

fn read_reply(s: &mut TcpStream) -> std::io::Result<Document> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let n = i32::from_le_bytes(len) as usize;
    let mut rest = vec![0u8; n - 4];
    s.read_exact(&mut rest)?;
    let op = i32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
    let body = if op == wire::OP_MSG {
        &rest[17..]
    } else {
        &rest[32..]
    };
    Ok(Document::from_reader(body).expect("reply document"))
}

/// The peer closed the connection: a read returns EOF or an error, never a reply.
fn assert_closed(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e)
            if e.kind() != std::io::ErrorKind::WouldBlock
                && e.kind() != std::io::ErrorKind::TimedOut => {}
        other => panic!("connection should be closed, got {other:?}"),
    }
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let server = common::double(Options::default());
    let addr = server.addr();
    let h = server.handle();
    // A healthy connection stays open throughout.
    let mut healthy = TcpStream::connect(addr).expect("connect");
    let ping_msg = wire::encode_op_msg(1, 0, &doc! { "ping": 1, "$db": "admin" }, &[]);
    healthy.write_all(&ping_msg).expect("write");
    read_reply(&mut healthy).expect("ping");

    let good = wire::encode_op_msg(2, 0, &doc! { "ping": 1, "$db": "admin" }, &[]);
    let mut bad_inputs: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        // Oversized length prefix.
        i32::MAX.to_le_bytes().to_vec(),
        // Negative and tiny lengths.
        (-5i32).to_le_bytes().to_vec(),
        3i32.to_le_bytes().to_vec(),
    ];
    // Garbage where the body should be.
    let mut garbled = good.clone();
    for b in garbled[21..].iter_mut() {
        *b = 0xff;
    }
    bad_inputs.push(garbled);
    // Unknown opcode.
    let mut op = good.clone();
    op[12..16].copy_from_slice(&9999i32.to_le_bytes());
    bad_inputs.push(op);
    // Missing $db.
    bad_inputs.push(wire::encode_op_msg(3, 0, &doc! { "ping": 1 }, &[]));

    for bad in &bad_inputs {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(bad).expect("write");
        assert_closed(s);
    }
    // Truncated: announce 100 bytes, send 20, close the write side.
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut trunc = good.clone();
    trunc[..4].copy_from_slice(&100i32.to_le_bytes());
    s.write_all(&trunc[..20]).expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert_closed(s);

    healthy.write_all(&ping_msg).expect("write");
    let reply = read_reply(&mut healthy).expect("healthy connection still served");
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0));
    assert_eq!(
        raw_ping(addr).get_f64("ok").ok(),
        Some(1.0),
        "new connections served"
    );
    assert!(h.open_connections() >= 1);
}

#[test]
fn legacy_op_query_handshake_is_answered() {
    let server = common::double(Options::default());
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    let mut msg = Vec::new();
    msg.extend_from_slice(&[0; 4]);
    msg.extend_from_slice(&42i32.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&wire::OP_QUERY.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(b"admin.$cmd\0");
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&(-1i32).to_le_bytes());
    doc! { "isMaster": 1, "helloOk": true, "client": { "driver": { "name": "test" } } }
        .to_writer(&mut msg)
        .expect("encode");
    let len = msg.len() as i32;
    msg[..4].copy_from_slice(&len.to_le_bytes());
    s.write_all(&msg).expect("write");
    let reply = read_reply(&mut s).expect("OP_REPLY");
    assert_eq!(reply.get_bool("ismaster").ok(), Some(true));
    assert_eq!(reply.get_bool("helloOk").ok(), Some(true));
    assert!(reply.get_i32("maxWireVersion").is_ok_and(|v| v >= 17));
}

#[test]
fn checksum_flag_is_tolerated() {
    let server = common::double(Options::default());
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    let msg = wire::encode_op_msg(5, 1, &doc! { "ping": 1, "$db": "admin" }, &[]);
    s.write_all(&msg).expect("write");
    let reply = read_reply(&mut s).expect("reply");
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0));
}

#[test]
fn dropping_the_server_stops_it() {
    let server = common::double(Options::default());
    let addr = server.addr();
    let s = TcpStream::connect(addr).expect("connect");
    drop(server);
    assert_closed(s);
    assert!(TcpStream::connect(addr).is_err(), "listener closed on drop");
}

#[test]
fn sync_client_sees_faults_too() {
    let server = common::double(Options::default());
    let h = server.handle();
    let uri = common::with_options(
        &server.uri(),
        "serverSelectionTimeoutMS=500&heartbeatFrequencyMS=500&retryReads=false",
    );
    let c = mongodb::sync::Client::with_uri_str(&uri).expect("sync client");
    let coll = c.database("sync_faults").collection::<Document>("users");
    coll.insert_one(doc! { "_id": 1 }).run().expect("seed");

    // Dropped while in flight: a closed connection.
    h.set_latency(Duration::from_secs(30), Duration::ZERO);
    let worker = {
        let coll = coll.clone();
        std::thread::spawn(move || coll.find_one(doc! { "_id": 1 }).run())
    };
    for _ in 0..1000 {
        if h.in_flight() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(h.in_flight(), 1);
    h.drop_connections();
    let err = worker
        .join()
        .expect("worker thread")
        .expect_err("connection closed");
    assert!(matches!(*err.kind, ErrorKind::Io(_)), "{err:?}");
    h.set_latency(Duration::ZERO, Duration::ZERO);

    // Server down: server selection timeout (possibly after one closed-connection error).
    h.set_refuse(true);
    let mut err = coll.find_one(doc! {}).run().expect_err("down");
    if !matches!(*err.kind, ErrorKind::ServerSelection { .. }) {
        err = coll.find_one(doc! {}).run().expect_err("still down");
    }
    assert!(
        matches!(*err.kind, ErrorKind::ServerSelection { .. }),
        "{err:?}"
    );
    h.set_refuse(false);
    let recovered = (0..20).any(|_| coll.find_one(doc! {}).run().is_ok());
    assert!(recovered, "sync client recovers");
}

#[test]
fn server_and_handle_are_thread_safe_values() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<mongo_wire::MongoWire>();
    assert_send_sync::<mongo_wire::Handle>();
}
