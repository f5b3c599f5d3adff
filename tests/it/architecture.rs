//! docs/ARCHITECTURE.md's metric catalogue is the daemon's: every metric family it exports is
//! listed, and nothing listed is missing from the export.

use std::collections::BTreeSet;

fn catalogue() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md");
    let start = doc
        .find("### Metric catalogue")
        .expect("a Metric catalogue section");
    let end = doc[start..]
        .find("\n### Spans")
        .map_or(doc.len(), |i| start + i);
    // The first column of each table row: | `name` | ...
    doc[start..end]
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn the_metric_catalogue_lists_exactly_what_the_daemon_exports() {
    let exported: BTreeSet<String> = reclaimd::observe::exported_metric_names()
        .into_iter()
        .collect();
    let listed = catalogue();
    assert!(listed.len() > 10, "catalogue parsed: {listed:?}");
    let missing: Vec<_> = exported.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "exported but not in docs/ARCHITECTURE.md §4: {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&exported).collect();
    assert!(
        stale.is_empty(),
        "in docs/ARCHITECTURE.md §4 but not exported: {stale:?}"
    );
}
