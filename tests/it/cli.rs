//! The command line as a user meets it: exit statuses (0, 64, 69) and configuration errors
//! that name their source on one line, from the real binary.

use std::process::{Command, Output};

use crate::support::daemon::Daemon;
use crate::support::raw::raw_get;
use crate::support::temp::TempPath;
use crate::support::wire::start_wire;

/// `reclaimd ARGS` with no `RECLAIMD_*` from the test's environment, plus `env`.
fn reclaimd(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_reclaimd"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("RECLAIMD_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run reclaimd")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_and_version_exit_0_and_bad_arguments_exit_64_in_every_subcommand() {
    for args in [
        &["--help"][..],
        &["--version"],
        &["serve", "--help"],
        &["seed", "--help"],
        &["load", "--help"],
        &["scenario", "lecture", "--help"],
        &["check-config", "--help"],
    ] {
        let out = reclaimd(args, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(!out.stdout.is_empty(), "{args:?} prints to stdout");
    }
    let help = String::from_utf8_lossy(&reclaimd(&["--help"], &[]).stdout).into_owned();
    for status in ["Exit status:", "64 ", "69 "] {
        assert!(
            help.contains(status),
            "--help documents {status:?}:\n{help}"
        );
    }

    for (args, says) in [
        (&[][..], "Usage:"),
        (&["frobnicate"], "unrecognized subcommand"),
        (&["serve", "--mode", "turbo"], "--mode"),
        (&["serve", "--bogus"], "--bogus"),
        (&["seed", "--users", "lots"], "--users"),
        (&["check-config", "--config"], "--config"),
        (&["load", "--rate", "0"], "the rate must be above 0"),
        (&["scenario", "lecture", "--width", "3"], "--width"),
        (&["scenario", "sermon"], "sermon"),
    ] {
        let out = reclaimd(args, &[]);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}: errors go to stderr");
    }
}

#[test]
fn a_host_name_in_a_listen_flag_is_refused_with_the_value_and_the_fix() {
    let out = reclaimd(&["serve", "--listen", "localhost:8080"], &[]);
    assert_eq!(out.status.code(), Some(64));
    let err = stderr(&out);
    assert!(
        err.contains("--listen")
            && err.contains("\"localhost:8080\"")
            && err.contains("write 127.0.0.1"),
        "{err}"
    );
}

/// The one `reclaimd: invalid configuration: ...` line, asserting there is exactly one.
fn config_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(64), "{}", stderr(out));
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    lines[0]
        .strip_prefix("reclaimd: invalid configuration: ")
        .unwrap_or_else(|| panic!("prefix: {err}"))
        .to_string()
}

#[test]
fn config_errors_name_the_file_and_line_the_variable_or_the_flag() {
    let file = TempPath::new("first-hour.toml");
    let path = file.path().to_str().unwrap().to_string();
    std::fs::write(file.path(), "# my config\n\nmode = 1\n").unwrap();
    for sub in ["check-config", "serve"] {
        let e = config_error(&reclaimd(&[sub, "--config", &path], &[]));
        assert_eq!(
            e,
            format!(r#"{path}:3: mode must be "sync" or "async" (got 1)"#)
        );
    }

    std::fs::write(file.path(), "[server]\nlisten = \"localhost:8080\"\n").unwrap();
    let e = config_error(&reclaimd(&["serve", "--config", &path], &[]));
    assert!(
        e.starts_with(&format!(
            "{path}:2: server.listen must be an IP address and port"
        )) && e.contains("(got \"localhost:8080\")"),
        "{e}"
    );

    std::fs::write(file.path(), "[sync]\nworkers = \"4\"\n").unwrap();
    let e = config_error(&reclaimd(&["check-config", "--config", &path], &[]));
    assert_eq!(
        e,
        format!(r#"{path}:2: sync.workers must be a whole number ≥ 0 (got "4")"#)
    );

    std::fs::write(file.path(), "mode = \"sync\"\n").unwrap();
    let e = config_error(&reclaimd(
        &["check-config", "--config", &path],
        &[("RECLAIMD_MODE", "bogus")],
    ));
    assert_eq!(
        e,
        r#"environment variable RECLAIMD_MODE: mode must be "sync" or "async" (got "bogus")"#
    );

    let e = config_error(&reclaimd(
        &[
            "serve",
            "--config",
            &path,
            "--mongodb-uri",
            "postgres://u:pw@db",
        ],
        &[],
    ));
    assert_eq!(
        e,
        "flag --mongodb-uri: mongodb.uri must start with mongodb:// or mongodb+srv://"
    );

    // An explicit --config that does not exist is an error; the default path may be absent.
    let gone = format!("{path}.missing");
    let e = config_error(&reclaimd(&["check-config", "--config", &gone], &[]));
    assert!(
        e.starts_with(&format!("{gone}: cannot read the config file")),
        "{e}"
    );
}

#[test]
fn seed_and_serve_take_the_mongodb_uri_flag_over_the_environment() {
    let wire = start_wire(0);
    // The environment points at nothing; the flag wins.
    let dead = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300";
    let out = reclaimd(
        &[
            "seed",
            "--users",
            "51",
            "--orders",
            "501",
            "--mongodb-uri",
            &wire.uri(),
        ],
        &[("RECLAIMD_MONGODB__URI", dead)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("users 1 new, 50 existing"), "{stdout}");

    let daemon = Daemon::start_with_args(
        &wire,
        &[("RECLAIMD_MONGODB__URI", dead)],
        &["--mongodb-uri", &wire.uri()],
    );
    assert_eq!(raw_get(daemon.admin, "/readyz").0, 200);
    let (status, body) = raw_get(daemon.app, "/api/users/51");
    assert_eq!(status, 200, "{body}");
    daemon.terminate();
}

#[test]
fn seed_against_no_mongodb_exits_69() {
    let out = reclaimd(
        &[
            "seed",
            "--users",
            "1",
            "--orders",
            "1",
            "--mongodb-uri",
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
        ],
        &[("RECLAIMD_MONGODB__SERVER_SELECTION_TIMEOUT", "300ms")],
    );
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
}
