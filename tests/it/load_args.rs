//! Bad arguments to `reclaimd load` exit with status 64 (EX_USAGE, as in every subcommand)
//! and say what is wrong.

use std::process::Command;

fn load(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_reclaimd"))
        .arg("load")
        .args(args)
        .output()
        .expect("run reclaimd");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_arguments_exit_64_with_a_message_naming_the_problem() {
    let cases: &[(&[&str], &str)] = &[
        (&["--rate", "0"], "the rate must be above 0"),
        (&["--rate", "lots"], "not a number of requests per second"),
        (&["--duration", "5parsecs"], "unknown unit \"parsecs\""),
        (&["--mix", "fast=1"], "unknown route \"fast\""),
        (
            &["--mix", "user=0,report=0"],
            "at least one route needs a weight",
        ),
        (&["--mix", "report"], "is not ROUTE=WEIGHT"),
        (
            &["--arrival", "bursty"],
            "invalid value 'bursty' for '--arrival",
        ),
        (&["--target", "localhost:8080"], "has no scheme"),
        (
            &["--target", "https://127.0.0.1:8080"],
            "only http:// targets",
        ),
        (&["--users", "0"], "invalid value '0' for '--users"),
        (
            &["--max-in-flight", "0"],
            "invalid value '0' for '--max-in-flight",
        ),
        (&["--timeout", "0"], "the timeout must be above 0"),
        (&["--seed=-3"], "invalid value '-3' for '--seed"),
        (
            &["--json", "/nonexistent-dir/out.json"],
            "cannot write --json",
        ),
        (&["--frobnicate"], "unexpected argument '--frobnicate'"),
    ];
    for (args, message) in cases {
        let (code, stderr) = load(args);
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected {message:?} in:\n{stderr}"
        );
    }
}

#[test]
fn help_names_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_reclaimd"))
        .args(["load", "--help"])
        .output()
        .expect("run reclaimd");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--target",
        "--rate",
        "--duration",
        "--arrival",
        "--mix",
        "--users",
        "--max-in-flight",
        "--json",
        "--seed",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
