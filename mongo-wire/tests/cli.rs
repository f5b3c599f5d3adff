//! The `mongo-wire` binary: `--help` documents every option, it serves on the address it
//! prints, and standard-input control lines change faults at run time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
        "TEST DOUBLE",
        "refuse on|off",
        "stall on|off",
        "drop",
        "stats",
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

#[test]
fn binary_serves_and_obeys_stdin_control() {
    let child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--latency-ms",
            "1",
            "--jitter-ms",
            "1",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn mongo-wire");
    let mut child = Killed(child);
    let mut stderr = BufReader::new(child.0.stderr.take().expect("stderr"));
    let mut stdin = child.0.stdin.take().expect("stdin");
    let mut line = String::new();
    stderr.read_line(&mut line).expect("banner");
    assert!(line.contains("test double"), "{line}");
    let addr: SocketAddr = line
        .split_whitespace()
        .skip_while(|w| *w != "on")
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("address in banner: {line}"));
    assert_eq!(ping(addr).expect("ping").get_f64("ok").ok(), Some(1.0));

    writeln!(stdin, "refuse on").expect("write control");
    line.clear();
    stderr.read_line(&mut line).expect("ack");
    assert!(line.contains("refuse true"), "{line}");
    assert!(TcpStream::connect(addr).is_err(), "refusing");
    writeln!(stdin, "refuse off").expect("write control");
    line.clear();
    stderr.read_line(&mut line).expect("ack");
    assert!(ping(addr).is_ok(), "listening again");

    writeln!(stdin, "stats").expect("write control");
    line.clear();
    stderr.read_line(&mut line).expect("stats");
    assert!(line.contains("\"ping\""), "{line}");
}
