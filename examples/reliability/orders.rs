//! `orders` and `check-orders`: order writes whose fate is checked against what MongoDB
//! stored. Each write carries its own amount (`--base` + its number), so every stored
//! document can be traced to the request that made it.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use mongodb::bson::{doc, Bson, Document};
use reclaimd::config::parse_duration;
use tokio::time::Instant;

#[derive(Debug, Clone, clap::Args)]
pub struct WriteArgs {
    /// The daemon's app base URL.
    #[arg(long)]
    url: String,
    /// Order writes per second (evenly spaced, open loop).
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// How long to send.
    #[arg(long = "for", value_parser = parse_duration, default_value = "20s")]
    duration: Duration,
    /// The first order's amount in cents; order n has `base + n`.
    #[arg(long, default_value_t = 70_000_000)]
    base: i64,
    /// User ids drawn from 1..=N.
    #[arg(long, default_value_t = 1000)]
    users: i64,
    /// One line per write: n status id (the id of a 201, `-` otherwise).
    #[arg(long)]
    out: PathBuf,
}

/// Sends the writes and records each one's status (0 timeout, 1 refused, 2 other I/O).
pub async fn write(args: WriteArgs) -> bool {
    let client = crate::probe::client();
    let results = Arc::new(Mutex::new(Vec::<(i64, u16, String)>::new()));
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(0.001));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut n: i64 = 0;
    while start.elapsed() < args.duration {
        tokio::time::sleep_until(start + interval.mul_f64(n as f64)).await;
        let (client, results, url) = (client.clone(), results.clone(), args.url.clone());
        let body = format!(
            r#"{{"user_id": {}, "amount_cents": {}}}"#,
            n % args.users + 1,
            args.base + n
        );
        let seq = n;
        tasks.spawn(async move {
            let req = Request::post(format!("{url}/api/orders"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)));
            let Ok(req) = req else { return };
            let outcome = tokio::time::timeout(Duration::from_secs(20), async {
                let resp =
                    client
                        .request(req)
                        .await
                        .map_err(|e| if e.is_connect() { 1u16 } else { 2 })?;
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|_| 2u16)?
                    .to_bytes();
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "-".into());
                Ok::<_, u16>((status, id))
            })
            .await;
            let (status, id) = match outcome {
                Err(_) => (0, "-".to_string()),
                Ok(Err(s)) => (s, "-".to_string()),
                Ok(Ok(r)) => r,
            };
            results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((seq, status, id));
        });
        n += 1;
    }
    while tasks.join_next().await.is_some() {}
    let mut results = results.lock().unwrap_or_else(|e| e.into_inner()).clone();
    results.sort();
    let Ok(file) = std::fs::File::create(&args.out) else {
        eprintln!("orders: cannot write {}", args.out.display());
        return false;
    };
    let mut out = std::io::BufWriter::new(file);
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for (seq, status, id) in &results {
        let _ = writeln!(out, "{seq} {status} {id}");
        *statuses.entry(*status).or_default() += 1;
    }
    let _ = out.flush();
    let s: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    println!("orders: sent={} statuses={}", results.len(), s.join(","));
    true
}

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// MongoDB (mongo-wire) URI.
    #[arg(long)]
    mongo: String,
    #[arg(long, default_value = "reclaimd")]
    database: String,
    /// An `orders --out` file.
    #[arg(long)]
    results: PathBuf,
    /// The `--base` the writes used.
    #[arg(long, default_value_t = 70_000_000)]
    base: i64,
}

/// Every 201 stored exactly once, under the id it returned; no write stored twice; nothing
/// stored that no write asked for. Writes answered otherwise may or may not be stored (the
/// client cannot know): counted, not failed.
pub async fn check(args: CheckArgs) -> bool {
    let text = std::fs::read_to_string(&args.results).unwrap_or_default();
    let mut writes: HashMap<i64, (u16, String)> = HashMap::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let [seq, status, id] = w[..] {
            if let (Ok(seq), Ok(status)) = (seq.parse::<i64>(), status.parse::<u16>()) {
                writes.insert(seq, (status, id.to_string()));
            }
        }
    }
    let stored = match stored(&args).await {
        Ok(s) => s,
        Err(e) => {
            println!("check-orders: cannot read the orders back: {e}");
            return false;
        }
    };
    let created = writes.values().filter(|(s, _)| *s == 201).count();
    let mut ok = 0u64;
    let mut missing = Vec::new();
    let mut wrong_id = Vec::new();
    let mut duplicated = Vec::new();
    let mut stored_without_201 = 0u64;
    for (seq, ids) in &stored {
        if ids.len() > 1 {
            duplicated.push(*seq);
        }
        match writes.get(seq) {
            Some((201, _)) => {}
            Some(_) => stored_without_201 += 1,
            None => {}
        }
    }
    let unknown = stored.keys().filter(|s| !writes.contains_key(s)).count();
    for (seq, (status, id)) in &writes {
        if *status != 201 {
            continue;
        }
        match stored.get(seq).map(Vec::as_slice) {
            None | Some([]) => missing.push(*seq),
            Some([one]) if one == id => ok += 1,
            Some([_]) => wrong_id.push(*seq),
            Some(_) => {}
        }
    }
    let pass = missing.is_empty()
        && wrong_id.is_empty()
        && duplicated.is_empty()
        && unknown == 0
        && !writes.is_empty();
    println!(
        "check-orders: writes={} answered_201={created} stored={} 201_stored_once={ok} missing={} wrong_id={} duplicated={} stored_without_201={stored_without_201} stored_unknown={unknown} {}",
        writes.len(),
        stored.values().map(Vec::len).sum::<usize>(),
        missing.len(),
        wrong_id.len(),
        duplicated.len(),
        if pass { "PASS" } else { "FAIL" }
    );
    for (what, list) in [
        ("missing", &missing),
        ("wrong id", &wrong_id),
        ("duplicated", &duplicated),
    ] {
        if !list.is_empty() {
            println!(
                "check-orders: {what}: writes {:?}",
                &list[..list.len().min(20)]
            );
        }
    }
    pass
}

/// Stored order ids by write number (amount − base).
async fn stored(args: &CheckArgs) -> mongodb::error::Result<BTreeMap<i64, Vec<String>>> {
    let client = mongodb::Client::with_uri_str(&args.mongo).await?;
    let orders = client
        .database(&args.database)
        .collection::<Document>("orders");
    let filter = doc! {"amount_cents": {"$gte": args.base, "$lt": args.base + 10_000_000}};
    let mut cursor = orders.find(filter).await?;
    let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    while cursor.advance().await? {
        let d = cursor.deserialize_current()?;
        let amount = match d.get("amount_cents") {
            Some(Bson::Int64(v)) => *v,
            Some(Bson::Int32(v)) => i64::from(*v),
            _ => continue,
        };
        let id = match d.get("_id") {
            Some(Bson::ObjectId(o)) => o.to_hex(),
            Some(other) => other.to_string(),
            None => "-".into(),
        };
        out.entry(amount - args.base).or_default().push(id);
    }
    Ok(out)
}
