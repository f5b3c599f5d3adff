//! Static checks of the deployment: docker-compose.yml and the Dockerfile, prometheus.yml and
//! its alert rules, Grafana provisioning and dashboards. Nothing here starts a container.
//!
//! - [`compose`]: docker-compose.yml and .env (validated by `docker-compose config`).
//! - [`dockerfile`]: the image build.
//! - [`prometheus`]: prometheus.yml (validated by `promtool check config`).
//! - [`rules`]: the alert rules and their promtool unit tests.
//! - [`grafana`]: datasource and dashboard provisioning against the compose mounts.
//! - [`dashboards`]: every dashboard's panels and PromQL queries.
//! - [`promql`]: the metric names a query selects (parsed by `promql-parser`), and Grafana
//!   variable substitution.
//! - [`toxiproxy`]: the latency keeper script against a stand-in for toxiproxy's API.
//!
//! Checks that need `docker-compose` or `promtool` are ignored, with the reason, when the tool
//! was missing at build time, except under `CI=true`, where they fail (see build.rs).

mod compose;
mod dashboards;
mod dockerfile;
mod grafana;
mod prometheus;
mod promql;
mod rules;
mod toxiproxy;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

/// Series Prometheus itself writes for every target.
pub const PROMETHEUS_SYNTHETIC: &[&str] = &["up"];

/// The metric families the daemon exports, as the daemon itself lists them.
pub fn exported_metrics() -> BTreeSet<String> {
    reclaimd::observe::exported_metric_names()
        .into_iter()
        .collect()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn yaml(rel: &str) -> Yaml {
    let mut value: Yaml =
        serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    // docker-compose.yml shares settings through `<<: *anchor` merge keys.
    value.apply_merge().unwrap_or_else(|e| panic!("{rel}: {e}"));
    value
}

pub fn json(path: &Path) -> Json {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
