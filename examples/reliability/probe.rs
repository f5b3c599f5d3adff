//! `probe`, `capacity` and `recovery`: what a user would see, as a time series; the most the
//! daemon serves; and how long after a fault its answers were back to normal.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reclaimd::config::parse_duration;
use reclaimd::load::{build_request, Arrivals, Mix, Schedule};
use reclaimd::server_timing::ServerTiming;
use tokio::time::Instant;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    client_with(true)
}

/// A client that reuses idle connections (`keep_alive`), or opens a new one per request, as
/// a health checker such as the kubelet does.
fn client_with(keep_alive: bool) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        // Well under the daemon's idle cut-off (server.header_read_timeout, 5 s by default).
        .pool_idle_timeout(Duration::from_secs(1))
        .pool_max_idle_per_host(if keep_alive { usize::MAX } else { 0 })
        .build(connector)
}

/// Microseconds since the Unix epoch: the clock the script's fault timestamps use.
pub fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A status (or what went wrong instead: 0 timeout, 1 connection refused, 2 other I/O) and
/// the server's own total from `Server-Timing`, in milliseconds, when it sent one.
async fn get(client: &HttpClient, url: &str, timeout: Duration) -> (u16, Option<f64>) {
    let Ok(req) = Request::get(url).body(Full::new(Bytes::new())) else {
        return (2, None);
    };
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| if e.is_connect() { 1u16 } else { 2 })?;
        let status = resp.status().as_u16();
        let server = resp
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| ServerTiming::parse(v).ok())
            .map(|t| t.total.as_secs_f64() * 1e3);
        resp.into_body().collect().await.map_err(|_| 2u16)?;
        Ok::<_, u16>((status, server))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => (0, None),
        Ok(Err(s)) => (s, None),
        Ok(Ok(r)) => r,
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// The URL to GET, one request at a time.
    #[arg(long)]
    url: String,
    /// Pause between one answer and the next request.
    #[arg(long, value_parser = parse_duration, default_value = "50ms")]
    every: Duration,
    /// How long to probe.
    #[arg(long = "for", value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Per-request timeout (status 0).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    timeout: Duration,
    /// A new connection for every request (as a health checker opens), instead of reusing one.
    #[arg(long)]
    new_connections: bool,
    /// Where to write one line per request: sent_us done_us status latency_ms server_ms (the
    /// server's total from `Server-Timing`, `-` without one).
    #[arg(long)]
    out: PathBuf,
}

/// Sends GETs one after another and writes each one's times and status. A summary goes to
/// standard output: count, statuses, p50/p99/max latency.
pub async fn probe(args: ProbeArgs) -> bool {
    use std::io::Write;
    let client = client_with(!args.new_connections);
    let Ok(file) = std::fs::File::create(&args.out) else {
        eprintln!("probe: cannot write {}", args.out.display());
        return false;
    };
    let mut out = std::io::BufWriter::new(file);
    let end = Instant::now() + args.duration;
    let mut latencies = Vec::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    while Instant::now() < end {
        let sent = epoch_us();
        let t0 = Instant::now();
        let (status, server) = get(&client, &args.url, args.timeout).await;
        let latency = t0.elapsed();
        let server = server.map_or("-".to_string(), |ms| format!("{ms:.3}"));
        let _ = writeln!(
            out,
            "{sent} {} {status} {:.3} {server}",
            epoch_us(),
            latency.as_secs_f64() * 1e3
        );
        latencies.push(latency);
        *statuses.entry(status).or_default() += 1;
        tokio::time::sleep(args.every).await;
    }
    let _ = out.flush();
    latencies.sort();
    let q = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let s: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    println!(
        "probe {}: requests={} statuses={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        args.url,
        latencies.len(),
        s.join(","),
        q(0.5),
        q(0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    true
}

#[derive(Debug, Clone, clap::Args)]
pub struct CapacityArgs {
    /// The daemon's app base URL.
    #[arg(long)]
    url: String,
    /// Route weights, as `reclaimd load --mix`.
    #[arg(long, default_value = "user=1,report=1")]
    mix: Mix,
    /// User ids drawn from 1..=N.
    #[arg(long, default_value_t = 1000)]
    users: u64,
    /// Requests kept in flight: enough to keep every handler thread busy, few enough that
    /// none waits long.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// How long to measure (after a 2 s warm-up).
    #[arg(long = "for", value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
}

/// Closed-loop throughput: `concurrency` clients each send the next request of the mix as
/// soon as the last one is answered. Prints `capacity_rps=` (2xx per second) and the errors.
pub async fn capacity(args: CapacityArgs) -> bool {
    let client = client();
    let schedule = Arc::new(Mutex::new(Schedule::new(
        Arrivals::Constant,
        1.0,
        args.mix,
        args.users,
        rand::random(),
    )));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let warmup = Duration::from_secs(2);
    let end = Instant::now() + warmup + args.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        let (client, schedule, measuring, ok, errors, url) = (
            client.clone(),
            schedule.clone(),
            measuring.clone(),
            ok.clone(),
            errors.clone(),
            args.url.clone(),
        );
        tasks.spawn(async move {
            while Instant::now() < end {
                let arrival = {
                    let mut s = schedule.lock().unwrap_or_else(|e| e.into_inner());
                    s.next()
                };
                let Some(arrival) = arrival else { break };
                let Ok(req) = build_request(&url, &arrival) else {
                    break;
                };
                let status = match tokio::time::timeout(Duration::from_secs(15), async {
                    let resp = client.request(req).await.ok()?;
                    let status = resp.status().as_u16();
                    resp.into_body().collect().await.ok()?;
                    Some(status)
                })
                .await
                {
                    Ok(Some(s)) => s,
                    Ok(None) => 2,
                    Err(_) => 0,
                };
                if !measuring.load(Ordering::Relaxed) || Instant::now() >= end {
                    continue;
                }
                if (200..300).contains(&status) {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    *errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(status)
                        .or_default() += 1;
                }
            }
        });
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep_until(end).await;
    let measured = t0.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    let errors = errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    tasks.abort_all();
    let e: Vec<String> = errors.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    println!(
        "capacity_rps={:.1} ok={ok} seconds={measured:.1} concurrency={} errors={}",
        ok as f64 / measured,
        args.concurrency,
        if e.is_empty() {
            "none".into()
        } else {
            e.join(",")
        }
    );
    true
}

#[derive(Debug, Clone, clap::Args)]
pub struct RecoveryArgs {
    /// A `probe --out` file.
    #[arg(long)]
    probe: PathBuf,
    /// When the fault (or the overload) ended, in microseconds since the epoch.
    #[arg(long)]
    end_us: u64,
    /// Normal latency comes from the probes answered before this time (microseconds since
    /// the epoch), or from `--baseline`.
    #[arg(long)]
    baseline_before_us: Option<u64>,
    /// A `probe --out` file of the same URL taken before the fault, as the baseline.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Answers must be normal from at most this long after the end.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    goal: Duration,
}

#[derive(Clone, Copy)]
struct Probe {
    done: u64,
    status: u16,
    ms: f64,
}

fn read_probes(path: &PathBuf) -> Vec<Probe> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let _sent = w.next()?;
            Some(Probe {
                done: w.next()?.parse().ok()?,
                status: w.next()?.parse().ok()?,
                ms: w.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Normal is a 2xx within twice the baseline's p99 (at least 100 ms). Recovery is the time
/// from the end to the first normal answer that begins two seconds of normal answers. After
/// it, an error status fails the check, and so do slow answers beyond one in twenty: a lone
/// slow answer on a shared machine is noise, a pattern is not.
/// Prints `recovery_s=` and the verdict against `--goal`.
pub fn recovery(args: RecoveryArgs) -> bool {
    let probes = read_probes(&args.probe);
    let mut base: Vec<f64> = match (&args.baseline, args.baseline_before_us) {
        (Some(file), _) => read_probes(file),
        (None, Some(before)) => probes.iter().filter(|p| p.done < before).copied().collect(),
        (None, None) => Vec::new(),
    }
    .iter()
    .filter(|p| (200..300).contains(&p.status))
    .map(|p| p.ms)
    .collect();
    base.sort_by(f64::total_cmp);
    let p99 = base
        .get(((base.len() as f64 * 0.99) as usize).min(base.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    let normal_ms = (2.0 * p99).max(100.0);
    let normal = |p: &Probe| (200..300).contains(&p.status) && p.ms <= normal_ms;
    let after: Vec<&Probe> = probes.iter().filter(|p| p.done > args.end_us).collect();
    let streak = Duration::from_secs(2).as_micros() as u64;
    // The first normal answer from which every answer for two seconds is normal.
    let recovered = (0..after.len()).find(|&i| {
        let from = after[i].done;
        after[i..]
            .iter()
            .take_while(|p| p.done <= from + streak)
            .all(|p| normal(p))
            && after.last().is_some_and(|l| l.done >= from + streak)
    });
    let since = |p: &Probe| p.done.saturating_sub(args.end_us) as f64 / 1e6;
    let (recovery_s, later) = match recovered {
        Some(i) => (since(after[i]), &after[i..]),
        None => (f64::INFINITY, &after[after.len()..]),
    };
    let before: Vec<&&Probe> = after.iter().take_while(|p| !normal(p)).collect();
    let later_errors = later
        .iter()
        .filter(|p| !(200..300).contains(&p.status))
        .count();
    let later_slow = later.iter().filter(|p| p.ms > normal_ms).count();
    let later_worst = later.iter().map(|p| p.ms).fold(0.0, f64::max);
    let covered_s = after.last().map_or(0.0, |p| since(p));
    let pass = !base.is_empty()
        && recovery_s <= args.goal.as_secs_f64()
        && later_errors == 0
        && later_slow * 20 <= later.len();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for p in &before {
        *statuses.entry(p.status).or_default() += 1;
    }
    let s: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}:{n}")).collect();
    println!(
        "recovery_s={recovery_s:.2} (goal {:.1}) normal_ms={normal_ms:.0} (baseline p99 {p99:.1}) \
         until_then={} ({}) after_that={} errors={later_errors} slow={later_slow} worst_ms={later_worst:.0} \
         observed_s={covered_s:.1} {}",
        args.goal.as_secs_f64(),
        before.len(),
        if s.is_empty() { "none".into() } else { s.join(",") },
        later.len(),
        if pass { "PASS" } else { "FAIL" }
    );
    pass
}
