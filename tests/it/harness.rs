//! The harness's own helpers behave as the tests rely on.

use std::time::Duration;

use crate::support::app::metric_value;
use crate::support::eventually;
use crate::support::tools::tool;

#[test]
fn eventually_returns_what_the_check_gives_once_it_happens() {
    let mut n = 0;
    let got = eventually("the third call", Duration::from_secs(5), || {
        n += 1;
        (n == 3).then_some(n * 10)
    });
    assert_eq!(got, 30);
}

#[test]
fn eventually_names_what_never_happened_and_the_last_observation() {
    let err = std::panic::catch_unwind(|| {
        eventually("the queue drains", Duration::from_millis(30), || {
            Err::<(), _>("depth 3")
        })
    })
    .expect_err("never happens");
    let msg = err.downcast_ref::<String>().expect("a formatted message");
    assert!(
        msg.starts_with("the queue drains: did not happen within 30ms; last: \"depth 3\""),
        "{msg}"
    );
}

#[test]
fn a_missing_tool_fails_the_test_that_needs_it_and_says_how_to_install_it() {
    let err = std::panic::catch_unwind(|| tool("promtool-not-installed-anywhere"))
        .expect_err("no such tool");
    let msg = err.downcast_ref::<String>().expect("a formatted message");
    assert!(
        msg.contains("`promtool-not-installed-anywhere` is not on PATH (apt-get install"),
        "{msg}"
    );
    assert!(tool("sh").is_file());
}

#[test]
fn metric_value_matches_the_whole_sample_name() {
    let text = "# HELP x y\nreclaimd_mode{mode=\"sync\"} 1\nreclaimd_mode{mode=\"async\"} 0\n";
    assert_eq!(metric_value(text, r#"reclaimd_mode{mode="sync"}"#), 1.0);
    assert_eq!(metric_value(text, r#"reclaimd_mode{mode="async"}"#), 0.0);
    assert_eq!(metric_value(text, "reclaimd_mode"), 0.0);
}
