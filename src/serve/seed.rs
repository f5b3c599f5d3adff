//! `reclaimd seed`: loads demo data (users `1..=N` and their orders) and creates the indexes.
//!
//! Idempotent: ids are deterministic, inserts are unordered, and documents that already
//! exist (duplicate key, code 11000) are skipped, so re-running fills in what is missing and
//! changes nothing else.

use std::io::Write;
use std::time::Instant;

use mongodb::bson::{doc, DateTime, Document};
use mongodb::error::ErrorKind;
use mongodb::options::InsertManyOptions;

use crate::api::ORDER_STATUSES;
use crate::config::MongoConfig;
use crate::serve::db::{self, ORDERS, USERS};

const BATCH: u64 = 1000;
const TIERS: [&str; 3] = ["free", "pro", "enterprise"];

/// The user document with id `id`.
pub fn user(id: u64) -> Document {
    doc! {
        "_id": id as i64,
        "name": format!("User {id}"),
        "email": format!("user{id}@example.test"),
        "tier": TIERS[(id % 3) as usize],
        "created_at": DateTime::from_millis(1_700_000_000_000 + (id as i64) * 60_000),
    }
}

/// The order document with id `id`, owned by user `(id - 1) % users + 1`.
pub fn order(id: u64, users: u64) -> Document {
    // A small deterministic mix, so amounts look varied but re-seeding is identical.
    let h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    doc! {
        "_id": id as i64,
        "user_id": ((id - 1) % users + 1) as i64,
        "amount_cents": (500 + h % 50_000) as i64,
        "status": ORDER_STATUSES[(h % 4) as usize],
        "created_at": DateTime::from_millis(1_700_000_000_000 + (id as i64) * 1_000),
    }
}

/// Counts of what a seed run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Documents written by this run.
    pub inserted: u64,
    /// Documents that were already there.
    pub existing: u64,
}

/// Seeds `users` users and `orders` orders, printing progress to stderr when `progress`.
pub async fn seed(
    database: &mongodb::Database,
    users: u64,
    orders: u64,
    progress: bool,
) -> Result<(Seeded, Seeded), mongodb::error::Error> {
    db::create_indexes(database).await?;
    let u = insert_all(database, USERS, users, progress, user).await?;
    let o = insert_all(database, ORDERS, orders, progress, |id| {
        order(id, users.max(1))
    })
    .await?;
    Ok((u, o))
}

/// Seeds the database `config` names: what `reclaimd seed` runs. Errors are written for
/// the user (an unreachable server says which setting to check).
pub async fn seed_database(
    config: &MongoConfig,
    users: u64,
    orders: u64,
) -> Result<(Seeded, Seeded), String> {
    let opts = db::client_options(config).await?;
    let client = mongodb::Client::with_options(opts).map_err(|e| e.kind.to_string())?;
    seed(&client.database(&config.database), users, orders, true)
        .await
        .map_err(|e| match e.kind.as_ref() {
            ErrorKind::ServerSelection { .. } => {
                "MongoDB is unreachable (check mongodb.uri / RECLAIMD_MONGODB__URI)".to_string()
            }
            other => other.to_string(),
        })
}

async fn insert_all(
    database: &mongodb::Database,
    collection: &str,
    count: u64,
    progress: bool,
    make: impl Fn(u64) -> Document,
) -> Result<Seeded, mongodb::error::Error> {
    let coll = database.collection::<Document>(collection);
    let mut seeded = Seeded::default();
    let start = Instant::now();
    let mut next = 1;
    while next <= count {
        let end = (next + BATCH - 1).min(count);
        let docs: Vec<Document> = (next..=end).map(&make).collect();
        let n = docs.len() as u64;
        let opts = InsertManyOptions::builder().ordered(false).build();
        match coll.insert_many(docs).with_options(opts).await {
            Ok(r) => seeded.inserted += r.inserted_ids.len() as u64,
            Err(e) => match e.kind.as_ref() {
                ErrorKind::InsertMany(m)
                    if m.write_concern_error.is_none()
                        && m.write_errors
                            .as_ref()
                            .is_some_and(|w| w.iter().all(|w| w.code == 11000)) =>
                {
                    let dup = m.write_errors.as_ref().map_or(0, |w| w.len() as u64);
                    seeded.existing += dup;
                    seeded.inserted += n - dup;
                }
                _ => return Err(e),
            },
        }
        if progress {
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "\r{collection}: {end}/{count} ({:.1}s)",
                start.elapsed().as_secs_f64()
            );
            let _ = err.flush();
        }
        next = end + 1;
    }
    if progress {
        eprintln!(
            "\r{collection}: {count}/{count} done: {} inserted, {} already there",
            seeded.inserted, seeded.existing
        );
    }
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_deterministic_and_owned_by_existing_users() {
        assert_eq!(order(17, 10), order(17, 10));
        for id in 1..200 {
            let o = order(id, 10);
            let uid = o.get_i64("user_id").unwrap();
            assert!((1..=10).contains(&uid));
            assert!(ORDER_STATUSES.contains(&o.get_str("status").unwrap()));
        }
        assert_eq!(user(5).get_i64("_id").unwrap(), 5);
    }
}
