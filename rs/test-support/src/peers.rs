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
