//! `reclaimd load` as a user runs it: `--duration 0` runs until SIGINT, then prints the
//! final table and writes `--json`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::eventually;
use crate::support::fake::{self, FakeOptions};
use crate::support::temp::TempPath;

#[test]
fn runs_until_sigint_then_prints_the_table_and_writes_json() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(fake::start(FakeOptions::default()));
    let json = TempPath::new("load.json");
    let child = Command::new(env!("CARGO_BIN_EXE_reclaimd"))
        .args([
            "load",
            "--target",
            &server.url(),
            "--rate",
            "50",
            "--duration",
            "0",
        ])
        .args(["--mix", "user=1,order=1", "--seed", "5", "--json"])
        .arg(json.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it send a few requests (no timing is asserted: any number is fine).
    eventually(
        "the load generator reaches the server",
        Duration::from_secs(30),
        || server.received().len() >= 10,
    );
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("until SIGINT/SIGTERM"), "{stderr}");
    for heading in [
        "target",
        "p50",
        "p99.9",
        "errors by status",
        "server phases (mean)",
    ] {
        assert!(stdout.contains(heading), "{heading:?} missing:\n{stdout}");
    }

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json.path()).unwrap()).unwrap();
    assert_eq!(report["seed"], 5);
    let t = &report["targets"][0];
    let scheduled = t["scheduled"].as_u64().unwrap();
    let received = server.received().len() as u64;
    assert!(scheduled > 0);
    // Everything that came due was sent, answered and counted before the table was printed.
    assert_eq!(received, scheduled, "{t:#}");
    let ok = t["ok"].as_u64().unwrap();
    let e503 = t["errors"]["503"].as_u64().unwrap_or(0);
    assert_eq!(ok + e503, scheduled, "{t:#}");
    assert_eq!(t["errors_total"].as_u64(), Some(e503));
    assert!(t["latency_ms"]["p99"].as_f64().unwrap() >= 20.0, "{t:#}");
    assert_eq!(t["mode"], "async");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_target_that_answers_nothing_is_a_loud_warning_and_exit_69() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(fake::start(FakeOptions::default()));
    let dead = format!("http://127.0.0.1:{}", free_port());
    let run = |targets: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reclaimd"));
        cmd.args(["load", "--rate", "40", "--duration", "300ms", "--seed", "3"])
            .args(["--mix", "user=1"]);
        for t in targets {
            cmd.args(["--target", t]);
        }
        cmd.output().unwrap()
    };

    let out = run(&[&dead]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains(&format!("WARNING: no request to {dead} succeeded"))
            && stderr.contains("connect")
            && stderr.contains("is a daemon listening at that address?"),
        "{stderr}"
    );
    // The table is still printed.
    assert!(String::from_utf8_lossy(&out.stdout).contains("errors by status"));

    // One live target and one dead: the dead one is named, the live one is not.
    let live = server.url();
    let out = run(&[&live, &dead]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains(&format!("no request to {dead}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("no request to {live}")),
        "{stderr}"
    );

    let out = run(&[&live]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn says_why_the_run_outlasts_its_duration() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(fake::start(FakeOptions {
        user_delay: Duration::from_millis(1500),
        ..FakeOptions::default()
    }));
    let out = Command::new(env!("CARGO_BIN_EXE_reclaimd"))
        .args(["load", "--target", &server.url(), "--rate", "20"])
        .args(["--duration", "200ms", "--mix", "user=1", "--seed", "4"])
        .args(["--timeout", "7s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("for 0.2s,"), "{stderr}");
    assert!(
        stderr.contains("still in flight (each for at most --timeout 7s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("after the schedule for the last responses"),
        "{stderr}"
    );
}
