//! `reclaimd serve` as a subprocess, as a user runs it: configured by a file and the
//! environment, its stderr log collected line by line, stopped by SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use mongo_wire::MongoWire;

use super::poll::eventually;
use super::temp::TempPath;

/// A running `reclaimd serve`; killed on drop if still running.
pub struct Daemon {
    child: Child,
    pub app: SocketAddr,
    pub admin: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// Reads stderr into `log` until the daemon closes it (at exit).
    reader: Option<JoinHandle<()>>,
    _config: TempPath,
}

impl Daemon {
    /// Starts the daemon on port 0 against `wire`, in sync mode from a config file, with
    /// `env` on top; no `OTEL_*`, `RECLAIMD_*` or `RUST_LOG` is inherited from the test's
    /// environment. Returns once it logs the addresses it serves on.
    pub fn start(wire: &MongoWire, env: &[(&str, &str)]) -> Daemon {
        Self::start_with_args(wire, env, &[])
    }

    /// Like `start`, with `args` after `serve --config FILE`.
    pub fn start_with_args(wire: &MongoWire, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        let config = TempPath::new("daemon.toml");
        std::fs::write(config.path(), "mode = \"sync\"\n").unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_reclaimd"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config.path())
            .args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("OTEL_") || k.starts_with("RECLAIMD_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.env("RECLAIMD_SERVER__LISTEN", "127.0.0.1:0")
            .env("RECLAIMD_ADMIN__LISTEN", "127.0.0.1:0")
            .env("RECLAIMD_MONGODB__URI", wire.uri())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // Export soon after each span ends, so span tests don't wait for the 5 s default.
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut daemon = Daemon {
            child,
            app: "0.0.0.0:0".parse().unwrap(),
            admin: "0.0.0.0:0".parse().unwrap(),
            log,
            reader: Some(reader),
            _config: config,
        };
        let line = daemon.wait_for_log("reclaimd serving");
        daemon.app = field(&line, "app_addr");
        daemon.admin = field(&line, "admin_addr");
        daemon
    }

    /// The log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The first log line containing `text`, waiting up to a minute for it.
    pub fn wait_for_log(&mut self, text: &str) -> String {
        eventually(
            &format!("the daemon logs {text:?}"),
            Duration::from_secs(60),
            || {
                if let Some(line) = self.log().into_iter().find(|l| l.contains(text)) {
                    return Ok(line);
                }
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "daemon exited ({status}) before logging {text:?}: {:#?}",
                        self.log()
                    );
                }
                Err(self.log())
            },
        )
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
    }

    /// Waits up to a minute for the daemon to exit, then for the last of its log.
    pub fn wait(&mut self) -> ExitStatus {
        let status = eventually("the daemon exits", Duration::from_secs(60), || {
            self.child.try_wait().unwrap()
        });
        if let Some(reader) = self.reader.take() {
            reader
                .join()
                .expect("the log reader ends when stderr closes");
        }
        status
    }

    /// SIGTERM, then a clean exit (the daemon drains and flushes telemetry on the way out);
    /// returns the whole log.
    pub fn terminate(mut self) -> Vec<String> {
        self.sigterm();
        let status = self.wait();
        assert!(status.success(), "exit {status}: {:#?}", self.log());
        self.log()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `key=value` from a log line, as an address.
fn field(line: &str, key: &str) -> SocketAddr {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}
