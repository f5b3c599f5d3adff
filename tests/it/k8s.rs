//! Kubernetes: the config file as the kubelet lays out a ConfigMap volume.
//!
//! `deploy/k8s/` mounts the `reclaimd-config` ConfigMap as a directory, so that
//! `kubectl edit configmap reclaimd-config` flips the mode without a restart. The kubelet
//! never rewrites a file in place there: every version of the ConfigMap is a new
//! timestamped directory, and the visible file is a chain of symlinks,
//!
//! ```text
//! reclaimd.toml -> ..data/reclaimd.toml
//! ..data        -> ..2026_11_28_10_00_00.123456789
//! ```
//!
//! An update writes the next `..<timestamp>` directory, points a new `..data_tmp` symlink at
//! it, renames that over `..data` (atomic), then deletes the old directory
//! (`pkg/volume/util/atomic_writer.go`). These tests replay that sequence against a running
//! daemon whose `--config` is the `reclaimd.toml` symlink.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reclaimd::api::Mode;

use crate::support::app::TestApp;
use crate::support::eventually;
use crate::support::raw::raw_get;

const FILE: &str = "reclaimd.toml";

/// A ConfigMap volume directory, written the way the kubelet writes one.
struct ConfigMapVolume {
    dir: PathBuf,
    version: u32,
}

impl ConfigMapVolume {
    /// The first version: `..<ts>/reclaimd.toml`, `..data`, and the `reclaimd.toml` link.
    fn new(toml: &str) -> ConfigMapVolume {
        let dir = std::env::temp_dir().join(format!(
            "reclaimd-k8s-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut volume = ConfigMapVolume { dir, version: 0 };
        let first = volume.write_version(toml);
        std::os::unix::fs::symlink(&first, volume.dir.join("..data")).unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(FILE), volume.path()).unwrap();
        volume
    }

    /// What the daemon is given as `--config`.
    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// Writes the payload into a fresh timestamped directory; returns its name.
    fn write_version(&mut self, toml: &str) -> String {
        self.version += 1;
        let name = format!("..2026_11_28_10_00_{:02}.{:09}", self.version, self.version);
        std::fs::create_dir(self.dir.join(&name)).unwrap();
        std::fs::write(self.dir.join(&name).join(FILE), toml).unwrap();
        name
    }

    /// The kubelet's update: new directory, `..data_tmp` renamed over `..data`, old
    /// directory removed. `same_mtime_as_before` stamps the new file with the old one's
    /// modification time, as a filesystem with coarse timestamps can (or two updates within
    /// one timestamp tick).
    fn update(&mut self, toml: &str, same_mtime_as_before: bool) {
        let old = std::fs::read_link(self.dir.join("..data")).unwrap();
        let old_mtime = std::fs::metadata(self.path()).unwrap().modified().unwrap();
        let new = self.write_version(toml);
        if same_mtime_as_before {
            let file = std::fs::File::options()
                .write(true)
                .open(self.dir.join(&new).join(FILE))
                .unwrap();
            file.set_modified(old_mtime).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.join(old)).unwrap();
    }
}

impl Drop for ConfigMapVolume {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A daemon (against a seeded mongo-wire) whose config file is `volume.path()`, with the
/// listeners and MongoDB URI set outside the file, as `deploy/k8s/` sets them in the
/// Deployment's environment.
fn start(volume: &ConfigMapVolume) -> TestApp {
    TestApp::start_with_config_at(0, &volume.path())
}

/// Waits until a request is served in `mode`.
fn await_mode(app: &TestApp, mode: Mode, what: &str) {
    eventually(what, Duration::from_secs(10), || {
        let r = app.get("/api/users/1");
        assert_eq!(r.status, 200, "{what}: {r:?}");
        (r.mode() == mode).then_some(()).ok_or(r.mode())
    });
}

fn reloads(app: &TestApp, result: &str) -> f64 {
    app.metric(&format!(
        "reclaimd_config_reloads_total{{result=\"{result}\"}}"
    ))
}

#[test]
fn configmap_symlink_swap_flips_the_mode_both_ways() {
    let mut volume = ConfigMapVolume::new("mode = \"sync\"\n");
    let app = start(&volume);
    assert_eq!(app.get("/api/users/1").mode(), Mode::Sync);
    // The kubelet leaves the old version alone until the swap: nothing to notice yet, over
    // several of the watcher's polls.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(reloads(&app, "ok"), 0.0, "no reload without a change");

    volume.update("mode = \"async\"\n", false);
    await_mode(&app, Mode::Async, "first ConfigMap update");
    let (status, body) = raw_get(app.server().admin_addr, "/admin/mode");
    assert_eq!((status, body.as_str()), (200, r#"{"mode":"async"}"#));
    assert_eq!(app.metric(r#"reclaimd_mode{mode="async"}"#), 1.0);

    // A second update: the watcher follows `..data` again, not the directory it first saw
    // (which the kubelet has deleted).
    volume.update(
        "mode = \"sync\"\n[workload]\nuser_compute_ms = 0.3\n",
        false,
    );
    await_mode(&app, Mode::Sync, "second ConfigMap update");
    assert_eq!(app.metric(r#"reclaimd_mode{mode="sync"}"#), 1.0);

    assert!(reloads(&app, "ok") >= 2.0, "each swap reloads");
    assert_eq!(
        reloads(&app, "error"),
        0.0,
        "the atomic swap never shows the daemon a missing or half-written file"
    );
}

#[test]
fn configmap_swap_to_a_file_of_the_same_size_and_mtime_is_noticed() {
    // Same length: only the mode differs. The new file also gets the old one's mtime, so
    // modification time and size alone cannot tell the versions apart; the file behind the
    // symlink is a different file all the same.
    let (sync, async_) = ("mode = \"sync\" \n", "mode = \"async\"\n");
    assert_eq!(sync.len(), async_.len());
    let mut volume = ConfigMapVolume::new(sync);
    let app = start(&volume);
    assert_eq!(app.get("/api/users/1").mode(), Mode::Sync);
    let before = std::fs::metadata(volume.path()).unwrap();

    volume.update(async_, true);
    let after = std::fs::metadata(volume.path()).unwrap();
    assert_eq!(
        (after.modified().unwrap(), after.len()),
        (before.modified().unwrap(), before.len()),
        "the test's premise: identical mtime and size"
    );
    await_mode(&app, Mode::Async, "same-size, same-mtime ConfigMap update");
    assert_eq!(reloads(&app, "error"), 0.0);
}

/// `deploy/k8s/base/prometheusrule.yaml` is `prometheus/rules/reclaimd.yml` under `spec:`,
/// line for line: one source of truth for the alert rules (`render-prometheusrule.sh` writes
/// it; `ci/k8s-validate.sh` also checks the kustomize-rendered rule with promtool).
#[test]
fn prometheusrule_spec_is_the_rule_file() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rule = std::fs::read_to_string(repo.join("deploy/k8s/base/prometheusrule.yaml")).unwrap();
    let source = std::fs::read_to_string(repo.join("prometheus/rules/reclaimd.yml")).unwrap();
    let (_, body) = rule
        .split_once("\nspec:\n")
        .expect("a top-level spec: holds the rule file");
    let unindented: String = body
        .split_inclusive('\n')
        .map(|line| {
            line.strip_prefix("  ").unwrap_or_else(|| {
                assert_eq!(
                    line, "\n",
                    "every line of spec is indented by two: {line:?}"
                );
                line
            })
        })
        .collect();
    assert_eq!(
        unindented, source,
        "stale: run deploy/k8s/render-prometheusrule.sh"
    );

    let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&rule).unwrap();
    let groups: serde_yaml_ng::Value = serde_yaml_ng::from_str(&source).unwrap();
    assert_eq!(parsed["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(parsed["kind"], "PrometheusRule");
    assert_eq!(parsed["spec"], groups);
}
