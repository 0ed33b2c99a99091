//! Scratch directories, removed on drop.

use std::path::{Path, PathBuf};

/// A temporary directory unique to one test (under the system's temp dir, named after a tag),
/// removed with everything in it when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new empty directory whose name starts with `tag` (for a reader of `/tmp`).
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("moq-test-{tag}-"))
            .tempdir()
            .expect("create a scratch directory");
        Self { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path `name` inside the directory (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_on_drop() {
        let scratch = Scratch::new("scratch");
        std::fs::write(scratch.path("file"), b"x").unwrap();
        let dir = scratch.dir().to_path_buf();
        assert!(dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("moq-test-scratch-"));
        drop(scratch);
        assert!(!dir.exists());
    }
}
