//! Property tests: the frame and BSON command parser never panics, whatever the bytes, and
//! valid messages round-trip.

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
