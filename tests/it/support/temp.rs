//! Temporary files that remove themselves.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A path in the temp dir, unique to this process and call, removed (file or directory) on
/// drop. Nothing is created: the test writes it.
pub struct TempPath(PathBuf);

impl TempPath {
    /// `reclaimd-test-{pid}-{n}-{name}`, e.g. `TempPath::new("config.toml")`.
    pub fn new(name: &str) -> TempPath {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        TempPath(
            std::env::temp_dir().join(format!("reclaimd-test-{}-{n}-{name}", std::process::id())),
        )
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = std::fs::remove_dir_all(&self.0);
        } else {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
