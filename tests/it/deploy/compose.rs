//! docker-compose.yml and .env: the stack, limits, health checks, start order, ports.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use super::{read, repo, yaml};
use crate::support::tools::{run, tool};

fn services(compose: &Yaml) -> Vec<(String, &Yaml)> {
    compose["services"]
        .as_mapping()
        .expect("docker-compose.yml has services")
        .iter()
        .map(|(k, v)| (k.as_str().expect("service name").to_string(), v))
        .collect()
}

fn profiles(service: &Yaml) -> Vec<&str> {
    service["profiles"]
        .as_sequence()
        .map(|s| s.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default()
}

/// `512m` → 512 MiB.
fn mebibytes(limit: &str) -> u64 {
    let (digits, unit) = limit.split_at(limit.len() - 1);
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("bad mem_limit {limit:?}"));
    match unit {
        "m" => n,
        "g" => n * 1024,
        _ => panic!("mem_limit {limit:?}: use m or g"),
    }
}

pub fn env_of(service: &Yaml) -> BTreeMap<String, String> {
    service["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Yaml::String(s) => s.clone(),
                        other => serde_yaml_ng::to_string(other).unwrap_or_default(),
                    };
                    (k.as_str().unwrap_or_default().to_string(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn command_of(service: &Yaml) -> Vec<String> {
    service["command"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(Yaml::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Variables defined in .env.
fn dotenv() -> BTreeMap<String, String> {
    read(".env")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!(".env: bad line {l:?}"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// `${NAME}` and `${NAME:-default}` references in a compose file.
fn compose_variables(text: &str) -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        rest = &rest[start + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        vars.insert(rest[..end].to_string());
    }
    vars
}

#[test]
#[cfg_attr(
    no_docker_compose,
    ignore = "docker-compose not found at build time: apt-get install docker-compose"
)]
fn compose_file_validates_with_docker_compose() {
    let docker_compose = tool("docker-compose");
    run(
        &docker_compose,
        &["-f", "docker-compose.yml", "config", "-q"],
        &repo(),
    );
    let all = run(
        &docker_compose,
        &[
            "-f",
            "docker-compose.yml",
            "--profile",
            "side-by-side",
            "config",
            "--services",
        ],
        &repo(),
    );
    for service in ["reclaimd-sync", "reclaimd-async", "load-side-by-side"] {
        assert!(
            all.lines().any(|l| l.trim() == service),
            "side-by-side profile lacks {service}: {all}"
        );
    }
}

#[test]
fn compose_has_the_stack_the_issue_asks_for() {
    let compose = yaml("docker-compose.yml");
    let names: BTreeSet<String> = services(&compose).into_iter().map(|(n, _)| n).collect();
    for expected in [
        "mongo",
        "toxiproxy",
        "seed",
        "reclaimd",
        "load",
        "prometheus",
        "grafana",
        "tempo",
        "reclaimd-sync",
        "reclaimd-async",
        "load-side-by-side",
    ] {
        assert!(names.contains(expected), "no `{expected}` service");
    }

    let svc = |name: &str| &compose["services"][name];
    assert!(
        svc("mongo")["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("mongo:")),
        "MongoDB must be the official image"
    );

    // The daemon reaches MongoDB only through the latency proxy.
    let main_env = env_of(svc("reclaimd"));
    assert!(
        main_env["RECLAIMD_MONGODB__URI"].starts_with("mongodb://toxiproxy:"),
        "reclaimd must reach MongoDB through toxiproxy, got {}",
        main_env["RECLAIMD_MONGODB__URI"]
    );
    let proxies: Json = serde_json::from_str(&read("toxiproxy/toxiproxy.json")).expect("json");
    let proxy_port = proxies[0]["listen"]
        .as_str()
        .and_then(|l| l.rsplit(':').next())
        .expect("toxiproxy listen address");
    assert!(
        main_env["RECLAIMD_MONGODB__URI"].contains(&format!("toxiproxy:{proxy_port}")),
        "RECLAIMD_MONGODB__URI does not point at toxiproxy's listen port {proxy_port}"
    );
    assert_eq!(proxies[0]["upstream"], "mongo:27017");
    let latency_env = env_of(svc("toxiproxy-latency"));
    assert!(latency_env["MONGO_LATENCY_MS"].contains("${MONGO_LATENCY_MS"));

    // The mode of the main instance comes from the mounted file, so editing it flips the mode;
    // an environment override would pin it.
    assert!(
        !main_env.contains_key("RECLAIMD_MODE"),
        "RECLAIMD_MODE on the main instance would stop file edits from flipping the mode"
    );
    for name in ["reclaimd", "reclaimd-sync", "reclaimd-async"] {
        let volumes: Vec<&str> = svc(name)["volumes"]
            .as_sequence()
            .map(|s| s.iter().filter_map(Yaml::as_str).collect())
            .unwrap_or_default();
        assert!(
            volumes.contains(&"./config:/etc/reclaimd:ro"),
            "{name} must mount ./config read-only at /etc/reclaimd, has {volumes:?}"
        );
        let command = command_of(svc(name));
        assert_eq!(
            command,
            ["serve", "--config", "/etc/reclaimd/reclaimd.toml"],
            "{name} command"
        );
        let env = env_of(svc(name));
        assert_eq!(env["RECLAIMD_SERVER__LISTEN"], "0.0.0.0:8080", "{name}");
        assert_eq!(env["RECLAIMD_ADMIN__LISTEN"], "0.0.0.0:9464", "{name}");
        assert!(
            env["OTEL_EXPORTER_OTLP_ENDPOINT"].contains("tempo:"),
            "{name} must send traces to tempo"
        );
    }

    // Side by side: one instance per mode, one load generator driving both.
    assert_eq!(env_of(svc("reclaimd-sync"))["RECLAIMD_MODE"], "sync");
    assert_eq!(env_of(svc("reclaimd-async"))["RECLAIMD_MODE"], "async");
    for name in ["reclaimd-sync", "reclaimd-async", "load-side-by-side"] {
        assert_eq!(profiles(svc(name)), ["side-by-side"], "{name} profiles");
    }
    let both = command_of(svc("load-side-by-side"));
    assert!(both.contains(&"--target=http://reclaimd-sync:8080".to_string()));
    assert!(both.contains(&"--target=http://reclaimd-async:8080".to_string()));
    let main_load = command_of(svc("load"));
    assert_eq!(main_load[0], "load");
    assert!(main_load.contains(&"--target=http://reclaimd:8080".to_string()));
    assert!(
        main_load.contains(&"--duration=0".to_string()),
        "the load must run until the stack stops"
    );
    // Same schedule for both load services, so the side-by-side comparison is fair.
    let schedule = |cmd: &[String]| -> Vec<String> {
        cmd.iter()
            .filter(|a| !a.starts_with("--target="))
            .cloned()
            .collect()
    };
    assert_eq!(schedule(&main_load), schedule(&both));
}

#[test]
fn compose_services_have_memory_limits_healthchecks_and_ordered_startup() {
    let compose = yaml("docker-compose.yml");
    // The one-shot seed and the load generators have nothing to probe; every other service must.
    let no_healthcheck = ["seed", "load", "load-side-by-side"];
    let mut default_stack_mib = 0;
    for (name, service) in services(&compose) {
        let limit = service["mem_limit"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no mem_limit"));
        if profiles(service).is_empty() {
            default_stack_mib += mebibytes(limit);
        }

        let hc = &service["healthcheck"];
        if no_healthcheck.contains(&name.as_str()) {
            assert_eq!(
                hc["disable"],
                Yaml::Bool(true),
                "{name}: disable the image's healthcheck"
            );
        } else {
            let test = hc["test"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{name} has no healthcheck test"));
            assert!(
                matches!(
                    test.first().and_then(Yaml::as_str),
                    Some("CMD" | "CMD-SHELL")
                ),
                "{name}: healthcheck test must start with CMD or CMD-SHELL"
            );
        }

        if let Some(deps) = service.get("depends_on") {
            let deps = deps
                .as_mapping()
                .unwrap_or_else(|| panic!("{name}: depends_on must use conditions"));
            for (dep, cond) in deps {
                let dep = dep.as_str().unwrap_or_default();
                assert!(
                    compose["services"].get(dep).is_some(),
                    "{name} depends on unknown {dep}"
                );
                let cond = cond["condition"].as_str().unwrap_or_default();
                assert!(
                    [
                        "service_healthy",
                        "service_completed_successfully",
                        "service_started"
                    ]
                    .contains(&cond),
                    "{name} -> {dep}: condition {cond:?}"
                );
                if cond == "service_healthy" {
                    assert!(
                        !no_healthcheck.contains(&dep),
                        "{name} waits for {dep} to be healthy, but it has no healthcheck"
                    );
                }
            }
        }

        if let Some(image) = service["image"].as_str() {
            if service.get("build").is_none() {
                let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
                assert!(
                    !tag.is_empty() && tag != "latest" && !tag.contains('/'),
                    "{name}: pin the image to a version, not {image:?}"
                );
            }
        }
    }
    assert!(
        default_stack_mib <= 1664,
        "the default stack's memory limits add up to {default_stack_mib} MiB, over the \
         README's 1.6 GB"
    );
    // Startup order: data seeded and latency set before the daemon starts, daemon ready before load.
    let deps = |name: &str| compose["services"][name]["depends_on"].clone();
    assert_eq!(
        deps("reclaimd")["seed"]["condition"],
        "service_completed_successfully"
    );
    // The latency keeper is healthy once the toxic is on the proxy: never a daemon at 0 ms.
    assert_eq!(
        deps("reclaimd")["toxiproxy-latency"]["condition"],
        "service_healthy"
    );
    assert_eq!(deps("load")["reclaimd"]["condition"], "service_healthy");
    assert_eq!(deps("seed")["mongo"]["condition"], "service_healthy");
}

#[test]
fn compose_ports_come_from_env_and_every_variable_is_defined() {
    let text = read("docker-compose.yml");
    let env = dotenv();
    for var in compose_variables(&text) {
        assert!(
            env.contains_key(&var),
            "${{{var}}} is used but not set in .env"
        );
    }
    let compose = yaml("docker-compose.yml");
    let mut host_ports = BTreeSet::new();
    for (name, service) in services(&compose) {
        for port in service["ports"].as_sequence().into_iter().flatten() {
            let port = port.as_str().unwrap_or_default();
            assert!(
                port.starts_with("${BIND_ADDRESS:-127.0.0.1}:${") && port.contains("_PORT:-"),
                "{name}: publish ports as \"${{BIND_ADDRESS:-127.0.0.1}}:${{X_PORT:-n}}:m\", not {port:?}"
            );
            let var = port
                .trim_start_matches("${BIND_ADDRESS:-127.0.0.1}:${")
                .split(":-")
                .next()
                .unwrap_or_default();
            let value: u16 = env[var]
                .parse()
                .unwrap_or_else(|_| panic!("{var} is not a port"));
            assert!(
                ![80, 443, 3000, 5432, 6379, 8080, 9090, 27017].contains(&value),
                "{var}={value} clashes with a common local service"
            );
            assert!(host_ports.insert(value), "{var}={value} is published twice");
        }
    }
    assert_eq!(
        env["BIND_ADDRESS"], "127.0.0.1",
        "publish on loopback by default"
    );
}

#[test]
fn compose_builds_its_image_keeps_the_latency_and_lets_viewers_open_traces() {
    let compose = yaml("docker-compose.yml");
    for (name, service) in services(&compose) {
        if service.get("build").is_some() {
            assert_eq!(
                service["pull_policy"], "build",
                "{name}: build reclaimd:local, never try to pull it first"
            );
        }
    }

    // The latency is re-applied whenever toxiproxy restarts, by a service that keeps running.
    let keeper = &compose["services"]["toxiproxy-latency"];
    assert_eq!(keeper["restart"], "unless-stopped");
    let entrypoint: Vec<&str> = keeper["entrypoint"]
        .as_sequence()
        .map(|s| s.iter().filter_map(Yaml::as_str).collect())
        .unwrap_or_default();
    assert_eq!(entrypoint, ["/bin/sh", "/keep-latency.sh"]);
    let script = read("toxiproxy/keep-latency.sh");
    assert!(script.contains("set-latency.sh") && script.contains("while :"));
    let healthcheck = keeper["healthcheck"]["test"][1]
        .as_str()
        .unwrap_or_default();
    assert!(
        healthcheck.contains("/tmp/latency-ready") && script.contains("latency-ready"),
        "the healthcheck reads the file the keeper writes: {healthcheck}"
    );

    let grafana = env_of(&compose["services"]["grafana"]);
    for (key, value) in [
        ("GF_PLUGINS_PREINSTALL_DISABLED", "true"),
        ("GF_USERS_VIEWERS_CAN_EDIT", "true"),
        ("GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer"),
    ] {
        assert_eq!(
            grafana.get(key).map(String::as_str),
            Some(value),
            "grafana {key}"
        );
    }
    let limit = compose["services"]["grafana"]["mem_limit"]
        .as_str()
        .unwrap_or_default();
    assert!(mebibytes(limit) >= 384, "grafana needs headroom: {limit}");
}

#[test]
fn compose_smoke_test_skips_loudly_where_no_docker_engine_answers() {
    let smoke = |args: &[&str]| {
        std::process::Command::new("bash")
            .arg("ci/compose-smoke.sh")
            .args(args)
            // No engine by construction, even on a machine that has Docker.
            .env("DOCKER", "/nonexistent/docker")
            .current_dir(repo())
            .output()
            .expect("run bash")
    };
    let out = smoke(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "skipped, not passed: {stderr}");
    assert!(
        stderr.contains("# SKIPPED: ci/compose-smoke.sh: no '/nonexistent/docker' command")
            && stderr.contains("Nothing was tested"),
        "{stderr}"
    );
    let help = smoke(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for step in [
        "up -d --build --wait",
        "/api/ds/query",
        "Tempo",
        "flips the mode",
    ] {
        assert!(text.contains(step), "--help names {step:?}:\n{text}");
    }
    assert_eq!(smoke(&["--bogus"]).status.code(), Some(2));
}
