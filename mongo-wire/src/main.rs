//! `mongo-wire` binary: runs the test double for benchmarks and manual runs.

use std::io::BufRead;
use std::time::Duration;

use clap::Parser;
use mongo_wire::{Handle, MongoWire, Options};

/// MongoDB wire-protocol TEST DOUBLE for reclaimd's benchmarks and tests. Not a database:
/// data lives in memory, only the commands reclaimd uses are implemented, no auth/TLS/
/// replication/transactions.
///
/// Latency is added to every data command (find, insert, aggregate, getMore, ...), never to
/// the handshake and monitoring commands (hello, isMaster, ping, buildInfo, endSessions).
///
/// Run-time control: while running, lines on standard input change the faults:
///   latency MS [JITTER_MS]   set the injected latency
///   refuse on|off            server down: close the listener and all connections / listen again
///   stall on|off             read commands and never answer them / answer again
///   drop                     close every open connection now
///   stats                    print open connections, in-flight high-water mark, command counts
#[derive(Parser, Debug)]
#[command(name = "mongo-wire", version, verbatim_doc_comment)]
struct Cli {
    /// Address to listen on (loopback only in tests).
    #[arg(long, default_value = "127.0.0.1:27017")]
    listen: String,
    /// Fixed latency added to every data command, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Extra uniform random latency in [0, N] ms added per data command.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Fault: start with the listener closed (connections refused); `refuse off` on stdin
    /// opens it on the same port.
    #[arg(long)]
    refuse: bool,
    /// Fault: start stalled (commands are read and never answered).
    #[arg(long)]
    stall: bool,
    /// Fault: close every open connection every N milliseconds (0: never).
    #[arg(long, default_value_t = 0)]
    drop_every_ms: u64,
}

fn on_off(word: Option<&str>) -> Option<bool> {
    match word {
        Some("on" | "true" | "1") => Some(true),
        Some("off" | "false" | "0") => Some(false),
        _ => None,
    }
}

fn control(handle: &Handle, line: &str) -> Result<String, String> {
    let mut words = line.split_whitespace();
    let ms = |w: Option<&str>| -> Result<Duration, String> {
        w.unwrap_or("0")
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("not a number of milliseconds in {line:?}"))
    };
    match words.next() {
        Some("latency") => {
            let latency = ms(words.next())?;
            let jitter = ms(words.next())?;
            handle.set_latency(latency, jitter);
            Ok(format!("latency {latency:?} jitter {jitter:?}"))
        }
        Some("refuse") => {
            let on = on_off(words.next()).ok_or("usage: refuse on|off")?;
            handle.set_refuse(on);
            Ok(format!("refuse {on}"))
        }
        Some("stall") => {
            let on = on_off(words.next()).ok_or("usage: stall on|off")?;
            handle.set_stall(on);
            Ok(format!("stall {on}"))
        }
        Some("drop") => {
            handle.drop_connections();
            Ok("dropped all connections".into())
        }
        Some("stats") => Ok(format!(
            "open_connections {} in_flight {} max_in_flight {} commands {:?}",
            handle.open_connections(),
            handle.in_flight(),
            handle.max_in_flight(),
            handle.command_counts()
        )),
        None => Ok(String::new()),
        Some(other) => Err(format!("unknown control command {other:?}")),
    }
}

fn main() {
    let cli = Cli::parse();
    let opts = Options {
        latency: Duration::from_millis(cli.latency_ms),
        jitter: Duration::from_millis(cli.jitter_ms),
        refuse: cli.refuse,
        stall: cli.stall,
    };
    let server = match MongoWire::start(&cli.listen, opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mongo-wire: cannot listen on {}: {e}", cli.listen);
            std::process::exit(1);
        }
    };
    eprintln!(
        "mongo-wire (test double) listening on {} latency {}ms jitter {}ms; uri {}",
        server.addr(),
        cli.latency_ms,
        cli.jitter_ms,
        server.uri()
    );
    let handle = server.handle();
    if cli.drop_every_ms > 0 {
        let h = handle.clone();
        let every = Duration::from_millis(cli.drop_every_ms);
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            h.drop_connections();
        });
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match control(&handle, &line) {
            Ok(msg) if !msg.is_empty() => eprintln!("mongo-wire: {msg}"),
            Ok(_) => {}
            Err(e) => eprintln!("mongo-wire: {e}"),
        }
    }
    // Standard input closed (or never open): serve until killed.
    loop {
        std::thread::park();
    }
}
