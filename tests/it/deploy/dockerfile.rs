//! The Dockerfile: a multi-stage build to a slim, non-root runtime image.

use super::read;

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
