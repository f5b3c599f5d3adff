//! The `mongo-wire` binary: `--help` documents every option, it serves on the address it
//! prints, with `--stdin-control` each control line on standard input is acknowledged by one
//! line on standard output once it is in effect, and without it standard input is never read
//! (a background job in an interactive shell keeps serving).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mongo_wire::wire;
use mongodb::bson::{doc, Document};

const BIN: &str = env!("CARGO_BIN_EXE_mongo-wire");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_documents_every_option() {
    let out = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--listen",
        "--latency-ms",
        "--jitter-ms",
        "--refuse",
        "--stall",
        "--drop-every-ms",
        "--stdin-control",
        "Stopped (tty input)",
        "TEST DOUBLE",
        "Not implemented",
        "refuse on|off",
        "stall on|off",
        "drop",
        "stats",
        "ok <what was applied>",
        "error <why>",
    ] {
        assert!(help.contains(opt), "--help mentions {opt}:\n{help}");
    }
}

fn ping(addr: SocketAddr) -> std::io::Result<Document> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(&wire::encode_op_msg(
        1,
        0,
        &doc! { "ping": 1, "$db": "admin" },
        &[],
    ))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut rest = vec![0u8; i32::from_le_bytes(len) as usize - 4];
    s.read_exact(&mut rest)?;
    Document::from_reader(&rest[17..]).map_err(std::io::Error::other)
}

/// The listening address from the banner line on standard error.
fn banner_addr(line: &str) -> SocketAddr {
    assert!(line.contains("test double"), "{line}");
    line.split_whitespace()
        .skip_while(|w| *w != "on")
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("address in banner: {line}"))
}

#[test]
fn stdin_control_acknowledges_each_line_on_stdout_once_applied() {
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--stdin-control"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mongo-wire");
    let mut child = Killed(child);
    let mut stderr = BufReader::new(child.0.stderr.take().expect("stderr"));
    let mut acks = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut stdin = child.0.stdin.take().expect("stdin");
    let mut banner = String::new();
    stderr.read_line(&mut banner).expect("banner");
    let addr = banner_addr(&banner);
    // Standard error keeps a log; it must not fill its pipe and block the binary.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let mut send = |line: &str| -> String {
        writeln!(stdin, "{line}").expect("write control line");
        let mut ack = String::new();
        acks.read_line(&mut ack).expect("read ack");
        ack.trim_end().to_string()
    };
    assert_eq!(ping(addr).expect("ping").get_f64("ok").ok(), Some(1.0));

    assert_eq!(send("latency 20 5"), "ok latency 20ms jitter 5ms");
    // Each change is in effect when its ack arrives: no sleeping, no polling.
    assert_eq!(send("refuse on"), "ok refuse on");
    assert!(TcpStream::connect(addr).is_err(), "refusing");
    assert_eq!(send("refuse off"), "ok refuse off");
    assert_eq!(
        ping(addr).expect("listening again").get_f64("ok").ok(),
        Some(1.0)
    );

    // A connection the server has accepted (it answered on it) is closed before the ack.
    let mut open = TcpStream::connect(addr).expect("connect");
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    open.write_all(&wire::encode_op_msg(
        7,
        0,
        &doc! { "ping": 1, "$db": "admin" },
        &[],
    ))
    .expect("write");
    let mut reply_len = [0u8; 4];
    open.read_exact(&mut reply_len).expect("the server answers");
    let mut reply = vec![0u8; i32::from_le_bytes(reply_len) as usize - 4];
    open.read_exact(&mut reply).expect("whole reply");
    assert_eq!(send("drop"), "ok drop");
    let mut buf = [0u8; 1];
    match open.read(&mut buf) {
        Ok(0) => {}
        Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the connection should be closed before the ack, got {other:?}"),
    }

    assert_eq!(
        send("latency fast"),
        "error not a number of milliseconds: \"fast\""
    );
    assert_eq!(send("stall sometimes"), "error usage: stall on|off");
    assert!(send("reboot").starts_with("error unknown control command \"reboot\""));
    assert_eq!(send(""), "ok nothing");
    // Exactly one line each: the next ack is the next command's.
    let stats = send("stats");
    assert!(stats.starts_with("ok stats open_connections="), "{stats}");
    assert!(stats.contains("ping:3"), "{stats}");
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn wait_for_file(path: &Path, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The user's report: `mongo-wire ... &` in an interactive shell showed `Stopped (tty input)`
/// because it read control lines from standard input, the terminal, as a background job.
/// This runs exactly that under a pseudo-terminal (util-linux `script`) with job control on,
/// and checks that the job still answers and that the shell does not list it as stopped.
#[test]
fn backgrounded_in_an_interactive_shell_it_keeps_serving() {
    let dir = TempDir::new("mongo-wire-pty");
    let log = dir.0.join("log");
    let pid_file = dir.0.join("pid");
    let done = dir.0.join("done");
    let job = dir.0.join("job.sh");
    // `set -m`: job control, as in an interactive shell; the background job keeps the
    // terminal as its standard input but is not in the terminal's foreground process group.
    let script = r#"set -m
"$MW_BIN" --listen 127.0.0.1:0 2>"$MW_DIR/log" &
echo $! >"$MW_DIR/pid"
for _ in $(seq 300); do [ -e "$MW_DIR/done" ] && break; sleep 0.1; done
jobs -l
kill -KILL %1
"#;
    std::fs::write(&job, script).expect("write job script");
    let shell = Command::new("script")
        .args(["-qec", &format!("bash {}", job.display()), "/dev/null"])
        .env("MW_BIN", BIN)
        .env("MW_DIR", &dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the shell under a pseudo-terminal");
    let mut shell = Killed(shell);
    let pid = wait_for_file(&pid_file, "the job's pid").trim().to_string();
    // Whatever happens below, the background job must not outlive the test.
    struct KillPid(String);
    impl Drop for KillPid {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0])
                .stderr(Stdio::null())
                .status();
        }
    }
    let _job = KillPid(pid);

    let banner = wait_for_file(&log, "the banner");
    let addr = banner_addr(&banner);
    let answered = ping(addr);

    std::fs::write(&done, "").expect("signal done");
    let mut out = String::new();
    shell
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("shell output");
    let _ = shell.0.wait();
    assert!(
        answered.is_ok(),
        "the background job did not answer a ping ({answered:?}); the shell said:\n{out}"
    );
    assert!(
        out.contains("Running") && !out.contains("Stopped"),
        "the background job must be running, the shell said:\n{out}"
    );
}
