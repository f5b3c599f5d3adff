//! The real `mongodb` driver (async client) runs every supported operation against the
//! double (or a real MongoDB when `RECLAIMD_TEST_MONGODB_URI` is set) and checks results.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Cursor, IndexModel};

async fn collect(mut cursor: Cursor<Document>) -> Vec<Document> {
    let mut out = Vec::new();
    while cursor.advance().await.expect("cursor advances") {
        out.push(cursor.deserialize_current().expect("document decodes"));
    }
    out
}

async fn client(uri: &str) -> Client {
    Client::with_uri_str(uri).await.expect("client from uri")
}

fn ids(docs: &[Document]) -> Vec<i64> {
    docs.iter()
        .map(|d| match d.get("_id") {
            Some(Bson::Int32(i)) => *i as i64,
            Some(Bson::Int64(i)) => *i,
            other => panic!("unexpected _id {other:?}"),
        })
        .collect()
}

async fn seed_orders(orders: &Collection<Document>) {
    let statuses = ["paid", "pending", "refunded"];
    let docs: Vec<Document> = (1..=30i32)
        .map(|i| {
            doc! {
                "_id": i,
                "user_id": (i % 3) as i64,
                "amount_cents": i * 100,
                "status": statuses[(i % 3) as usize],
                "meta": { "channel": if i % 2 == 0 { "web" } else { "app" } },
                "created_at": DateTime::from_millis(1_700_000_000_000 + i as i64),
            }
        })
        .collect();
    orders.insert_many(docs).await.expect("seed orders");
}

#[tokio::test]
async fn handshake_commands_answer() {
    let t = common::target("handshake");
    let c = client(&t.uri).await;
    let admin = c.database("admin");
    let ping = admin.run_command(doc! { "ping": 1 }).await.expect("ping");
    assert_eq!(ping.get_f64("ok").ok(), Some(1.0));
    let info = admin
        .run_command(doc! { "buildInfo": 1 })
        .await
        .expect("buildInfo");
    assert!(
        info.get_str("version").is_ok(),
        "buildInfo has a version: {info}"
    );
    let hello = admin.run_command(doc! { "hello": 1 }).await.expect("hello");
    assert_eq!(hello.get_bool("isWritablePrimary").ok(), Some(true));
    assert!(hello.get("logicalSessionTimeoutMinutes").is_some());
    if t.server.is_some() {
        assert!(
            hello.get("topologyVersion").is_none(),
            "no streaming advertised"
        );
    }
    // Explicit sessions (lsid on each command) work.
    let mut session = c.start_session().await.expect("session");
    let coll = c.database(&t.db).collection::<Document>("users");
    coll.insert_one(doc! { "_id": 1, "name": "a" })
        .session(&mut session)
        .await
        .expect("insert in session");
    let found = coll
        .find_one(doc! { "_id": 1 })
        .session(&mut session)
        .await
        .expect("find in session");
    assert!(found.is_some());
    drop(session);
    c.database(&t.db).drop().await.expect("drop db");
    c.shutdown().await;
    if let Some(h) = t.handle() {
        assert!(
            h.command_count("endSessions") >= 1,
            "shutdown ends sessions"
        );
        assert!(h.command_count("hello") + h.command_count("isMaster") >= 1);
    }
}

#[tokio::test]
async fn insert_and_find_with_filters_sort_skip_limit_projection() {
    let t = common::target("find");
    let c = client(&t.uri).await;
    let orders = c.database(&t.db).collection::<Document>("orders");
    seed_orders(&orders).await;

    // _id equality across integer widths: stored i32, queried as i64 and f64.
    let one = orders
        .find_one(doc! { "_id": 7i64 })
        .await
        .expect("find_one");
    assert_eq!(
        one.as_ref().and_then(|d| d.get_i32("amount_cents").ok()),
        Some(700)
    );
    let one = orders
        .find_one(doc! { "_id": 7.0 })
        .await
        .expect("find_one");
    assert!(one.is_some());
    assert!(orders
        .find_one(doc! { "_id": 999 })
        .await
        .expect("find_one")
        .is_none());

    let q = |f: Document| {
        let orders = orders.clone();
        async move {
            let docs = collect(orders.find(f).sort(doc! { "_id": 1 }).await.expect("find")).await;
            ids(&docs)
        }
    };
    assert_eq!(
        q(doc! { "_id": { "$in": [2, 4i64, 99] } }).await,
        vec![2, 4]
    );
    assert_eq!(q(doc! { "_id": { "$gt": 27 } }).await, vec![28, 29, 30]);
    assert_eq!(
        q(doc! { "_id": { "$gte": 28.0, "$lt": 30 } }).await,
        vec![28, 29]
    );
    assert_eq!(q(doc! { "_id": { "$lte": 2 } }).await, vec![1, 2]);
    assert_eq!(q(doc! { "_id": { "$eq": 5 } }).await, vec![5]);
    assert_eq!(
        q(doc! { "user_id": 1, "_id": { "$ne": 1 }, "amount_cents": { "$lt": 1100 } }).await,
        vec![4, 7, 10]
    );
    assert_eq!(
        q(doc! { "meta.channel": "web", "_id": { "$lte": 6 } }).await,
        vec![2, 4, 6]
    );
    assert_eq!(
        q(doc! { "status": { "$in": ["paid"] }, "_id": { "$lt": 10 } }).await,
        vec![3, 6, 9]
    );

    let docs = collect(
        orders
            .find(doc! { "status": "pending" })
            .sort(doc! { "amount_cents": -1 })
            .skip(1)
            .limit(3)
            .projection(doc! { "amount_cents": 1, "_id": 0 })
            .await
            .expect("find"),
    )
    .await;
    assert_eq!(
        docs,
        vec![
            doc! { "amount_cents": 2500 },
            doc! { "amount_cents": 2200 },
            doc! { "amount_cents": 1900 }
        ]
    );
    // Negative limit: a single batch.
    let docs = collect(orders.find(doc! {}).limit(-4).await.expect("find")).await;
    assert_eq!(docs.len(), 4);
    c.database(&t.db).drop().await.expect("drop db");
}

#[tokio::test]
async fn large_results_use_get_more_and_kill_cursors() {
    let t = common::target("getmore");
    let c = client(&t.uri).await;
    let coll = c.database(&t.db).collection::<Document>("big");
    let docs: Vec<Document> = (0..250i64)
        .map(|i| doc! { "_id": i, "pad": "x".repeat(100) })
        .collect();
    coll.insert_many(docs).await.expect("insert 250");

    let all = collect(coll.find(doc! {}).batch_size(40).await.expect("find")).await;
    assert_eq!(all.len(), 250);
    let mut got = ids(&all);
    got.sort_unstable();
    assert_eq!(got, (0..250).collect::<Vec<_>>());
    // Default batch (101) then getMore for the rest.
    let all = collect(coll.find(doc! {}).await.expect("find")).await;
    assert_eq!(all.len(), 250);
    let agg = collect(
        coll.aggregate(vec![doc! { "$match": {} }])
            .batch_size(60)
            .await
            .expect("agg"),
    )
    .await;
    assert_eq!(agg.len(), 250);
    if let Some(h) = t.handle() {
        assert!(h.command_count("getMore") >= 3 + 1 + 4, "getMore was used");
    }

    // A cursor dropped early is killed by the driver.
    let mut cursor = coll.find(doc! {}).batch_size(5).await.expect("find");
    assert!(cursor.advance().await.expect("advance"));
    drop(cursor);
    if let Some(h) = t.handle() {
        // killCursors is sent in the background; wait for the event (bounded).
        for _ in 0..200 {
            if h.command_count("killCursors") >= 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(h.command_count("killCursors") >= 1, "killCursors received");
    }
    c.database(&t.db).drop().await.expect("drop db");
}

#[tokio::test]
async fn insert_many_unordered_reports_duplicates_and_inserts_the_rest() {
    let t = common::target("dups");
    let c = client(&t.uri).await;
    let users = c.database(&t.db).collection::<Document>("users");
    users
        .insert_many((1..=3i64).map(|i| doc! { "_id": i, "name": format!("u{i}") }))
        .await
        .expect("first seed");
    // Re-seed 1..=5 unordered: 1..=3 exist (stored as i64, re-sent as i32), 4 and 5 are new.
    let err = users
        .insert_many((1..=5i32).map(|i| doc! { "_id": i, "name": format!("u{i}") }))
        .ordered(false)
        .await
        .expect_err("duplicates are reported");
    match *err.kind {
        ErrorKind::InsertMany(ref e) => {
            let we = e.write_errors.as_ref().expect("write errors");
            assert_eq!(we.len(), 3);
            assert!(we.iter().all(|w| w.code == 11000), "{we:?}");
            let mut idx: Vec<usize> = we.iter().map(|w| w.index).collect();
            idx.sort_unstable();
            assert_eq!(idx, vec![0, 1, 2]);
        }
        ref other => panic!("expected InsertMany error, got {other:?}"),
    }
    assert_eq!(users.count_documents(doc! {}).await.expect("count"), 5);

    // insert_one duplicate: a write error 11000.
    let err = users
        .insert_one(doc! { "_id": 2, "name": "again" })
        .await
        .expect_err("duplicate _id");
    match *err.kind {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(ref w)) => {
            assert_eq!(w.code, 11000)
        }
        ref other => panic!("expected write error, got {other:?}"),
    }
    c.database(&t.db).drop().await.expect("drop db");
}

#[tokio::test]
async fn updates_deletes_and_counts() {
    let t = common::target("update");
    let c = client(&t.uri).await;
    let users = c.database(&t.db).collection::<Document>("users");
    users
        .insert_many((1..=4i32).map(|i| doc! { "_id": i, "tier": "free", "visits": i }))
        .await
        .expect("seed");

    let r = users
        .update_one(
            doc! { "_id": 2i64 },
            doc! { "$set": { "tier": "pro", "profile.city": "Oslo" }, "$inc": { "visits": 10 } },
        )
        .await
        .expect("update_one");
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    let u2 = users
        .find_one(doc! { "_id": 2 })
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(u2.get_str("tier").ok(), Some("pro"));
    assert_eq!(u2.get_i32("visits").ok(), Some(12));
    assert_eq!(
        u2.get_document("profile")
            .ok()
            .and_then(|p| p.get_str("city").ok()),
        Some("Oslo")
    );

    let r = users
        .update_one(
            doc! { "_id": 9 },
            doc! { "$set": { "tier": "new" }, "$inc": { "visits": 1 } },
        )
        .upsert(true)
        .await
        .expect("upsert");
    assert_eq!(r.matched_count, 0);
    assert_eq!(r.upserted_id, Some(Bson::Int32(9)));
    let u9 = users
        .find_one(doc! { "_id": 9 })
        .await
        .expect("find")
        .expect("upserted");
    assert_eq!(u9, doc! { "_id": 9, "tier": "new", "visits": 1 });

    let r = users
        .update_many(
            doc! { "tier": "free" },
            doc! { "$set": { "tier": "basic" } },
        )
        .await
        .expect("update_many");
    assert_eq!((r.matched_count, r.modified_count), (3, 3));
    // Setting the same value again matches but does not modify.
    let r = users
        .update_one(doc! { "_id": 1 }, doc! { "$set": { "tier": "basic" } })
        .await
        .expect("no-op update");
    assert_eq!((r.matched_count, r.modified_count), (1, 0));

    // Replacement keeps _id.
    let r = users
        .replace_one(doc! { "_id": 4 }, doc! { "tier": "basic", "visits": 40 })
        .await
        .expect("replace_one");
    assert_eq!((r.matched_count, r.modified_count), (1, 1));
    assert_eq!(
        users.find_one(doc! { "_id": 4 }).await.expect("find"),
        Some(doc! { "_id": 4, "tier": "basic", "visits": 40 })
    );

    assert_eq!(
        users
            .count_documents(doc! { "tier": "basic" })
            .await
            .expect("count"),
        3
    );
    assert_eq!(users.estimated_document_count().await.expect("estimate"), 5);

    let r = users
        .delete_one(doc! { "tier": "basic" })
        .await
        .expect("delete_one");
    assert_eq!(r.deleted_count, 1);
    let r = users
        .delete_many(doc! { "visits": { "$lt": 100 } })
        .await
        .expect("delete_many");
    assert_eq!(r.deleted_count, 4);
    assert_eq!(users.count_documents(doc! {}).await.expect("count"), 0);
    c.database(&t.db).drop().await.expect("drop db");
}

#[tokio::test]
async fn aggregate_matches_the_daemons_report_pipeline() {
    let t = common::target("aggregate");
    let c = client(&t.uri).await;
    let orders = c.database(&t.db).collection::<Document>("orders");
    seed_orders(&orders).await;
    orders
        .create_index(IndexModel::builder().keys(doc! { "user_id": 1 }).build())
        .await
        .expect("index");

    // user 1: ids 1,4,...,28 → all status "pending" (i % 3 == 1); user 0: "paid".
    let pipeline = vec![
        doc! { "$match": { "user_id": { "$in": [0, 1] } } },
        doc! { "$group": {
            "_id": "$status",
            "count": { "$sum": 1 },
            "total": { "$sum": "$amount_cents" },
            "avg": { "$avg": "$amount_cents" },
            "max": { "$max": "$amount_cents" },
            "min": { "$min": "$amount_cents" },
        } },
        doc! { "$sort": { "_id": 1 } },
    ];
    let rows = collect(orders.aggregate(pipeline).await.expect("aggregate")).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get_str("_id").ok(), Some("paid"));
    assert_eq!(rows[0].get_i32("count").ok(), Some(10));
    // paid: 3,6,...,30 → sum 165 * 100
    assert_eq!(rows[0].get_i32("total").ok(), Some(16500));
    assert_eq!(rows[0].get_f64("avg").ok(), Some(1650.0));
    assert_eq!(rows[0].get_i32("max").ok(), Some(3000));
    assert_eq!(rows[0].get_i32("min").ok(), Some(300));
    assert_eq!(rows[1].get_str("_id").ok(), Some("pending"));
    assert_eq!(rows[1].get_i32("count").ok(), Some(10));

    // The daemon's exact shape, on one user.
    let rows = collect(
        orders
            .aggregate(vec![
                doc! { "$match": { "user_id": 2i64 } },
                doc! { "$group": { "_id": "$status", "count": { "$sum": 1 }, "total": { "$sum": "$amount_cents" } } },
                doc! { "$sort": { "_id": 1 } },
                doc! { "$limit": 5 },
                doc! { "$project": { "count": 1, "total": 1 } },
            ])
            .await
            .expect("aggregate"),
    )
    .await;
    assert_eq!(
        rows,
        vec![doc! { "_id": "refunded", "count": 10, "total": 15500 }]
    );

    // count_documents is an aggregate under the hood.
    assert_eq!(
        orders
            .count_documents(doc! { "user_id": 1 })
            .await
            .expect("count"),
        10
    );
    assert_eq!(
        orders
            .count_documents(doc! { "amount_cents": { "$gte": 2000 } })
            .await
            .expect("count"),
        11
    );
    c.database(&t.db).drop().await.expect("drop db");
}

#[tokio::test]
async fn indexes_collections_and_drops() {
    let t = common::target("ddl");
    let c = client(&t.uri).await;
    let db = c.database(&t.db);
    let users = db.collection::<Document>("users");
    let name = users
        .create_index(
            IndexModel::builder()
                .keys(doc! { "email": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await
        .expect("create unique index");
    assert_eq!(name.index_name, "email_1");
    users
        .insert_one(doc! { "_id": 1, "email": "a@x" })
        .await
        .expect("insert");
    let err = users
        .insert_one(doc! { "_id": 2, "email": "a@x" })
        .await
        .expect_err("unique index enforced");
    match *err.kind {
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(ref w)) => {
            assert_eq!(w.code, 11000)
        }
        ref other => panic!("expected duplicate key, got {other:?}"),
    }
    let names = users.list_index_names().await.expect("list indexes");
    assert!(names.contains(&"email_1".to_string()), "{names:?}");

    db.collection::<Document>("orders")
        .insert_one(doc! { "_id": 1 })
        .await
        .expect("insert");
    let mut colls = db.list_collection_names().await.expect("list collections");
    colls.sort();
    assert_eq!(colls, vec!["orders".to_string(), "users".to_string()]);

    users.drop().await.expect("drop collection");
    assert_eq!(
        db.list_collection_names().await.expect("list"),
        vec!["orders".to_string()]
    );
    assert_eq!(users.count_documents(doc! {}).await.expect("count"), 0);
    // Dropping a missing collection is not an error.
    db.collection::<Document>("nope")
        .drop()
        .await
        .expect("drop missing");

    db.drop().await.expect("drop database");
    assert!(db.list_collection_names().await.expect("list").is_empty());
}

#[tokio::test]
async fn unknown_command_is_a_driver_error() {
    let t = common::target("unknown");
    let c = client(&t.uri).await;
    let err = c
        .database(&t.db)
        .run_command(doc! { "definitelyNotACommand": 1 })
        .await
        .expect_err("unknown command fails");
    match *err.kind {
        ErrorKind::Command(ref e) => {
            assert_eq!(e.code, 59);
            assert_eq!(e.code_name, "CommandNotFound");
        }
        ref other => panic!("expected a command error, got {other:?}"),
    }
}
