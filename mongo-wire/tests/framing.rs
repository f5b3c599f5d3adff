//! The wire protocol as a client puts it on a socket: a message split over many segments,
//! many messages in one, the OP_MSG flags (`moreToCome`, `exhaustAllowed`, checksum), messages
//! near the size limits, and the faults (`stall`, `drop`) in the middle of it all. Every reply
//! must be one well-formed frame whose `responseTo` is the request it answers, and nothing may
//! be answered twice, answered out of order, or left half-written on an open connection.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mongo_wire::wire::{
    self, FLAG_CHECKSUM_PRESENT, FLAG_EXHAUST_ALLOWED, FLAG_MORE_TO_COME, OP_MSG, OP_QUERY,
    OP_REPLY,
};
use mongo_wire::Options;
use mongodb::bson::{doc, spec::BinarySubtype, Binary, Bson, Document};

/// One reply as it came off the socket.
#[derive(Debug)]
struct Reply {
    request_id: i32,
    response_to: i32,
    op_code: i32,
    /// OP_MSG flag bits (OP_REPLY: responseFlags).
    flags: u32,
    body: Document,
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Reads exactly one frame and checks that it is well formed: its length covers the header
/// and exactly one document.
fn read_reply(s: &mut TcpStream) -> std::io::Result<Reply> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_le_bytes(len);
    assert!(len >= 21, "frame length {len}");
    let mut rest = vec![0u8; len as usize - 4];
    s.read_exact(&mut rest)?;
    let int = |at: usize| i32::from_le_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]]);
    let (request_id, response_to, op_code) = (int(0), int(4), int(8));
    let (flags, doc_bytes) = match op_code {
        OP_MSG => {
            assert_eq!(rest[16], 0, "a reply is one kind-0 section");
            (int(12) as u32, &rest[17..])
        }
        OP_REPLY => {
            assert_eq!(int(28), 1, "numberReturned");
            (int(12) as u32, &rest[32..])
        }
        other => panic!("unexpected reply opcode {other}"),
    };
    let doc_len = i32::from_le_bytes([doc_bytes[0], doc_bytes[1], doc_bytes[2], doc_bytes[3]]);
    assert_eq!(
        doc_len as usize,
        doc_bytes.len(),
        "the frame holds exactly one document"
    );
    let body = Document::from_reader(doc_bytes).expect("reply document decodes");
    Ok(Reply {
        request_id,
        response_to,
        op_code,
        flags,
        body,
    })
}

/// The peer closed the connection: EOF or a reset, never a byte of a reply.
fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e)
            if !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("connection should be closed, got {other:?}"),
    }
}

fn ping(id: i32) -> Vec<u8> {
    wire::encode_op_msg(id, 0, &doc! { "ping": 1, "$db": "admin" }, &[])
}

fn op_query_is_master(id: i32) -> Vec<u8> {
    let mut msg = Vec::new();
    msg.extend_from_slice(&[0; 4]);
    msg.extend_from_slice(&id.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&OP_QUERY.to_le_bytes());
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(b"admin.$cmd\0");
    msg.extend_from_slice(&0i32.to_le_bytes());
    msg.extend_from_slice(&(-1i32).to_le_bytes());
    doc! { "isMaster": 1 }.to_writer(&mut msg).expect("encode");
    let len = msg.len() as i32;
    msg[..4].copy_from_slice(&len.to_le_bytes());
    msg
}

/// Polls `cond` every 10 ms, up to 10 s: waits for an event, asserts nothing about time.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

fn blob(bytes: usize) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![0xab; bytes],
    })
}

#[test]
fn a_message_dribbled_one_byte_per_segment_is_answered_once() {
    let server = common::double(Options::default());
    let mut s = connect(server.addr());
    let msg = ping(77);
    for b in &msg {
        s.write_all(std::slice::from_ref(b)).expect("write");
        // Separate segments, so the server sees partial headers and partial bodies.
        std::thread::sleep(Duration::from_millis(1));
    }
    let r = read_reply(&mut s).expect("reply");
    assert_eq!((r.response_to, r.op_code, r.flags), (77, OP_MSG, 0));
    assert_eq!(r.body.get_f64("ok").ok(), Some(1.0));
    // Nothing else was sent: the next reply on this connection answers the next request.
    s.write_all(&ping(78)).expect("write");
    assert_eq!(read_reply(&mut s).expect("reply").response_to, 78);
}

#[test]
fn many_messages_in_one_write_are_answered_in_order_each_in_its_framing() {
    let server = common::double(Options::default());
    let mut s = connect(server.addr());
    let ids: Vec<i32> = (0..64)
        .map(|i| match i {
            0 => i32::MIN,
            1 => i32::MAX,
            2 => 0,
            3 => -1,
            i => i * 7919,
        })
        .collect();
    let mut burst = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if i % 5 == 0 {
            burst.extend(op_query_is_master(*id));
        } else {
            burst.extend(ping(*id));
        }
    }
    s.write_all(&burst).expect("one write");
    let mut reply_ids = std::collections::BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let r = read_reply(&mut s).expect("reply");
        assert_eq!(r.response_to, *id, "reply {i} answers request {i}");
        let want = if i % 5 == 0 { OP_REPLY } else { OP_MSG };
        assert_eq!(r.op_code, want, "reply {i} uses its request's framing");
        assert_eq!(r.flags, 0, "never moreToCome, never a checksum");
        assert_eq!(r.body.get_f64("ok").ok(), Some(1.0));
        assert!(reply_ids.insert(r.request_id), "reply ids are distinct");
    }
}

#[test]
fn more_to_come_is_never_answered_and_the_next_reply_answers_the_next_request() {
    let server = common::double(Options::default());
    let h = server.handle();
    let mut s = connect(server.addr());
    // An unacknowledged insert (w: 0), as a driver sends it, then a find, in one write.
    let mut burst = wire::encode_op_msg(
        100,
        FLAG_MORE_TO_COME,
        &doc! { "insert": "c", "$db": "mtc", "writeConcern": { "w": 0 } },
        &[("documents", vec![doc! { "_id": 1 }, doc! { "_id": 2 }])],
    );
    burst.extend(wire::encode_op_msg(
        101,
        0,
        &doc! { "find": "c", "filter": {}, "$db": "mtc" },
        &[],
    ));
    s.write_all(&burst).expect("write");
    let r = read_reply(&mut s).expect("reply");
    assert_eq!(r.response_to, 101, "the first reply is the find's");
    let batch = r
        .body
        .get_document("cursor")
        .and_then(|c| c.get_array("firstBatch"))
        .expect("firstBatch");
    assert_eq!(batch.len(), 2, "the unacknowledged insert ran first");
    assert_eq!(h.command_count("insert"), 1);
    // An unacknowledged command that fails is not answered either.
    let mut burst = wire::encode_op_msg(
        102,
        FLAG_MORE_TO_COME,
        &doc! { "noSuchCommand": 1, "$db": "mtc" },
        &[],
    );
    burst.extend(ping(103));
    s.write_all(&burst).expect("write");
    assert_eq!(read_reply(&mut s).expect("reply").response_to, 103);
}

#[test]
fn exhaust_allowed_gets_one_reply_not_a_stream() {
    let server = common::double(Options::default());
    let mut s = connect(server.addr());
    // A streaming-hello request: the server may stream only if it advertised a
    // topologyVersion, which this one never does.
    let hello = doc! {
        "hello": 1,
        "topologyVersion": { "processId": mongodb::bson::oid::ObjectId::new(), "counter": 0i64 },
        "maxAwaitTimeMS": 100,
        "$db": "admin",
    };
    let mut burst = wire::encode_op_msg(5, FLAG_EXHAUST_ALLOWED, &hello, &[]);
    burst.extend(ping(6));
    s.write_all(&burst).expect("write");
    let r = read_reply(&mut s).expect("hello reply");
    assert_eq!(r.response_to, 5);
    assert_eq!(r.flags & FLAG_MORE_TO_COME, 0, "not streamed");
    assert!(!r.body.contains_key("topologyVersion"));
    assert_eq!(read_reply(&mut s).expect("ping reply").response_to, 6);
}

#[test]
fn checksummed_message_with_a_document_sequence_is_applied_and_answered_plainly() {
    let server = common::double(Options::default());
    let mut s = connect(server.addr());
    let msg = wire::encode_op_msg(
        9,
        FLAG_CHECKSUM_PRESENT,
        &doc! { "insert": "c", "$db": "ck" },
        &[("documents", vec![doc! { "_id": 1 }, doc! { "_id": 2 }])],
    );
    s.write_all(&msg).expect("write");
    let r = read_reply(&mut s).expect("reply");
    assert_eq!((r.response_to, r.flags), (9, 0), "no checksum claimed");
    assert_eq!(r.body.get_i32("n").ok(), Some(2));
}

#[test]
fn a_reply_that_cannot_be_encoded_is_still_one_well_formed_error_frame() {
    let server = common::double(Options::default());
    let mut s = connect(server.addr());
    let insert = wire::encode_op_msg(
        1,
        0,
        &doc! { "insert": "c", "$db": "enc" },
        &[("documents", vec![doc! { "_id": 1 }])],
    );
    s.write_all(&insert).expect("write");
    read_reply(&mut s).expect("insert reply");
    // `$count` names an output field; a NUL byte cannot be in a BSON key.
    let agg = doc! {
        "aggregate": "c",
        "pipeline": [ { "$count": "a\u{0}b" } ],
        "cursor": {},
        "$db": "enc",
    };
    s.write_all(&wire::encode_op_msg(2, 0, &agg, &[]))
        .expect("write");
    let r = read_reply(&mut s).expect("a well-formed reply");
    assert_eq!(r.response_to, 2);
    assert_eq!(r.body.get_f64("ok").ok(), Some(0.0), "{:?}", r.body);
    s.write_all(&ping(3)).expect("write");
    assert_eq!(read_reply(&mut s).expect("still framed").response_to, 3);
}

#[test]
fn messages_up_to_the_advertised_size_are_read_and_larger_ones_close_only_their_connection() {
    let server = common::double(Options::default());
    let addr = server.addr();
    let mut s = connect(addr);
    let hello = {
        s.write_all(&wire::encode_op_msg(
            1,
            0,
            &doc! { "hello": 1, "$db": "admin" },
            &[],
        ))
        .expect("write");
        read_reply(&mut s).expect("hello").body
    };
    let max_message = hello.get_i32("maxMessageSizeBytes").expect("advertised") as usize;
    let max_doc = hello.get_i32("maxBsonObjectSize").expect("advertised") as usize;
    // Three documents that together nearly fill the largest message: many reads per frame on
    // the way in; on the way out a batch stays under 16 MiB, so one document per batch.
    let each = (max_message - 64 * 1024) / 3;
    assert!(each < max_doc && 2 * each > max_doc);
    let big = |id: i32| doc! { "_id": id, "blob": blob(each) };
    let docs = vec![big(1), big(2), big(3)];
    let msg = wire::encode_op_msg(
        2,
        0,
        &doc! { "insert": "big", "$db": "size" },
        &[("documents", docs)],
    );
    assert!(
        msg.len() > 2 * max_doc && msg.len() < max_message,
        "{}",
        msg.len()
    );
    s.write_all(&msg).expect("write");
    let r = read_reply(&mut s).expect("insert reply");
    assert_eq!((r.response_to, r.body.get_i32("n").ok()), (2, Some(3)));
    s.write_all(&wire::encode_op_msg(
        3,
        0,
        &doc! { "find": "big", "$db": "size" },
        &[],
    ))
    .expect("write");
    let r = read_reply(&mut s).expect("find reply");
    let cursor = r.body.get_document("cursor").expect("cursor");
    let first = cursor.get_array("firstBatch").expect("firstBatch").len();
    assert_eq!(first, 1, "a batch stays under 16 MiB");
    let id = cursor.get_i64("id").expect("cursor id");
    assert_ne!(id, 0, "the rest waits for getMore");
    let mut seen = first;
    let mut next_id = 4;
    let mut cursor_id = id;
    while cursor_id != 0 {
        let get_more = doc! { "getMore": cursor_id, "collection": "big", "$db": "size" };
        s.write_all(&wire::encode_op_msg(next_id, 0, &get_more, &[]))
            .expect("write");
        let r = read_reply(&mut s).expect("getMore reply");
        assert_eq!(r.response_to, next_id);
        let c = r.body.get_document("cursor").expect("cursor");
        seen += c.get_array("nextBatch").expect("nextBatch").len();
        cursor_id = c.get_i64("id").expect("id");
        next_id += 1;
    }
    assert_eq!(seen, 3);

    // One byte over the advertised message size: refused before it is read, this connection
    // only. (Only the length prefix is sent: the server must not wait for 48 MB.)
    let mut over = connect(addr);
    over.write_all(&((max_message + 1) as i32).to_le_bytes())
        .expect("write");
    assert_closed(&mut over);
    s.write_all(&ping(99)).expect("write");
    assert_eq!(read_reply(&mut s).expect("still served").response_to, 99);
}

#[test]
fn a_stalled_command_is_never_answered_later_and_drop_closes_its_connection() {
    let server = common::double(Options::default());
    let h = server.handle();
    let mut s = connect(server.addr());
    s.write_all(&ping(1)).expect("write");
    assert_eq!(read_reply(&mut s).expect("reply").response_to, 1);

    h.set_stall(true);
    s.write_all(&ping(2)).expect("write");
    wait_for("the stalled ping to be read", || {
        h.command_count("ping") == 2
    });
    h.set_stall(false);
    s.write_all(&ping(3)).expect("write");
    let r = read_reply(&mut s).expect("reply");
    assert_eq!(
        r.response_to, 3,
        "the stalled request is never answered, not even late"
    );

    h.set_stall(true);
    s.write_all(&ping(4)).expect("write");
    wait_for("the stalled ping to be read", || {
        h.command_count("ping") == 4
    });
    let open = h.open_connections();
    h.drop_connections();
    assert_closed(&mut s);
    assert_eq!(h.open_connections(), open - 1);
    assert_eq!(h.in_flight(), 0);
    h.set_stall(false);
    let mut fresh = connect(server.addr());
    fresh.write_all(&ping(5)).expect("write");
    assert_eq!(read_reply(&mut fresh).expect("reply").response_to, 5);
}

#[test]
fn clients_that_hang_up_mid_command_leave_no_connection_or_command_behind() {
    let server = common::double(Options {
        latency: Duration::from_millis(300),
        ..Options::default()
    });
    let h = server.handle();
    let find = wire::encode_op_msg(1, 0, &doc! { "find": "c", "$db": "hang" }, &[]);
    let mut clients: Vec<TcpStream> = (0..50).map(|_| connect(server.addr())).collect();
    for c in &mut clients {
        c.write_all(&find).expect("write");
    }
    wait_for("all 50 finds in flight", || h.in_flight() == 50);
    drop(clients);
    // Each command finishes its latency, finds its client gone, and its task ends.
    wait_for("the abandoned commands to finish", || {
        h.in_flight() == 0 && h.open_connections() == 0
    });
    let mut s = connect(server.addr());
    s.write_all(&ping(2)).expect("write");
    assert_eq!(read_reply(&mut s).expect("reply").response_to, 2);
}

/// The same near-limit documents through the real driver (and against a real MongoDB when
/// `RECLAIMD_TEST_MONGODB_URI` is set): a replacement whose update statement is a little
/// larger than the document limit is valid, as MongoDB's internal limit is 16 MiB + 16 KiB.
#[tokio::test]
async fn the_driver_writes_and_reads_documents_at_the_size_limit() {
    let t = common::target("size_limit");
    let c = mongodb::Client::with_uri_str(&t.uri).await.expect("client");
    let coll = c.database(&t.db).collection::<Document>("big");
    let hello = c
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .await
        .expect("hello");
    let max_doc = hello.get_i32("maxBsonObjectSize").expect("advertised") as usize;
    // The largest document: `_id` and one binary field whose size makes it exactly max_doc.
    let overhead = mongodb::bson::to_vec(&doc! { "_id": 1, "blob": blob(0) })
        .expect("encode")
        .len();
    let full = doc! { "_id": 1, "blob": blob(max_doc - overhead) };
    assert_eq!(mongodb::bson::to_vec(&full).expect("encode").len(), max_doc);
    coll.insert_one(full.clone())
        .await
        .expect("insert at the limit");
    let back = coll
        .find_one(doc! { "_id": 1 })
        .await
        .expect("find")
        .expect("found");
    assert_eq!(back, full);
    let replaced = coll
        .replace_one(doc! { "_id": 1 }, full.clone())
        .await
        .expect("replace with a document at the limit");
    assert_eq!(replaced.matched_count, 1);
    c.database(&t.db).drop().await.expect("drop test database");
}
