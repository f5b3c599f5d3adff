//! The `mongodb::sync` client (as reclaimd's sync mode uses it) runs every supported
//! operation against the double, or a real MongoDB when `RECLAIMD_TEST_MONGODB_URI` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;

use mongodb::bson::{doc, Bson, DateTime, Document};
use mongodb::error::ErrorKind;
use mongodb::options::IndexOptions;
use mongodb::sync::{Client, Cursor};
use mongodb::IndexModel;

fn collect(cursor: Cursor<Document>) -> Vec<Document> {
    cursor
        .map(|d| d.expect("cursor yields documents"))
        .collect()
}

#[test]
fn sync_client_covers_the_daemons_operations() {
    let t = common::target("sync_ops");
    let c = Client::with_uri_str(&t.uri).expect("sync client");
    let db = c.database(&t.db);
    db.run_command(doc! { "ping": 1 }).run().expect("ping");
    c.database("admin")
        .run_command(doc! { "buildInfo": 1 })
        .run()
        .expect("buildInfo");

    let users = db.collection::<Document>("users");
    let orders = db.collection::<Document>("orders");
    orders
        .create_index(IndexModel::builder().keys(doc! { "user_id": 1 }).build())
        .run()
        .expect("index on orders.user_id");
    let mut names = db.list_collection_names().run().expect("list collections");
    names.sort();
    assert_eq!(names, vec!["orders".to_string()]);

    // Seed as `reclaimd seed` does: i64 ids, then a re-seed that must report duplicates.
    let seed = |n: i64| {
        (1..=n).map(|i| {
            doc! {
                "_id": i,
                "name": format!("user{i}"),
                "email": format!("user{i}@example.com"),
                "created_at": DateTime::from_millis(1_700_000_000_000),
                "tier": if i % 2 == 0 { "pro" } else { "free" },
            }
        })
    };
    users.insert_many(seed(150)).run().expect("seed users");
    let err = users
        .insert_many(seed(160))
        .ordered(false)
        .run()
        .expect_err("re-seed reports duplicates");
    match *err.kind {
        ErrorKind::InsertMany(ref e) => {
            let we = e.write_errors.as_ref().expect("write errors");
            assert_eq!(we.len(), 150);
            assert!(we.iter().all(|w| w.code == 11000));
        }
        ref other => panic!("expected InsertMany error, got {other:?}"),
    }
    assert_eq!(users.estimated_document_count().run().expect("count"), 160);

    for uid in 1..=3i64 {
        let orders_for: Vec<Document> = (0..4)
            .map(|k| {
                doc! {
                    "_id": uid * 100 + k,
                    "user_id": uid as i32,
                    "amount_cents": 1000 + k as i32 * 10,
                    "status": if k % 2 == 0 { "paid" } else { "pending" },
                    "created_at": DateTime::now(),
                }
            })
            .collect();
        orders.insert_many(orders_for).run().expect("orders");
    }
    orders
        .insert_one(doc! { "_id": 999i64, "user_id": 3, "amount_cents": 5, "status": "paid" })
        .run()
        .expect("insert_one");

    // findOne by _id with an i32 filter against i64 ids.
    let u = users
        .find_one(doc! { "_id": 42i32 })
        .run()
        .expect("find_one")
        .expect("user 42");
    assert_eq!(u.get_str("name").ok(), Some("user42"));

    // find with sort/skip/limit/projection, and more than a batch (getMore).
    let pros = collect(
        users
            .find(doc! { "tier": "pro", "_id": { "$gt": 10 } })
            .sort(doc! { "_id": -1 })
            .projection(doc! { "name": 1 })
            .batch_size(7)
            .run()
            .expect("find"),
    );
    assert_eq!(pros.len(), 75);
    assert_eq!(pros[0], doc! { "_id": 160i64, "name": "user160" });
    let page = collect(
        users
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .skip(5)
            .limit(3)
            .run()
            .expect("find"),
    );
    let ids: Vec<&Bson> = page.iter().filter_map(|d| d.get("_id")).collect();
    assert_eq!(ids, vec![&Bson::Int64(6), &Bson::Int64(7), &Bson::Int64(8)]);

    // The report aggregate.
    let rows = collect(
        orders
            .aggregate(vec![
                doc! { "$match": { "user_id": 3 } },
                doc! { "$group": {
                    "_id": "$status",
                    "count": { "$sum": 1 },
                    "total": { "$sum": "$amount_cents" },
                    "avg": { "$avg": "$amount_cents" },
                    "max": { "$max": "$amount_cents" },
                } },
                doc! { "$sort": { "_id": 1 } },
            ])
            .run()
            .expect("aggregate"),
    );
    assert_eq!(
        rows,
        vec![
            doc! { "_id": "paid", "count": 3, "total": 2025, "avg": 675.0, "max": 1020 },
            doc! { "_id": "pending", "count": 2, "total": 2040, "avg": 1020.0, "max": 1030 },
        ]
    );
    assert_eq!(
        orders
            .count_documents(doc! { "user_id": 3 })
            .run()
            .expect("count"),
        5
    );

    // Writes: update with upsert, $inc, delete.
    let r = orders
        .update_one(
            doc! { "_id": 777i64 },
            doc! { "$set": { "status": "paid", "user_id": 9 }, "$inc": { "amount_cents": 250 } },
        )
        .upsert(true)
        .run()
        .expect("upsert");
    assert_eq!(r.upserted_id, Some(Bson::Int64(777)));
    let r = orders
        .update_one(doc! { "_id": 777 }, doc! { "$inc": { "amount_cents": 1 } })
        .run()
        .expect("inc");
    assert_eq!(r.modified_count, 1);
    let o = orders
        .find_one(doc! { "_id": 777 })
        .run()
        .expect("find")
        .expect("upserted order");
    assert_eq!(o.get_i32("amount_cents").ok(), Some(251));
    let d = orders
        .delete_many(doc! { "user_id": { "$in": [1, 2] } })
        .run()
        .expect("delete");
    assert_eq!(d.deleted_count, 8);

    let unique = users
        .create_index(
            IndexModel::builder()
                .keys(doc! { "email": 1 })
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .run()
        .expect("unique index");
    assert_eq!(unique.index_name, "email_1");
    let err = users
        .insert_one(doc! { "_id": 1000, "email": "user1@example.com" })
        .run()
        .expect_err("unique email");
    assert!(
        matches!(*err.kind, ErrorKind::Write(mongodb::error::WriteFailure::WriteError(ref w)) if w.code == 11000),
        "{err:?}"
    );

    let err = db
        .run_command(doc! { "noSuchCommand": 1 })
        .run()
        .expect_err("unknown command");
    assert!(
        matches!(*err.kind, ErrorKind::Command(ref e) if e.code == 59),
        "{err:?}"
    );

    orders.drop().run().expect("drop collection");
    assert_eq!(
        db.list_collection_names().run().expect("list"),
        vec!["users".to_string()]
    );
    db.drop().run().expect("drop database");
    assert!(db.list_collection_names().run().expect("list").is_empty());
    if let Some(h) = t.handle() {
        for name in [
            "find",
            "aggregate",
            "insert",
            "update",
            "delete",
            "getMore",
            "count",
        ] {
            assert!(h.command_count(name) >= 1, "{name} went over the wire");
        }
    }
}
