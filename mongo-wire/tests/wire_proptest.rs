//! Property tests: the frame and BSON command parser never panics, whatever the bytes, and
//! valid messages round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use mongo_wire::wire::{self, Framing};
use mongodb::bson::{doc, Bson, Document};
use proptest::prelude::*;

fn leaf() -> impl Strategy<Value = Bson> {
    prop_oneof![
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        "[a-z$.]{0,8}".prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
    ]
}

fn value() -> impl Strategy<Value = Bson> {
    leaf().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec(("[a-z_$.]{1,6}", inner), 0..4)
                .prop_map(|kv| Bson::Document(kv.into_iter().collect())),
        ]
    })
}

fn document() -> impl Strategy<Value = Document> {
    prop::collection::vec(("[a-z_]{1,6}", value()), 0..5).prop_map(|kv| kv.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = wire::parse_message(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        op in prop_oneof![Just(wire::OP_MSG), Just(wire::OP_QUERY), any::<i32>()],
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut msg = Vec::new();
        msg.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
        msg.extend_from_slice(&1i32.to_le_bytes());
        msg.extend_from_slice(&0i32.to_le_bytes());
        msg.extend_from_slice(&op.to_le_bytes());
        msg.extend_from_slice(&body);
        let _ = wire::parse_message(&msg);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        body in document(),
        docs in prop::collection::vec(document(), 0..4),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut cmd = doc! { "insert": "c", "$db": "d" };
        cmd.extend(body);
        let mut msg = wire::encode_op_msg(9, 0, &cmd, &[("documents", docs)]);
        for (i, b) in flips {
            let i = i.index(msg.len());
            msg[i] = b;
        }
        let _ = wire::parse_message(&msg);
        let end = cut.index(msg.len());
        let _ = wire::parse_message(&msg[..end]);
    }

    #[test]
    fn valid_messages_round_trip(
        body in document(),
        docs in prop::collection::vec(document(), 0..5),
        checksum in any::<bool>(),
    ) {
        let mut cmd = doc! { "insert": "c" };
        cmd.extend(body.into_iter().filter(|(k, _)| k != "insert" && k != "documents"));
        cmd.insert("$db", "d");
        let msg = wire::encode_op_msg(11, u32::from(checksum), &cmd, &[("documents", docs.clone())]);
        let req = wire::parse_message(&msg).expect("valid message parses");
        prop_assert_eq!(req.framing, Framing::OpMsg);
        prop_assert_eq!(req.request_id, 11);
        prop_assert_eq!(req.command_name(), "insert");
        let got: Vec<Bson> = req.body.get_array("documents").expect("sequence merged").clone();
        let want: Vec<Bson> = docs.into_iter().map(Bson::Document).collect();
        prop_assert_eq!(got, want);
    }
}

mod over_tcp {
    use std::io::{Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpStream};
    use std::sync::OnceLock;
    use std::time::Duration;

    use super::*;
    use mongo_wire::{MongoWire, Options};

    fn server() -> SocketAddr {
        static SERVER: OnceLock<MongoWire> = OnceLock::new();
        SERVER
            .get_or_init(|| MongoWire::start("127.0.0.1:0", Options::default()).expect("start"))
            .addr()
    }

    fn ping_ok(addr: SocketAddr) -> bool {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let msg = wire::encode_op_msg(1, 0, &doc! { "ping": 1, "$db": "admin" }, &[]);
        let mut len = [0u8; 4];
        s.write_all(&msg).is_ok() && s.read_exact(&mut len).is_ok()
    }

    fn command() -> impl Strategy<Value = Document> {
        let name = prop::sample::select(vec![
            "find",
            "insert",
            "update",
            "delete",
            "aggregate",
            "count",
            "getMore",
            "hello",
            "createIndexes",
            "drop",
            "nope",
        ]);
        (name, document()).prop_map(|(name, rest)| {
            let mut d = doc! { name: "c" };
            d.extend(rest);
            d.insert("$db", "fuzz");
            d
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Commands and corrupted frames sent to a live server: it keeps serving.
        #[test]
        fn live_server_survives_arbitrary_traffic(
            cmd in command(),
            docs in prop::collection::vec(document(), 0..3),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let addr = server();
            let mut msg = wire::encode_op_msg(3, 0, &cmd, &[("documents", docs)]);
            for (i, b) in flips {
                let i = i.index(msg.len());
                msg[i] = b;
            }
            if let Ok(mut s) = TcpStream::connect(addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = s.write_all(&msg);
                let _ = s.shutdown(Shutdown::Write);
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
            prop_assert!(ping_ok(addr), "server still answers");
        }
    }
}
