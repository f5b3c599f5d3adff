//! The run-time control protocol: one text command per line in, exactly one acknowledgement
//! line out, written and flushed once the change is in effect: `ok <what was applied>` or
//! `error <why>`. A script waits for the `ok` line instead of sleeping and hoping the change
//! landed.
//!
//! The binary speaks it on standard input/standard output only with `--stdin-control`: a
//! process that reads its terminal while it runs as a background job is stopped by the kernel
//! (the shell shows `Stopped (tty input)`), so by default standard input is never touched.

use std::io::{self, BufRead, Write};
use std::time::Duration;

use crate::Handle;

/// The commands, as `--help` lists them.
pub const COMMANDS: &str = concat!(
    "  latency MS [JITTER_MS]   set the injected latency (plus uniform jitter in [0, JITTER_MS])\n",
    "  refuse on|off            server down: close the listener and all connections / listen again\n",
    "  stall on|off             read commands and never answer them / answer again\n",
    "  drop                     close every open connection now\n",
    "  stats                    open connections, in-flight commands, high-water mark, counts",
);

/// One parsed control line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Nothing,
    Latency { ms: u64, jitter_ms: u64 },
    Refuse(bool),
    Stall(bool),
    Drop,
    Stats,
}

fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let ms = |w: &str| {
        w.parse::<u64>()
            .map_err(|_| format!("not a number of milliseconds: {w:?}"))
    };
    let on_off = |w: &str| match w {
        "on" | "true" | "1" => Some(true),
        "off" | "false" | "0" => Some(false),
        _ => None,
    };
    match words.as_slice() {
        [] => Ok(Command::Nothing),
        ["latency", ms_arg] => Ok(Command::Latency {
            ms: ms(ms_arg)?,
            jitter_ms: 0,
        }),
        ["latency", ms_arg, jitter] => Ok(Command::Latency {
            ms: ms(ms_arg)?,
            jitter_ms: ms(jitter)?,
        }),
        ["latency", ..] => Err("usage: latency MS [JITTER_MS]".into()),
        ["refuse", w] if on_off(w).is_some() => Ok(Command::Refuse(on_off(w) == Some(true))),
        ["refuse", ..] => Err("usage: refuse on|off".into()),
        ["stall", w] if on_off(w).is_some() => Ok(Command::Stall(on_off(w) == Some(true))),
        ["stall", ..] => Err("usage: stall on|off".into()),
        ["drop"] => Ok(Command::Drop),
        ["drop", ..] => Err("usage: drop".into()),
        ["stats"] => Ok(Command::Stats),
        ["stats", ..] => Err("usage: stats".into()),
        [other, ..] => Err(format!(
            "unknown control command {other:?} (latency, refuse, stall, drop, stats)"
        )),
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// Applies one control line and returns what was applied (the text after `ok `) or why not
/// (after `error `). Returns once the change is in effect: connections closed, the listener
/// closed or listening again.
fn apply(handle: &Handle, line: &str) -> Result<String, String> {
    Ok(match parse(line)? {
        Command::Nothing => "nothing".into(),
        Command::Latency { ms, jitter_ms } => {
            handle.set_latency(Duration::from_millis(ms), Duration::from_millis(jitter_ms));
            format!("latency {ms}ms jitter {jitter_ms}ms")
        }
        Command::Refuse(on) => {
            if !handle.shared.set_refuse(on) {
                return Err(if on {
                    "refuse on: connections still open after 5 s".into()
                } else {
                    "refuse off: not listening yet (re-binding the port failed; still trying)"
                        .into()
                });
            }
            format!("refuse {}", on_off(on))
        }
        Command::Stall(on) => {
            handle.set_stall(on);
            format!("stall {}", on_off(on))
        }
        Command::Drop => {
            if !handle.shared.drop_connections() {
                return Err("drop: connections still open after 5 s".into());
            }
            "drop".into()
        }
        Command::Stats => {
            let counts: Vec<String> = handle
                .command_counts()
                .into_iter()
                .map(|(name, n)| format!("{name}:{n}"))
                .collect();
            format!(
                "stats open_connections={} in_flight={} max_in_flight={} commands={}",
                handle.open_connections(),
                handle.in_flight(),
                handle.max_in_flight(),
                counts.join(",")
            )
        }
    })
}

/// Reads control lines from `input` until it ends, applying each and writing its one
/// acknowledgement line to `acks` (flushed at once). Every line gets an answer, invalid UTF-8
/// and blank lines included. `log` gets a human-readable copy of each acknowledgement.
/// Fails only when `input` or `acks` fail.
pub fn serve(
    handle: &Handle,
    mut input: impl BufRead,
    mut acks: impl Write,
    mut log: impl Write,
) -> io::Result<()> {
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&raw);
        let ack = match apply(handle, &line) {
            Ok(done) => format!("ok {done}"),
            Err(why) => format!("error {why}"),
        };
        writeln!(acks, "{ack}")?;
        acks.flush()?;
        // The log is a courtesy: a closed stderr must not stop the control channel.
        let _ = writeln!(log, "mongo-wire: {} -> {ack}", line.trim());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MongoWire, Options};

    #[test]
    fn lines_parse_strictly() {
        assert_eq!(parse("  "), Ok(Command::Nothing));
        assert_eq!(
            parse("latency 20"),
            Ok(Command::Latency {
                ms: 20,
                jitter_ms: 0
            })
        );
        assert_eq!(
            parse("latency 20 5\r\n"),
            Ok(Command::Latency {
                ms: 20,
                jitter_ms: 5
            })
        );
        assert_eq!(parse("refuse on"), Ok(Command::Refuse(true)));
        assert_eq!(parse("stall off"), Ok(Command::Stall(false)));
        assert_eq!(parse("drop"), Ok(Command::Drop));
        assert_eq!(parse("stats"), Ok(Command::Stats));
        for bad in [
            "latency",
            "latency x",
            "latency -1",
            "latency 1 2 3",
            "refuse",
            "refuse maybe",
            "stall on now",
            "drop all",
            "reboot",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} is rejected");
        }
    }

    #[test]
    fn every_line_gets_exactly_one_ack_once_applied() {
        let server = MongoWire::start("127.0.0.1:0", Options::default()).expect("start");
        let h = server.handle();
        let input: &[u8] = b"latency 20 5\nbogus\n\nstall on\n\xff\xfe\nstall off\nrefuse on\n";
        let mut acks = Vec::new();
        serve(&h, input, &mut acks, io::sink()).expect("serve");
        let acks = String::from_utf8(acks).expect("utf-8 acks");
        let lines: Vec<&str> = acks.lines().collect();
        assert_eq!(
            lines,
            [
                "ok latency 20ms jitter 5ms",
                "error unknown control command \"bogus\" (latency, refuse, stall, drop, stats)",
                "ok nothing",
                "ok stall on",
                "error unknown control command \"\u{fffd}\u{fffd}\" (latency, refuse, stall, drop, stats)",
                "ok stall off",
                "ok refuse on",
            ]
        );
        // In effect by the time the ack was written.
        assert!(std::net::TcpStream::connect(server.addr()).is_err());
        let ack = apply(&h, "refuse off").expect("listening again");
        assert_eq!(ack, "refuse off");
        std::net::TcpStream::connect(server.addr()).expect("listening");
    }
}
