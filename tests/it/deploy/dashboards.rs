//! The dashboards: datasources, descriptions, layout, and every PromQL query valid and on
//! metrics the daemon exports.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use super::grafana::provisioned_datasources;
use super::promql::{metric_names, substitute_variables};
use super::{exported_metrics, json, read, repo};
use crate::support::temp::TempPath;
use crate::support::tools::{run, tool};

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

/// One PromQL query a dashboard makes, with where it comes from.
struct Query {
    place: String,
    /// As written in the dashboard, Grafana variables and all.
    expr: String,
    /// As Grafana sends it to Prometheus: variables substituted.
    sent: String,
}

/// Every PromQL expression in a dashboard: panel targets, annotations, and query variables
/// (`label_values(metric, label)` is reduced to `metric`).
fn promql_queries(file: &str, dashboard: &Json) -> Vec<Query> {
    let vars = dashboard_variables(dashboard);
    let query = |place: String, expr: &str| Query {
        place,
        sent: substitute_variables(expr, &vars),
        expr: expr.to_string(),
    };
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for t in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                out.push(query(
                    format!("{file}: panel {:?} target {}", panel["title"], t["refId"]),
                    expr,
                ));
            }
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(expr) = a["expr"].as_str() {
            out.push(query(format!("{file}: annotation {:?}", a["name"]), expr));
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
            out.push(query(format!("{file}: variable {:?}", v["name"]), expr));
        }
    }
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
            let names = metric_names(&q.sent);
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
#[cfg_attr(
    no_promtool,
    ignore = "promtool not found at build time: apt-get install prometheus"
)]
fn every_dashboard_expression_is_valid_promql() {
    let promtool = tool("promtool");
    // promtool has no "parse this expression" command; recording rules are expressions it
    // parses and type-checks, so each query becomes one.
    let mut rules = Vec::new();
    let mut places = Vec::new();
    for (file, dashboard) in dashboards() {
        for q in promql_queries(&file, &dashboard) {
            let mut rule = serde_yaml_ng::Mapping::new();
            rule.insert(
                "record".into(),
                format!("dashboard:query_{}", rules.len()).into(),
            );
            rule.insert("expr".into(), q.sent.into());
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

    let file = TempPath::new("dashboard_queries.yml");
    std::fs::write(file.path(), &text).expect("write rules");
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(file.path())
        .output()
        .expect("run promtool");
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
fn main_dashboard_answers_the_issue_at_a_glance() {
    let path = repo().join("grafana/dashboards/reclaimed-waiting-time.json");
    let dashboard = json(&path);
    assert_eq!(dashboard["title"], "Reclaimed waiting time");
    let queries = promql_queries("main", &dashboard);
    let used: BTreeSet<String> = queries.iter().flat_map(|q| metric_names(&q.sent)).collect();
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
        if q.place.contains("panel") && !per_mode_metrics(&q.sent).is_empty() {
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

/// The metrics of a query that carry a `mode` label (all `reclaimd_*` but the mode gauge
/// itself, the queue capacity, the tokio runtimes, MongoDB errors and the build).
fn per_mode_metrics(expr: &str) -> BTreeSet<String> {
    metric_names(expr)
        .into_iter()
        .filter(|m| {
            m.starts_with("reclaimd_")
                && ![
                    "reclaimd_mode",
                    "reclaimd_queue_capacity",
                    "reclaimd_db_errors_total",
                    "reclaimd_config_reloads_total",
                    "reclaimd_build_info",
                ]
                .contains(&m.as_str())
                && !m.starts_with("reclaimd_tokio_")
        })
        .collect()
}

/// The filter that keeps only the mode an instance serves now.
const SERVING: &str = "and on (instance, mode) (reclaimd_mode{instance=~\"$instance\"} == 1)";

#[test]
fn panels_show_only_the_mode_each_instance_serves_and_stack_one_instance_at_a_time() {
    for (file, dashboard) in dashboards() {
        for q in promql_queries(&file, &dashboard) {
            if q.place.contains("panel") && !per_mode_metrics(&q.sent).is_empty() {
                // Every part of an `or` shows only the serving mode.
                for part in q.expr.split(" or on ") {
                    assert!(
                        part.contains(SERVING),
                        "{}: a series for a mode the instance does not serve: {}",
                        q.place,
                        q.expr
                    );
                }
            }
        }
        for panel in panels(&dashboard) {
            let stacked = panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"]
                .as_str()
                .is_some_and(|m| m != "none");
            if stacked {
                // Grafana's stacking groups are fixed names, so two instances' series would
                // stack together: one panel per instance instead.
                assert_eq!(
                    panel["repeat"], "instance",
                    "{file}: {:?} stacks without repeating per instance",
                    panel["title"]
                );
            }
        }
        // "All" is `.*`: in a Prometheus shared with other targets that also matches their
        // process_* series, so those are joined with a reclaimd metric of the same target.
        for q in promql_queries(&file, &dashboard) {
            if metric_names(&q.sent)
                .iter()
                .any(|m| m.starts_with("process_"))
            {
                assert!(
                    q.expr
                        .contains("and on (instance, job) reclaimd_build_info"),
                    "{}: process_* of every target: {}",
                    q.place,
                    q.expr
                );
            }
        }
    }
}

#[test]
fn the_first_panel_is_the_headline_reclaimed_share_of_compute() {
    let dashboard = json(&repo().join("grafana/dashboards/reclaimed-waiting-time.json"));
    let first = panels(&dashboard)
        .into_iter()
        .find(|p| p["type"] != "row")
        .expect("a panel");
    assert_eq!(first["type"], "stat");
    assert_eq!(first["fieldConfig"]["defaults"]["unit"], "percentunit");
    let targets = first["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 1);
    let expr = targets[0]["expr"].as_str().unwrap_or_default();
    // Σ reclaimed ÷ Σ compute, one tile per instance for the mode it serves now (an instant
    // query: a range would keep a tile for the mode it left).
    let reclaimed = expr
        .find("reclaimd_reclaimed_seconds_total")
        .expect("reclaimed");
    let compute = expr
        .find("reclaimd_compute_seconds_total")
        .expect("compute");
    assert!(
        reclaimed < compute && expr[reclaimed..compute].contains(" / "),
        "{expr}"
    );
    assert!(expr.contains(SERVING), "{expr}");
    assert_eq!(targets[0]["instant"], true);
    // No threshold paints a correct result as bad: 0 (one sync worker) and any share above
    // it get colours that are not red or orange.
    for step in first["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .expect("thresholds")
    {
        let colour = step["color"].as_str().unwrap_or_default();
        assert!(
            !["red", "orange", "dark-red", "semi-dark-red", "yellow"].contains(&colour),
            "threshold colour {colour}"
        );
    }
}

#[test]
fn e2e_script_parses_and_queries_every_dashboard() {
    let script = read("ci/e2e.sh");
    assert!(script.contains("grafana/dashboards/*.json"));
    run(&tool("bash"), &["-n", "ci/e2e.sh"], &repo());
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
