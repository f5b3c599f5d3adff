//! Grafana provisioning: datasources and the dashboard provider match the compose mounts.

use std::collections::BTreeMap;

use serde_yaml_ng::Value as Yaml;

use super::compose::env_of;
use super::{repo, yaml};

pub fn provisioned_datasources() -> BTreeMap<String, String> {
    let ds = yaml("grafana/provisioning/datasources/datasources.yml");
    ds["datasources"]
        .as_sequence()
        .expect("datasources")
        .iter()
        .map(|d| {
            (
                d["uid"]
                    .as_str()
                    .expect("every datasource has a uid")
                    .to_string(),
                d["type"].as_str().expect("datasource type").to_string(),
            )
        })
        .collect()
}

#[test]
fn grafana_provisioning_matches_the_compose_mounts() {
    let compose = yaml("docker-compose.yml");
    let grafana = &compose["services"]["grafana"];
    let volumes: Vec<&str> = grafana["volumes"]
        .as_sequence()
        .expect("grafana volumes")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    let dashboards_mount = volumes
        .iter()
        .find_map(|v| v.strip_prefix("./grafana/dashboards:"))
        .and_then(|rest| rest.split(':').next())
        .expect("grafana mounts ./grafana/dashboards");
    assert!(volumes.contains(&"./grafana/provisioning:/etc/grafana/provisioning:ro"));

    let providers = yaml("grafana/provisioning/dashboards/dashboards.yml");
    assert_eq!(
        providers["providers"][0]["options"]["path"].as_str(),
        Some(dashboards_mount),
        "the dashboard provider reads where compose mounts the dashboards"
    );
    let env = env_of(grafana);
    assert_eq!(
        env["GF_AUTH_ANONYMOUS_ENABLED"], "true",
        "anonymous viewing"
    );
    assert_eq!(env["GF_AUTH_ANONYMOUS_ORG_ROLE"], "Viewer", "read-only");
    let home = &env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"];
    let home_file = home
        .strip_prefix(&format!("{dashboards_mount}/"))
        .expect("home dashboard is a provisioned one");
    assert!(
        repo().join("grafana/dashboards").join(home_file).is_file(),
        "home dashboard {home} does not exist"
    );

    // Datasource URLs point at compose services on their container ports.
    let sources = yaml("grafana/provisioning/datasources/datasources.yml");
    for ds in sources["datasources"].as_sequence().expect("datasources") {
        let url = ds["url"].as_str().expect("url");
        let host = url
            .trim_start_matches("http://")
            .split(':')
            .next()
            .unwrap_or_default();
        assert!(
            compose["services"].get(host).is_some(),
            "datasource url {url} names no compose service"
        );
    }
    // $__rate_interval assumes the scrape interval Grafana is told about.
    let prometheus = yaml("prometheus.yml");
    let prom_ds = sources["datasources"]
        .as_sequence()
        .and_then(|s| s.iter().find(|d| d["type"] == "prometheus"))
        .expect("a prometheus datasource");
    assert_eq!(
        prom_ds["jsonData"]["timeInterval"],
        prometheus["global"]["scrape_interval"]
    );
}
