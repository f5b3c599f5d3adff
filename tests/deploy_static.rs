//! Static checks of the deployment: docker-compose.yml, prometheus.yml and its alert rules,
//! Grafana provisioning and dashboards. Nothing here starts a container.
//!
//! Checks that need an external tool (`docker-compose`, `promtool`) fail under `CI=true` when
//! the tool is missing and are skipped, with a message saying so, otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

/// Series Prometheus itself writes for every target.
const PROMETHEUS_SYNTHETIC: &[&str] = &["up"];

/// The metric families the daemon exports, as the daemon itself lists them.
fn exported_metrics() -> BTreeSet<String> {
    reclaimd::observe::metrics::exported_metric_names()
        .into_iter()
        .collect()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml(rel: &str) -> Yaml {
    let mut value: Yaml =
        serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    // docker-compose.yml shares settings through `<<: *anchor` merge keys.
    value.apply_merge().unwrap_or_else(|e| panic!("{rel}: {e}"));
    value
}

fn json(path: &Path) -> Json {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Finds `name` on PATH. When it is missing: panics under `CI=true`, otherwise prints why the
/// test is skipped and returns None.
fn require_tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!("`{name}` is not installed (apt-get install -y {package})");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}; it is required under CI=true");
        }
        eprintln!("SKIPPED: {msg}");
    }
    found
}

fn run(tool: &Path, args: &[&str], cwd: &Path) -> String {
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

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

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

fn env_of(service: &Yaml) -> BTreeMap<String, String> {
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
fn compose_file_validates_with_docker_compose() {
    let Some(tool) = require_tool("docker-compose", "docker-compose") else {
        return;
    };
    run(
        &tool,
        &["-f", "docker-compose.yml", "config", "-q"],
        &repo(),
    );
    let all = run(
        &tool,
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
    // One-shot jobs and the load generators have nothing to probe; every other service must.
    let no_healthcheck = ["toxiproxy-latency", "seed", "load", "load-side-by-side"];
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
        default_stack_mib <= 1536,
        "the default stack's memory limits add up to {default_stack_mib} MiB, over 1.5 GiB"
    );
    // Startup order: data seeded and latency set before the daemon starts, daemon ready before load.
    let deps = |name: &str| compose["services"][name]["depends_on"].clone();
    assert_eq!(
        deps("reclaimd")["seed"]["condition"],
        "service_completed_successfully"
    );
    assert_eq!(
        deps("reclaimd")["toxiproxy-latency"]["condition"],
        "service_completed_successfully"
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
fn dockerfile_is_multi_stage_slim_non_root_with_healthcheck() {
    let dockerfile = read("Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(froms.len() >= 2, "multi-stage build: {froms:?}");
    assert!(
        froms.last().is_some_and(|f| f.contains("-slim")),
        "runtime stage must be a slim image: {froms:?}"
    );
    let runtime = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, r)| r)
        .unwrap_or_default();
    assert!(
        runtime.contains("COPY --from="),
        "runtime copies the built binary"
    );
    let user = runtime
        .lines()
        .find(|l| l.starts_with("USER "))
        .expect("runtime stage sets USER");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(
        runtime.contains("HEALTHCHECK "),
        "runtime stage has a HEALTHCHECK"
    );
    assert!(runtime.contains("ENTRYPOINT [\"reclaimd\"]"));
    // The build context must not drag in build output.
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

// ---------------------------------------------------------------------------------------------
// Prometheus

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    let Some(promtool) = require_tool("promtool", "prometheus") else {
        return;
    };
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

// ---------------------------------------------------------------------------------------------
// Grafana

fn dashboards() -> Vec<(String, Json)> {
    let dir = repo().join("grafana/dashboards");
    let mut out: Vec<(String, Json)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                json(&p),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no dashboards in grafana/dashboards");
    out
}

/// Panels, rows' nested panels included.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for nested in p["panels"].as_array().into_iter().flatten() {
            out.push(nested);
        }
    }
    out
}

fn provisioned_datasources() -> BTreeMap<String, String> {
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

/// One PromQL query a dashboard makes, with where it comes from.
struct Query {
    place: String,
    expr: String,
}

/// Every PromQL expression in a dashboard: panel targets, annotations, and query variables
/// (`label_values(metric, label)` is reduced to `metric`).
fn promql_queries(file: &str, dashboard: &Json) -> Vec<Query> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for t in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                out.push(Query {
                    place: format!("{file}: panel {:?} target {}", panel["title"], t["refId"]),
                    expr: expr.to_string(),
                });
            }
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = a["expr"].as_str() {
            out.push(Query {
                place: format!("{file}: annotation {:?}", a["name"]),
                expr: expr.to_string(),
            });
        }
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap_or_default();
            let expr = q
                .strip_prefix("label_values(")
                .and_then(|r| r.split(',').next())
                .map(str::trim)
                .unwrap_or(q);
            out.push(Query {
                place: format!("{file}: variable {:?}", v["name"]),
                expr: expr.to_string(),
            });
        }
    }
    out
}

/// Replaces Grafana's variables with concrete values, as Grafana would before sending the
/// query: built-in intervals with durations, the dashboard's own variables with `.*` (they are
/// used in regex matchers). Panics on a variable the dashboard does not define.
fn substitute_variables(expr: &str, dashboard_vars: &BTreeSet<String>) -> String {
    let builtin = |name: &str| match name {
        "__rate_interval" => Some("1m"),
        "__interval" => Some("15s"),
        "__range" => Some("5m"),
        _ => None,
    };
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let (name, consumed) = if let Some(braced) = rest.strip_prefix('{') {
            let end = braced.find('}').expect("unclosed ${");
            let name = braced[..end].split(':').next().unwrap_or_default();
            (name, end + 2)
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], end)
        };
        let value = builtin(name)
            .map(String::from)
            .or_else(|| dashboard_vars.contains(name).then(|| ".*".to_string()))
            .unwrap_or_else(|| panic!("unknown Grafana variable ${name} in {expr}"));
        out.push_str(&value);
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    out
}

fn dashboard_variables(dashboard: &Json) -> BTreeSet<String> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect()
}

/// The metric names a PromQL expression selects. A small lexer: it skips strings, label
/// matchers `{...}`, ranges `[...]`, numbers and durations, grouping lists (`by (...)`,
/// `on (...)`, ...), keywords, and function or aggregation names; what is left are metrics.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: &[&str] = &[
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_string = |i: &mut usize| {
        let quote = chars[*i];
        *i += 1;
        while *i < chars.len() && chars[*i] != quote {
            if chars[*i] == '\\' && quote != '`' {
                *i += 1;
            }
            *i += 1;
        }
        *i += 1;
    };
    let skip_until = |i: &mut usize, close: char| {
        while *i < chars.len() && chars[*i] != close {
            if matches!(chars[*i], '"' | '\'' | '`') {
                skip_string(i);
            } else {
                *i += 1;
            }
        }
        *i += 1;
    };
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            skip_string(&mut i);
        } else if c == '{' {
            skip_until(&mut i, '}');
        } else if c == '[' {
            skip_until(&mut i, ']');
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let followed_by_paren = chars.get(j) == Some(&'(');
            if GROUPING.contains(&word.as_str()) {
                if followed_by_paren {
                    i = j + 1;
                    skip_until(&mut i, ')');
                }
            } else if KEYWORDS.contains(&word.as_str())
                || AGGREGATIONS.contains(&word.as_str())
                || followed_by_paren
            {
                // Not a metric.
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    // Histograms are exported as one family; queries use its _bucket/_sum/_count series.
    names
        .into_iter()
        .map(|n| {
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = n.strip_suffix(suffix) {
                    if exported_metrics().contains(base) {
                        return base.to_string();
                    }
                }
            }
            n
        })
        .collect()
}

#[test]
fn metric_name_lexer_finds_metrics_and_nothing_else() {
    let expr = r#"histogram_quantile(0.99, sum by (instance, le) (rate(reclaimd_request_duration_seconds_bucket{mode=~"a|b", route="/api/{id}"}[1m] offset 5m)))
        / on (instance) group_left max by (instance) (reclaimd_queue_capacity) or 0 * up > bool 1e3"#;
    let names: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(
        names,
        [
            "reclaimd_queue_capacity",
            "reclaimd_request_duration_seconds",
            "up"
        ]
    );
    assert!(metric_names("sum(rate(x:y_total[5m]))").contains("x:y_total"));
}

#[test]
fn every_panel_uses_a_provisioned_datasource_and_describes_its_metric() {
    let sources = provisioned_datasources();
    for (file, dashboard) in dashboards() {
        let check = |place: String, ds: &Json| {
            let uid = ds["uid"]
                .as_str()
                .unwrap_or_else(|| panic!("{place}: datasource without uid"));
            if uid == "-- Grafana --" {
                return; // Grafana's built-in annotations.
            }
            let ty = sources
                .get(uid)
                .unwrap_or_else(|| panic!("{place}: datasource uid {uid:?} is not provisioned"));
            if let Some(t) = ds["type"].as_str() {
                assert_eq!(t, ty, "{place}: datasource {uid} has type {ty}");
            }
        };
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or_default();
            let place = format!("{file}: panel {title:?}");
            if panel["type"] == "row" {
                continue;
            }
            check(place.clone(), &panel["datasource"]);
            let targets = panel["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert!(!targets.is_empty(), "{place} has no query");
            for t in targets {
                if t.get("datasource").is_some() {
                    check(place.clone(), &t["datasource"]);
                }
            }
            let desc = panel["description"].as_str().unwrap_or_default().trim();
            assert!(
                desc.len() > 20 && desc.ends_with('.'),
                "{place} needs a one-sentence description of its metric, has {desc:?}"
            );
        }
        for a in dashboard["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            check(
                format!("{file}: annotation {:?}", a["name"]),
                &a["datasource"],
            );
        }
        for v in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if v.get("datasource").is_some() {
                check(
                    format!("{file}: variable {:?}", v["name"]),
                    &v["datasource"],
                );
            }
        }
    }
}

#[test]
fn every_dashboard_metric_is_one_the_daemon_exports() {
    let known = exported_metrics();
    for (file, dashboard) in dashboards() {
        for q in promql_queries(&file, &dashboard) {
            let names = metric_names(&q.expr);
            assert!(
                !names.is_empty(),
                "{}: selects no metric: {}",
                q.place,
                q.expr
            );
            for m in names {
                assert!(
                    known.contains(&m),
                    "{}: {m} is not a metric the daemon exports",
                    q.place
                );
            }
        }
    }
}

#[test]
fn every_dashboard_expression_is_valid_promql() {
    let Some(promtool) = require_tool("promtool", "prometheus") else {
        return;
    };
    // promtool has no "parse this expression" command; recording rules are expressions it
    // parses and type-checks, so each query becomes one.
    let mut rules = Vec::new();
    let mut places = Vec::new();
    for (file, dashboard) in dashboards() {
        let vars = dashboard_variables(&dashboard);
        for q in promql_queries(&file, &dashboard) {
            let expr = substitute_variables(&q.expr, &vars);
            let mut rule = serde_yaml_ng::Mapping::new();
            rule.insert(
                "record".into(),
                format!("dashboard:query_{}", rules.len()).into(),
            );
            rule.insert("expr".into(), expr.into());
            rules.push(Yaml::Mapping(rule));
            places.push(q.place);
        }
    }
    let mut group = serde_yaml_ng::Mapping::new();
    group.insert("name".into(), "dashboard_queries".into());
    group.insert("rules".into(), Yaml::Sequence(rules));
    let mut doc = serde_yaml_ng::Mapping::new();
    doc.insert("groups".into(), Yaml::Sequence(vec![Yaml::Mapping(group)]));
    let text = serde_yaml_ng::to_string(&doc).expect("serialise rules");

    let dir = std::env::temp_dir().join(format!("reclaimd-dashboard-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("dashboard_queries.yml");
    std::fs::write(&file, &text).expect("write rules");
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    let _ = std::fs::remove_dir_all(&dir);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool rejects a dashboard query:\n{report}\nqueries, in order:\n{}",
        places
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  dashboard:query_{i} = {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        report.contains(&format!("SUCCESS: {} rules found", places.len())),
        "{report}"
    );
}

#[test]
fn substitution_replaces_grafana_variables_and_rejects_unknown_ones() {
    let vars: BTreeSet<String> = ["instance".to_string()].into();
    assert_eq!(
        substitute_variables(r#"rate(x{instance=~"$instance"}[$__rate_interval])"#, &vars),
        r#"rate(x{instance=~".*"}[1m])"#
    );
    assert_eq!(substitute_variables("${instance:regex}", &vars), ".*");
    let unknown = std::panic::catch_unwind(|| substitute_variables("$nope", &vars));
    assert!(unknown.is_err());
}

#[test]
fn main_dashboard_answers_the_issue_at_a_glance() {
    let path = repo().join("grafana/dashboards/reclaimed-waiting-time.json");
    let dashboard = json(&path);
    assert_eq!(dashboard["title"], "Reclaimed waiting time");
    let queries = promql_queries("main", &dashboard);
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(&q.expr)).collect();
    // One metric per panel the issue lists.
    for metric in [
        "reclaimd_reclaimed_seconds_total", // reclaimed time, rate and fraction
        "reclaimd_phase_seconds_total",     // time breakdown, and DB wait for the fraction
        "reclaimd_requests_total",          // throughput, errors
        "reclaimd_request_duration_seconds", // latency percentiles
        "reclaimd_queue_depth",             // queue depth
        "reclaimd_requests_in_state",       // requests in each state
        "reclaimd_worker_seconds_total",    // worker threads busy/blocked/idle
        "process_threads",                  // thread count
        "process_resident_memory_bytes",    // RSS
        "reclaimd_shed_total",              // shed rate
        "reclaimd_mode",                    // the active mode
    ] {
        assert!(
            used.contains(metric),
            "main dashboard does not show {metric}"
        );
    }
    // Flips are visible on every panel: dashboard-wide annotations from reclaimd_mode.
    let annotations: Vec<&Json> = dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a["expr"]
                .as_str()
                .is_some_and(|e| e.contains("reclaimd_mode"))
        })
        .collect();
    assert_eq!(annotations.len(), 2, "one annotation per direction of flip");
    // Break down by mode and instance.
    let vars = dashboard_variables(&dashboard);
    assert!(vars.contains("instance") && vars.contains("mode"));
    for q in &queries {
        if q.place.contains("panel")
            && q.expr.contains("reclaimd_")
            && !q.expr.contains("reclaimd_mode")
            && !q.expr.contains("queue_capacity")
            && !q.expr.contains("tokio")
            && !q.expr.contains("db_errors")
        {
            assert!(
                q.expr.contains("by (instance, mode"),
                "{}: break down by instance and mode: {}",
                q.place,
                q.expr
            );
        }
    }
    // Recent slow traces from the tracing backend.
    let sources = provisioned_datasources();
    assert!(
        panels(&dashboard).iter().any(|p| {
            p["datasource"]["uid"]
                .as_str()
                .and_then(|uid| sources.get(uid))
                .is_some_and(|ty| ty == "tempo")
        }),
        "no panel shows traces"
    );
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

#[test]
fn e2e_script_parses_and_queries_every_dashboard() {
    let script = read("ci/e2e.sh");
    assert!(script.contains("grafana/dashboards/*.json"));
    let Some(bash) = require_tool("bash", "bash") else {
        return;
    };
    run(&bash, &["-n", "ci/e2e.sh"], &repo());
}

#[test]
fn dashboards_have_unique_ids_and_panels_that_do_not_overlap() {
    let mut uids = BTreeSet::new();
    for (file, dashboard) in dashboards() {
        let uid = dashboard["uid"].as_str().unwrap_or_default().to_string();
        assert!(!uid.is_empty(), "{file} has no uid");
        assert!(uids.insert(uid.clone()), "{file}: uid {uid} is used twice");
        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            let id = panel["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{file}: {title} has no id"));
            assert!(ids.insert(id), "{file}: panel id {id} is used twice");
            let g = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
                g[k].as_u64()
                    .unwrap_or_else(|| panic!("{file}: {title} gridPos.{k}"))
            });
            assert!(
                w > 0 && h > 0 && x + w <= 24,
                "{file}: {title} is off the 24-column grid"
            );
            for (other, [ox, oy, ow, oh]) in &boxes {
                let apart = x + w <= *ox || *ox + ow <= x || y + h <= *oy || *oy + oh <= y;
                assert!(apart, "{file}: panels {title:?} and {other:?} overlap");
            }
            boxes.push((title, [x, y, w, h]));
        }
    }
}
