//! prometheus.yml: what it scrapes, and promtool's checks of it and its rule files.

use std::collections::BTreeMap;

use super::{repo, yaml};
use crate::support::tools::{run, tool};

#[test]
#[cfg_attr(
    no_promtool,
    ignore = "promtool not found at build time: apt-get install prometheus"
)]
fn prometheus_config_and_rules_pass_promtool() {
    let promtool = tool("promtool");
    // `check config` also checks the rule files prometheus.yml names.
    let out = run(&promtool, &["check", "config", "prometheus.yml"], &repo());
    assert!(out.contains("rule files found"), "{out}");
    run(
        &promtool,
        &["check", "rules", "prometheus/rules/reclaimd.yml"],
        &repo(),
    );
    run(
        &promtool,
        &["test", "rules", "prometheus/tests/reclaimd_test.yml"],
        &repo(),
    );
}

#[test]
fn prometheus_scrapes_every_daemon_instance() {
    let config = yaml("prometheus.yml");
    let mut targets = BTreeMap::new();
    for job in config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
    {
        for sc in job["static_configs"].as_sequence().into_iter().flatten() {
            let instance = sc["labels"]["instance"].as_str().map(String::from);
            for t in sc["targets"].as_sequence().into_iter().flatten() {
                targets.insert(t.as_str().unwrap_or_default().to_string(), instance.clone());
            }
        }
    }
    for (service, target) in [
        ("reclaimd", "reclaimd:9464"),
        ("reclaimd-sync", "reclaimd-sync:9464"),
        ("reclaimd-async", "reclaimd-async:9464"),
    ] {
        assert_eq!(
            targets.get(target),
            Some(&Some(service.to_string())),
            "prometheus.yml must scrape {target} as instance=\"{service}\""
        );
    }
    let rule_files = config["rule_files"].as_sequence().expect("rule_files");
    assert!(rule_files
        .iter()
        .any(|f| f.as_str() == Some("prometheus/rules/*.yml")));
}
