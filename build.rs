//! Looks for the external programs some tests run, so that a missing one shows in the test
//! summary instead of a test quietly passing.
//!
//! For each tool missing from `PATH`, this sets `--cfg no_<tool>`, and the tests needing it
//! carry `#[cfg_attr(no_<tool>, ignore = "<tool> not found at build time: <install>")]`:
//! `cargo test` lists them as ignored, with that reason. Under `CI=true` no such cfg is ever
//! set, so those tests run and fail on the missing tool. Nothing here affects the daemon:
//! only test code reads these cfgs.

use std::path::PathBuf;

/// (program, cfg set when it is missing).
const TOOLS: &[(&str, &str)] = &[
    ("promtool", "no_promtool"),
    ("docker-compose", "no_docker_compose"),
    ("chromium", "no_chromium"),
    ("chromedriver", "no_chromedriver"),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    for (_, cfg) in TOOLS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        return;
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut missing = false;
    for (tool, cfg) in TOOLS {
        if !dirs.iter().any(|d| d.join(tool).is_file()) {
            println!("cargo::rustc-cfg={cfg}");
            missing = true;
        }
    }
    if missing {
        // Installing the tool adds it to one of these directories: look again then, so its
        // tests stop being ignored.
        for dir in dirs.iter().filter(|d| d.is_absolute() && d.is_dir()) {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
}
