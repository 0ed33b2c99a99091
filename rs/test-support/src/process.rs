//! Child processes that cannot outlive their test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use crate::Scratch;

/// The child processes of one test and a scratch directory for their logs and files.
///
/// Each child's stderr goes to `<scratch>/<name>.log`. On drop every child still running is
/// killed and reaped (also when the test panics, and then every log is printed) and the scratch
/// directory is removed.
#[derive(Debug)]
pub struct Run {
    children: Vec<(String, Child)>,
    scratch: Scratch,
}

impl Run {
    /// An empty run with a scratch directory named after `tag`.
    pub fn new(tag: &str) -> Self {
        Self {
            children: Vec::new(),
            scratch: Scratch::new(tag),
        }
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        self.scratch.dir()
    }

    /// A file in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.path(name)
    }

    /// What child `name` wrote on stderr so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// Every child's stderr, each under a `--- name ---` line.
    pub fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(name, _)| format!("--- {name} ---\n{}", self.log(name)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.path(&format!("{name}.log"))
    }

    /// Start `cmd` as child `name` (unique in this run): stderr to its log, and none of this process's `MOQ_*` settings (but
    /// `MOQ_PEERS_DIR`, where the reference peers are), `RUST_LOG` or colours.
    pub fn spawn(&mut self, name: &str, cmd: &mut Command) -> &mut Child {
        assert!(
            self.children.iter().all(|(n, _)| n != name),
            "a child {name} already exists in this run"
        );
        let log = std::fs::File::create(self.log_path(name)).expect("create a child's log");
        clean_env(cmd);
        let child = cmd.stderr(log).spawn().unwrap_or_else(|e| {
            let program = cmd.get_program().to_string_lossy().into_owned();
            panic!(
                "cannot start {name} ({cmd:?}): {e}{}",
                install_hint(&program, &e)
            )
        });
        self.children.push((name.to_string(), child));
        &mut self.children.last_mut().expect("just pushed").1
    }

    /// The child started as `name`.
    pub fn child(&mut self, name: &str) -> &mut Child {
        let found = self.children.iter_mut().find(|(n, _)| n == name);
        &mut found.unwrap_or_else(|| panic!("no child {name}")).1
    }

    /// Whether child `name` has exited, and how.
    pub fn exited(&mut self, name: &str) -> Option<ExitStatus> {
        self.child(name).try_wait().expect("try_wait")
    }

    /// Kill child `name` (SIGKILL) and reap it; its log stays.
    pub fn kill(&mut self, name: &str) {
        let child = self.child(name);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Forget child `name` after killing and reaping it, so that the name can be used again;
    /// its log is kept as `<name>.<n>.log`.
    pub fn remove(&mut self, name: &str) {
        self.kill(name);
        self.children.retain(|(n, _)| n != name);
        let mut n = 1;
        while self.path(&format!("{name}.{n}.log")).exists() {
            n += 1;
        }
        let _ = std::fs::rename(self.log_path(name), self.path(&format!("{name}.{n}.log")));
    }

    /// Wait (at most `within`) until `done` returns `Some`; panics with every log otherwise.
    pub fn wait_until<T>(
        &self,
        what: &str,
        within: Duration,
        done: impl FnMut() -> Option<T>,
    ) -> T {
        crate::wait::until(what, within, done, || self.logs())
    }

    /// Wait (at most `within`) until child `name`'s log has a line containing `needle`; returns
    /// that line.
    pub fn wait_log(&self, name: &str, needle: &str, within: Duration) -> String {
        self.wait_until(&format!("{name} logs {needle:?}"), within, || {
            self.log(name)
                .lines()
                .find(|l| l.contains(needle))
                .map(str::to_string)
        })
    }

    /// Wait (at most `within`) for child `name` to exit; panics with every log otherwise.
    pub fn wait_exit(&mut self, name: &str, within: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.exited(name) {
                return status;
            }
            if std::time::Instant::now() >= deadline {
                panic!("{name} did not exit within {within:?}\n{}", self.logs());
            }
            std::thread::sleep(crate::wait::POLL);
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// Remove what would change a child's behaviour behind the test's back: this process's `MOQ_*`
/// variables (but `MOQ_PEERS_DIR`) and `RUST_LOG`; and colours from its logs.
pub fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars() {
        if (key.starts_with("MOQ_") && key != "MOQ_PEERS_DIR") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
}

/// Kills and reaps one child on drop.
#[derive(Debug)]
pub struct Killed(
    /// The child.
    pub Child,
);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_killed_and_files_removed_on_drop() {
        let mut run = Run::new("process");
        let pid = run
            .spawn(
                "sleeper",
                Command::new("sh").args(["-c", "echo started >&2; exec sleep 600"]),
            )
            .id();
        run.wait_log("sleeper", "started", Duration::from_secs(10));
        let dir = run.dir().to_path_buf();
        assert!(run.exited("sleeper").is_none());
        drop(run);
        assert!(!dir.exists());
        // Reaped: no /proc entry (not even a zombie) is left.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn removed_children_keep_their_logs() {
        let mut run = Run::new("process");
        run.spawn("a", Command::new("sh").args(["-c", "echo one >&2"]));
        run.wait_exit("a", Duration::from_secs(10));
        run.remove("a");
        run.spawn("a", Command::new("sh").args(["-c", "echo two >&2"]));
        run.wait_exit("a", Duration::from_secs(10));
        assert_eq!(
            std::fs::read_to_string(run.path("a.1.log")).unwrap(),
            "one\n"
        );
        assert_eq!(run.log("a"), "two\n");
    }
}

/// How to install `program` when starting it failed because it is not there: the tests' tools
/// and where they come from (README, "Building and testing").
pub fn install_hint(program: &str, error: &std::io::Error) -> String {
    if error.kind() != std::io::ErrorKind::NotFound {
        return String::new();
    }
    let name = std::path::Path::new(program)
        .file_name()
        .map_or(program.into(), |n| n.to_string_lossy().into_owned());
    let how = match name.as_str() {
        "ffmpeg" | "ffprobe" => "apt-get install ffmpeg (scripts/test.sh installs it)",
        "ip" | "tc" => "apt-get install iproute2 (scripts/test.sh installs it)",
        "chromium" => "scripts/js-setup.sh --browser (scripts/test.sh runs it)",
        "moq-relay" | "hang" | "moq-clock" | "moq-token" | "moq-bench"
            if program.contains("moq-interop") =>
        {
            "scripts/install-peers.sh (reference peers; scripts/test.sh runs it)"
        }
        "moq-relay" | "hang" | "moq-clock" | "moq-token" | "moq-bench" => {
            "cargo build --workspace (cargo test --workspace builds it)"
        }
        _ => return String::new(),
    };
    format!("\n{name} is missing: {how}")
}

#[cfg(test)]
mod install_hint_tests {
    use super::install_hint;

    #[test]
    fn a_missing_tool_names_its_install_command() {
        let missing = std::process::Command::new("/nonexistent/ffmpeg")
            .spawn()
            .unwrap_err();
        assert!(install_hint("/nonexistent/ffmpeg", &missing).contains("apt-get install ffmpeg"));
        assert!(install_hint(
            "/x/.cache/moq-interop/relay-0.17.10/bin/moq-relay",
            &missing
        )
        .contains("scripts/install-peers.sh"));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(install_hint("ffmpeg", &other), "");
    }
}
