//! `mongo-wire` binary: runs the test double for benchmarks, CI and manual runs.

use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use mongo_wire::{control, MongoWire, Options};

/// MongoDB wire-protocol TEST DOUBLE for reclaimd's tests, CI and benchmarks: the real
/// `mongodb` driver talks to it over TCP where no MongoDB can be installed. Not a database:
/// data lives in memory and is lost on exit.
///
/// Implements: OP_MSG and the OP_QUERY handshake; hello/isMaster, ping, buildInfo,
/// endSessions; find, getMore, killCursors, count, aggregate ($match $sort $limit $skip
/// $project $count $group); insert, update ($set $setOnInsert $unset $inc, replacement,
/// upsert), delete; create, drop, dropDatabase, createIndexes (unique enforced), listIndexes,
/// listCollections, listDatabases.
/// Not implemented, answered with an error that names it (never a wrong result): other
/// commands, operators, stages and expressions; collation; regular expressions.
/// Accepted and ignored: write/read concerns, maxTimeMS. Absent by design: persistence, TLS,
/// compression, auth, replica sets (no transactions, no change streams).
///
/// Latency is added to every data command (find, insert, aggregate, getMore, ...), never to
/// the handshake and monitoring commands (hello, isMaster, ping, buildInfo, endSessions).
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
    /// Fault: start with the listener closed (connections refused); the control line
    /// `refuse off` opens it on the same port.
    #[arg(long)]
    refuse: bool,
    /// Fault: start stalled (commands are read and never answered).
    #[arg(long)]
    stall: bool,
    /// Fault: close every open connection every N milliseconds (0: never).
    #[arg(long, default_value_t = 0)]
    drop_every_ms: u64,
    /// Read control lines (below) from standard input and acknowledge each with one line on
    /// standard output. Off by default: standard input is then never read, so
    /// `mongo-wire ... &` in an interactive shell keeps running instead of being stopped for
    /// reading the terminal ("Stopped (tty input)"). With it, give it a pipe or a fifo.
    #[arg(long)]
    stdin_control: bool,
}

/// `--help` text after the options; the command list comes from the library.
fn after_help() -> String {
    format!(
        "Run-time control (with --stdin-control): one command per line on standard input:
{}
Each line gets exactly one line on standard output, written once the change is in effect:
`ok <what was applied>` (e.g. `ok latency 20ms jitter 0ms`) or `error <why>`. Wait for it
instead of sleeping, e.g. `echo 'latency 50' >&3; read -r ack <&4`. The banner and a log of
every control line go to standard error.",
        control::COMMANDS
    )
}

fn main() {
    let matches = Cli::command().after_help(after_help()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
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
    if cli.stdin_control {
        let served = control::serve(
            &handle,
            std::io::stdin().lock(),
            std::io::stdout().lock(),
            std::io::stderr(),
        );
        if let Err(e) = served {
            eprintln!("mongo-wire: control channel closed: {e}");
        }
    }
    // No control channel (or it ended): serve until killed.
    loop {
        std::thread::park();
    }
}
