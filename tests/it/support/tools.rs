//! External programs some tests run (`promtool`, `docker-compose`, `bash`, `chromium`,
//! `chromedriver`).
//!
//! Whether such a test runs at all is decided when it is built: `build.rs` looks for each
//! tool on `PATH` and, when one is missing and `CI` is not `true`, sets a cfg that marks the
//! tests needing it `#[ignore = "<tool> not found: <how to install it>"]`, so the test summary
//! shows them as ignored with the reason. A test that does run finds its tool here or fails:
//! none passes by skipping.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian package that provides `name`, for the failure message.
fn package(name: &str) -> &str {
    match name {
        "promtool" => "prometheus",
        "chromedriver" => "chromium-driver",
        other => other,
    }
}

/// The path of `name` on `PATH`; panics, saying how to install it, when it is not there.
#[track_caller]
pub fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    let Some(path) = found else {
        panic!(
            "`{name}` is not on PATH (apt-get install {}); this test needs it",
            package(name)
        );
    };
    path
}

/// Runs `tool args` in `cwd` and returns stdout and stderr together; panics, showing them,
/// unless it exits 0.
#[track_caller]
pub fn run(tool: &Path, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {} failed ({}):\n{text}",
        tool.display(),
        args.join(" "),
        out.status
    );
    text
}
