//! `reclaimd demo` as a user runs it: no MongoDB, no Docker, one command.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Sse;
use crate::support::eventually;
use crate::support::raw::raw_get;

#[test]
fn demo_starts_a_test_double_two_instances_and_a_page_showing_both_and_ctrl_c_stops_everything() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reclaimd"))
        .args(["demo", "--rate", "40", "--every", "1s"])
        .args(["--latency-ms", "10"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = out.clone();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    let url_line = eventually(
        "the demo prints the live view's URL",
        Duration::from_secs(120),
        || {
            let lines = out.lock().unwrap().clone();
            lines
                .into_iter()
                .find(|l| l.contains("live view, both instances:"))
                .ok_or(())
        },
    );
    let addr: SocketAddr = url_line
        .split("http://")
        .nth(1)
        .and_then(|u| u.strip_suffix("/live"))
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {url_line:?}"));
    let (status, html) = raw_get(addr, "/live");
    assert_eq!(status, 200);
    assert!(html.contains("live lanes"));
    // One stream, both instances: a hello from each, then frames from each.
    let mut sse = Sse::open(addr);
    assert_eq!(sse.status, 200);
    let hellos = [sse.next().unwrap(), sse.next().unwrap()];
    assert_eq!(hellos[0]["mode"], "sync");
    assert_eq!(hellos[1]["mode"], "async");
    assert!(hellos[0]["name"]
        .as_str()
        .unwrap()
        .contains("sync instance"));
    assert_eq!(
        hellos[0]["token"], true,
        "the demo enables the flip control"
    );
    let frames = sse.collect_for(Duration::from_secs(2));
    for h in [&hellos[0]["h"], &hellos[1]["h"]] {
        assert!(
            frames.iter().any(|f| &f["h"] == h),
            "frames of instance {h}"
        );
    }
    drop(sse);
    eventually("three summary lines", Duration::from_secs(60), || {
        let n = out
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("t+"))
            .count();
        n >= 3
    });

    // Ctrl-C.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = eventually("the demo exits", Duration::from_secs(90), || {
        child.try_wait().unwrap()
    });
    reader.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let text = out.lock().unwrap().join("\n");
    assert!(status.success(), "{status}\n{text}\n{stderr}");
    assert!(
        text.contains("TEST DOUBLE"),
        "mongo-wire is labelled: {text}"
    );
    let summaries: Vec<&str> = text.lines().filter(|l| l.starts_with("t+")).collect();
    assert!(summaries.len() >= 3, "{text}");
    let last = summaries.last().unwrap();
    assert!(
        last.contains("sync:") && last.contains("async:") && last.contains("reclaimed"),
        "{last}"
    );
    assert!(text.contains("load report"), "{text}");
    // Everything it started is gone: the page's listener refuses connections.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
}
