//! The alert rules: the alerts the issue asks for, on metrics the daemon exports, each unit
//! tested.

use std::collections::BTreeSet;

use super::promql::metric_names;
use super::{exported_metrics, read, yaml, PROMETHEUS_SYNTHETIC};

fn alert_rules() -> Vec<(String, String)> {
    let rules = yaml("prometheus/rules/reclaimd.yml");
    rules["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .map(|r| {
            let name = r["alert"]
                .as_str()
                .or(r["record"].as_str())
                .unwrap_or_default()
                .to_string();
            (name, r["expr"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
fn alert_rules_cover_saturation_shedding_and_latency_slo_on_exported_metrics() {
    let rules = alert_rules();
    let names: BTreeSet<&str> = rules.iter().map(|(n, _)| n.as_str()).collect();
    for required in [
        "ReclaimdQueueSaturated",
        "ReclaimdShedding",
        "ReclaimdLatencySLO",
    ] {
        assert!(names.contains(required), "no {required} alert");
    }
    let known = exported_metrics();
    for (name, expr) in &rules {
        for metric in metric_names(expr) {
            assert!(
                known.contains(&metric) || PROMETHEUS_SYNTHETIC.contains(&metric.as_str()),
                "alert {name} uses {metric}, which the daemon does not export"
            );
        }
    }
    // Each alert is exercised by the promtool unit tests.
    let tests = read("prometheus/tests/reclaimd_test.yml");
    for name in names {
        assert!(
            tests.contains(&format!("alertname: {name}")),
            "{name} has no unit test"
        );
    }
}
