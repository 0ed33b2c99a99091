//! The reference implementation's binaries, used as interop peers.
//!
//! `scripts/install-peers.sh` installs them outside the repository, into `$MOQ_PEERS_DIR`
//! (default `$HOME/.cache/moq-interop`), as `<name>-<version>/bin/<binary>`, e.g.
//! `relay-0.17.10/bin/moq-relay`. A missing peer fails the test that needs it.

use std::path::PathBuf;

/// Where the peers are installed: `$MOQ_PEERS_DIR` when set and not empty, otherwise
/// `$HOME/.cache/moq-interop`.
pub fn dir() -> PathBuf {
    match std::env::var_os("MOQ_PEERS_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME or MOQ_PEERS_DIR must be set");
            PathBuf::from(home).join(".cache/moq-interop")
        }
    }
}

/// The installed peer binary `<dir>/<install>/bin/<binary>`, e.g.
/// `binary("relay-0.17.10", "moq-relay")`; panics with the install command when it is missing.
pub fn binary(install: &str, binary: &str) -> PathBuf {
    let path = dir().join(install).join("bin").join(binary);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-peers.sh (it installs into $MOQ_PEERS_DIR, default \
         $HOME/.cache/moq-interop)",
        path.display()
    );
    path
}

/// How many free ports [`Run::start_reference_relay`] tries (each can be taken by another
/// process between being found free and being bound).
const START_ATTEMPTS: usize = 5;

impl crate::Run {
    /// Start the reference `moq-relay` 0.17.10 as child `name` on a free port (QUIC and its web
    /// listener on one number, 127.0.0.1), with a self-signed certificate for `localhost` and
    /// anonymous access everywhere (`--auth-public '**'`), then `args` (e.g. `--cluster-id 7
    /// --cluster-connect URL --connect-tls-insecure`). It cannot report the port it got: its
    /// listening is polled, and it is started again on another port when the port was taken.
    /// Returns the port.
    pub fn start_reference_relay(&mut self, name: &str, args: &[&str]) -> u16 {
        let bin = binary("relay-0.17.10", "moq-relay");
        for _ in 0..START_ATTEMPTS {
            let port = crate::ports::free_port();
            let addr = format!("127.0.0.1:{port}");
            let mut cmd = std::process::Command::new(&bin);
            cmd.args(["--listen", &addr, "--listen-tls-generate", "localhost"])
                .args(["--auth-public", "**", "--web-http-listen", &addr])
                .args(args)
                .stdout(std::process::Stdio::null());
            let pid = self.spawn(name, &mut cmd).id();
            let deadline = std::time::Instant::now() + crate::relay::START_TIMEOUT;
            loop {
                if crate::ports::listens(pid, port) {
                    return port;
                }
                if self.exited(name).is_some() {
                    break; // the port was taken: another attempt on another port
                }
                if std::time::Instant::now() >= deadline {
                    panic!(
                        "the reference relay {name} did not listen on {port}\n{}",
                        self.logs()
                    );
                }
                std::thread::sleep(crate::wait::POLL);
            }
            self.remove(name);
        }
        panic!("the reference relay {name} did not start\n{}", self.logs());
    }
}
