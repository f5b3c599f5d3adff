//! PromQL as the lints need it: which metrics a query selects, and Grafana's variables
//! replaced so that a dashboard query can be parsed.

use std::collections::BTreeSet;

use promql_parser::label::{MatchOp, METRIC_NAME};
use promql_parser::parser::{self, Expr, VectorSelector};

use super::exported_metrics;

/// Replaces Grafana's variables with concrete values, as Grafana would before sending the
/// query: built-in intervals with durations, the dashboard's own variables with `.*` (they are
/// used in regex matchers). Panics on a variable the dashboard does not define.
pub fn substitute_variables(expr: &str, dashboard_vars: &BTreeSet<String>) -> String {
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

/// The metric names a PromQL expression selects, read from its syntax tree
/// (`promql-parser`). A histogram's `_bucket`, `_sum` and `_count` series count as their
/// exported family. Panics if the expression does not parse, or selects series without
/// naming their metric (a `{__name__=~"..."}` regex cannot be checked against the exports).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let ast = parser::parse(expr).unwrap_or_else(|e| panic!("not PromQL: {e}\n  {expr}"));
    let mut names = BTreeSet::new();
    collect_selectors(&ast, &mut |selector| {
        let name = selector
            .name
            .clone()
            .or_else(|| {
                selector
                    .matchers
                    .matchers
                    .iter()
                    .find(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal)
                    .map(|m| m.value.clone())
            })
            .unwrap_or_else(|| panic!("a selector without a metric name: {selector}\n  {expr}"));
        names.insert(name);
    });
    let exported = exported_metrics();
    names
        .into_iter()
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| n.strip_suffix(suffix).filter(|b| exported.contains(*b)))
                .map_or(n.clone(), String::from)
        })
        .collect()
}

/// Calls `found` for every vector selector in `expr`, range selectors' included.
fn collect_selectors(expr: &Expr, found: &mut impl FnMut(&VectorSelector)) {
    match expr {
        Expr::VectorSelector(vs) => found(vs),
        Expr::MatrixSelector(ms) => found(&ms.vs),
        Expr::Aggregate(a) => {
            if let Some(param) = &a.param {
                collect_selectors(param, found);
            }
            collect_selectors(&a.expr, found);
        }
        Expr::Unary(u) => collect_selectors(&u.expr, found),
        Expr::Binary(b) => {
            collect_selectors(&b.lhs, found);
            collect_selectors(&b.rhs, found);
        }
        Expr::Paren(p) => collect_selectors(&p.expr, found),
        Expr::Subquery(s) => collect_selectors(&s.expr, found),
        Expr::Call(c) => {
            for arg in &c.args.args {
                collect_selectors(arg, found);
            }
        }
        Expr::Extension(e) => {
            for child in e.expr.children() {
                collect_selectors(child, found);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

#[test]
fn metric_names_are_the_selectors_of_the_parsed_query_and_nothing_else() {
    // Function and aggregation names, grouping labels, label values, keywords, numbers and
    // durations are not metrics; a histogram's _bucket series is its family.
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
    assert!(metric_names(r#"{__name__="reclaimd_mode"}"#).contains("reclaimd_mode"));
    assert!(metric_names("max_over_time(process_threads[5m:30s])").contains("process_threads"));
    // A _bucket series of something the daemon does not export keeps its name.
    assert!(metric_names("rate(other_bucket[1m])").contains("other_bucket"));
}

#[test]
fn a_query_that_is_not_promql_or_names_no_metric_is_rejected() {
    for expr in [
        "sum(rate(reclaimd_requests_total[5m])",
        r#"{__name__=~"reclaimd_.*"}"#,
    ] {
        let result = std::panic::catch_unwind(|| metric_names(expr));
        assert!(result.is_err(), "{expr} was accepted");
    }
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
