//! `reclaimd demo`: the live view on one machine, with nothing installed but this binary.
//!
//! In one process it starts a MongoDB stand-in with latency (mongo-wire, the repository's
//! MongoDB wire-protocol test double, built in through the default `test-double` feature;
//! `--mongodb-uri` uses a real MongoDB instead), seeds it, starts two daemons, one pinned to
//! sync mode and one to async (one worker thread each, as in the lecture), drives both with
//! one identical open-loop schedule, and prints the live view's URL: the sync instance's
//! admin listener serves a page that shows both instances, one above the other. Every few
//! seconds it prints one line with the headline of both. Ctrl-C (or `--duration`) stops the
//! load, both daemons and the test double, and prints the load report.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::api::Mode;
use crate::config::{parse_duration, Config};
use crate::live::{Headline, Hub};
use crate::load::{Arrivals, LoadPlan, Mix, Progress};
use crate::process::{self, EX_UNAVAILABLE, EX_USAGE};
use crate::serve::Server;

/// Arguments of `reclaimd demo`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Example:\n  cargo run --release -- demo\n  \
    reclaimd demo --rate 200 --latency-ms 50\n  \
    reclaimd demo --mongodb-uri mongodb://127.0.0.1:27017")]
pub struct DemoArgs {
    /// Use this MongoDB (seeded with demo users and orders, idempotently) instead of the
    /// built-in test double.
    #[arg(long, value_name = "URI")]
    pub mongodb_uri: Option<String>,
    /// Latency the test double adds to every MongoDB command, in milliseconds (± 2 ms).
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub latency_ms: u64,
    /// Offered load per instance, requests per second (one identical schedule for both).
    #[arg(long, value_name = "N", default_value_t = 100.0)]
    pub rate: f64,
    /// Route weights, e.g. `report=2,user=1`.
    #[arg(long, value_name = "ROUTE=W,...", default_value = "report=2,user=1")]
    pub mix: Mix,
    /// CPU time of each of the report's two compute segments, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 4.0)]
    pub report_compute_ms: f64,
    /// Port of the live view (the sync instance's admin listener; the async instance's is the
    /// next one). 0: any free port.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub port: u16,
    /// How often to print the summary line.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "5s")]
    pub every: Duration,
    /// Stop after this long; 0 runs until Ctrl-C.
    #[arg(long, value_name = "D", value_parser = parse_duration, default_value = "0")]
    pub duration: Duration,
}

/// Where MongoDB is: the test double (stopped when dropped), or the user's.
enum Mongo {
    #[cfg(feature = "test-double")]
    Double(mongo_wire::MongoWire),
    Real(String),
}

impl Mongo {
    fn uri(&self) -> String {
        match self {
            #[cfg(feature = "test-double")]
            Mongo::Double(w) => w.uri(),
            Mongo::Real(uri) => uri.clone(),
        }
    }
}

fn start_mongo(args: &DemoArgs) -> Result<Mongo, String> {
    if let Some(uri) = &args.mongodb_uri {
        println!("MongoDB: {uri} (yours; --mongodb-uri)");
        return Ok(Mongo::Real(uri.clone()));
    }
    #[cfg(feature = "test-double")]
    {
        let wire = mongo_wire::MongoWire::start(
            "127.0.0.1:0",
            mongo_wire::Options {
                latency: Duration::from_millis(args.latency_ms),
                jitter: Duration::from_millis(2.min(args.latency_ms)),
                ..mongo_wire::Options::default()
            },
        )
        .map_err(|e| format!("cannot start the MongoDB test double: {e}"))?;
        println!(
            "MongoDB: mongo-wire on {}, a MongoDB wire-protocol TEST DOUBLE (in memory, not a \
             database), adding {} ms to every command as a network hop would; --mongodb-uri \
             uses a real MongoDB",
            wire.addr(),
            args.latency_ms
        );
        Ok(Mongo::Double(wire))
    }
    #[cfg(not(feature = "test-double"))]
    {
        Err(
            "this build has no MongoDB test double (built without the `test-double` \
             feature, as the Docker image is): pass --mongodb-uri"
                .into(),
        )
    }
}

fn instance_config(args: &DemoArgs, uri: &str, mode: Mode, admin_port: u16, token: &str) -> Config {
    let mut c = Config {
        mode,
        ..Config::default()
    };
    c.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c.admin.listen = SocketAddr::from(([127, 0, 0, 1], admin_port));
    c.admin.token = token.to_string();
    c.mongodb.uri = uri.to_string();
    c.server.drain_timeout = Duration::from_secs(2);
    c.telemetry.spans = false;
    c.workload.report_compute_ms = args.report_compute_ms;
    c
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

fn fmt_p99(d: Option<Duration>) -> String {
    match d {
        None => "–".into(),
        Some(d) if d >= Duration::from_secs(1) => format!("{:.2} s", d.as_secs_f64()),
        Some(d) => format!("{:.0} ms", d.as_secs_f64() * 1e3),
    }
}

/// One mode's part of the summary line.
fn headline_text(mode: Mode, h: Option<&Headline>) -> String {
    let Some(h) = h else {
        return format!("{mode}: (no data yet)");
    };
    format!(
        "{mode}: {:.0}/s served, {:.0}/s refused, p99 {}, queue {}, threads {} blocked in DB, \
         reclaimed {}",
        h.served_per_s,
        h.refused_per_s,
        fmt_p99(h.p99),
        h.queue,
        pct(h.blocked),
        h.reclaimed.map_or("–".into(), pct),
    )
}

/// Runs `reclaimd demo`.
pub fn run(args: DemoArgs) -> ExitCode {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .try_init();
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 100_000.0) {
        eprintln!("reclaimd demo: --rate must be above 0 and at most 100000");
        return ExitCode::from(EX_USAGE);
    }
    if args.every.is_zero() {
        eprintln!("reclaimd demo: --every must be above 0");
        return ExitCode::from(EX_USAGE);
    }
    let mongo = match start_mongo(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("reclaimd demo: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    let uri = mongo.uri();
    let token = format!("{:016x}", rand::random::<u64>());
    let configs = [Mode::Sync, Mode::Async].map(|mode| {
        let port = match (args.port, mode) {
            (0, _) => 0,
            (p, Mode::Sync) => p,
            (p, Mode::Async) => p.saturating_add(1),
        };
        instance_config(&args, &uri, mode, port, &token)
    });
    if let Err(e) = configs[0].validate() {
        eprintln!("reclaimd demo: {e}");
        return ExitCode::from(EX_USAGE);
    }

    print!("seeding 1000 users and 10000 orders… ");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let seeded = process::runtime("", Some(1)).and_then(|rt| {
        rt.block_on(async {
            let mut opts = mongodb::options::ClientOptions::parse(&uri)
                .await
                .map_err(|e| format!("invalid MongoDB URI: {}", e.kind))?;
            opts.server_selection_timeout = Some(Duration::from_secs(5));
            let client = mongodb::Client::with_options(opts).map_err(|e| format!("{}", e.kind))?;
            crate::serve::seed::seed(
                &client.database(&configs[0].mongodb.database),
                1000,
                10_000,
                false,
            )
            .await
            .map_err(|e| format!("{}", e.kind))
        })
    });
    match seeded {
        Ok((users, orders)) => println!(
            "done ({} users and {} orders new)",
            users.inserted, orders.inserted
        ),
        Err(e) => {
            println!();
            eprintln!("reclaimd demo: seeding failed: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    }

    let [sync_config, async_config] = configs;
    let servers = Server::start(sync_config, None)
        .and_then(|s| Server::start(async_config, None).map(|a| (s, a)));
    let (sync, asyn) = match servers {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("reclaimd demo: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let hubs: [Arc<Hub>; 2] = [sync.app.live_view.clone(), asyn.app.live_view.clone()];
    hubs[0].set_name("sync instance: 1 worker thread");
    hubs[1].set_name("async instance: 1 runtime thread");
    Hub::group(&hubs);
    // The summary line reads the same counts as the page: keep them recorded.
    let _watching = hubs.each_ref().map(|h| h.watch());

    println!(
        "sync instance:  app http://{}  admin http://{}  (mode pinned: sync, 1 worker thread)",
        sync.app_addr, sync.admin_addr
    );
    println!(
        "async instance: app http://{}  admin http://{}  (mode pinned: async, 1 runtime thread)",
        asyn.app_addr, asyn.admin_addr
    );
    println!(
        "load: {} req/s of {} on each, one identical Poisson schedule (open loop)",
        args.rate, args.mix
    );
    println!();
    println!(
        "  live view, both instances:  http://{}/live",
        sync.admin_addr
    );
    println!(
        "  the async instance alone:   http://{}/live",
        asyn.admin_addr
    );
    println!("  admin token (the page's flip control, PUT /admin/mode): {token}");
    println!();
    match args.duration {
        d if d.is_zero() => println!("Ctrl-C stops everything this command started."),
        d => println!(
            "stopping after {:.0} s (Ctrl-C stops earlier).",
            d.as_secs_f64()
        ),
    }

    let plan = LoadPlan {
        targets: vec![
            format!("http://{}", sync.app_addr),
            format!("http://{}", asyn.app_addr),
        ],
        rate: args.rate,
        duration: None,
        arrivals: Arrivals::Poisson,
        mix: args.mix,
        users: 1000,
        max_in_flight: 10_000,
        timeout: Duration::from_secs(15),
        seed: rand::random(),
    };
    let rt = match process::runtime("reclaimd-demo-load", Some(1)) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("reclaimd demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (stop_load, load_stopped) = tokio::sync::oneshot::channel::<()>();
    let load = rt.spawn(crate::load::run_load(
        plan,
        async {
            let _ = load_stopped.await;
        },
        Progress::Off,
    ));

    let every = args.every;
    let duration = args.duration;
    let started = std::time::Instant::now();
    rt.block_on(async {
        let stop = async {
            if duration.is_zero() {
                std::future::pending::<()>().await;
            } else {
                tokio::time::sleep(duration).await;
            }
        };
        tokio::pin!(stop);
        let signal = process::shutdown_signal();
        tokio::pin!(signal);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                () = &mut signal => break,
                () = &mut stop => break,
                _ = tick.tick() => {
                    let secs = every.as_secs().max(1) as usize;
                    println!(
                        "t+{:>4.0}s  {}  |  {}",
                        started.elapsed().as_secs_f64(),
                        headline_text(Mode::Sync, hubs[0].summary(Mode::Sync, secs).as_ref()),
                        headline_text(Mode::Async, hubs[1].summary(Mode::Async, secs).as_ref()),
                    );
                }
            }
        }
    });
    println!("stopping: load, both instances, the MongoDB stand-in");
    let _ = stop_load.send(());
    // Requests in flight finish (bounded by the load's timeout) before the report.
    let report = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), load)
            .await
            .ok()
            .and_then(Result::ok)
    });
    sync.shutdown();
    asyn.shutdown();
    rt.shutdown_timeout(Duration::from_secs(1));
    drop(mongo);
    match report {
        Some(report) => {
            println!("\nload report (client side; target 1 = sync, 2 = async):");
            print!("{report}");
        }
        None => eprintln!("reclaimd demo: the load did not finish in time; no report"),
    }
    ExitCode::SUCCESS
}
