//! Ports: the ones our servers report after binding port 0, and free ones for programs that
//! cannot report theirs.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A port free on both UDP and TCP at 127.0.0.1 when asked (QUIC and an HTTP listener on the
/// same number), never handed out twice by this process.
///
/// Only for programs that cannot bind port 0 and report the port they got (the reference peers,
/// or a relay restarted on the port its predecessor had): another process may take the port
/// before the program binds it, so the caller must retry the whole start when it fails to bind.
pub fn free_port() -> u16 {
    static TAKEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
        let port = udp.local_addr().expect("local address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
}

/// Whether process `pid` has bound `port` with both a UDP socket and a listening TCP socket
/// (Linux: the socket inodes in `/proc/PID/fd` looked up in `/proc/net/{udp,udp6,tcp,tcp6}`).
///
/// For programs that cannot report their port (the reference peers): that a connection to the
/// port succeeds proves only that *some* process listens there, perhaps another test's server
/// that took the port first, while this one is failing to bind.
pub fn listens(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    let sockets: std::collections::HashSet<String> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    // A table row: `sl local_address rem_address st … inode …`, the address as `HEXIP:HEXPORT`.
    let bound = |tables: &[&str], listening_only: bool| {
        tables.iter().any(|table| {
            let text = std::fs::read_to_string(table).unwrap_or_default();
            text.lines().skip(1).any(|row| {
                let fields: Vec<&str> = row.split_whitespace().collect();
                let (Some(local), Some(state), Some(inode)) =
                    (fields.get(1), fields.get(3), fields.get(9))
                else {
                    return false;
                };
                let row_port = local
                    .rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
                // TCP state 0A is LISTEN.
                row_port == Some(port)
                    && (!listening_only || *state == "0A")
                    && sockets.contains(*inode)
            })
        })
    };
    bound(&["/proc/net/udp", "/proc/net/udp6"], false)
        && bound(&["/proc/net/tcp", "/proc/net/tcp6"], true)
}

/// A port file, as our servers write it with `--port-file PATH` once every listener is bound:
/// one JSON object with an address per listener, e.g.
/// `{"quic":"127.0.0.1:43121","http":"127.0.0.1:43122"}`. Written to a temporary name and
/// renamed, so a file that exists is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortFile {
    /// Listener name → the address it is bound to.
    pub listeners: BTreeMap<String, SocketAddr>,
}

impl PortFile {
    /// Parse the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {text:?}"))?;
        let object = json
            .as_object()
            .ok_or_else(|| format!("not a JSON object: {text:?}"))?;
        let mut listeners = BTreeMap::new();
        for (name, addr) in object {
            let addr = addr
                .as_str()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| format!("{name}: not a socket address: {addr}"))?;
            listeners.insert(name.clone(), addr);
        }
        Ok(Self { listeners })
    }

    /// Wait (at most `within`) for the file at `path` to appear, and parse it. `exited` is asked
    /// between checks: a server that exited will never write it, and the wait ends with
    /// [`PortFileError::Exited`].
    pub fn wait(
        path: &Path,
        within: Duration,
        mut exited: impl FnMut() -> bool,
    ) -> Result<Self, PortFileError> {
        let deadline = Instant::now() + within;
        loop {
            match std::fs::read_to_string(path) {
                Ok(text) => return Self::parse(&text).map_err(PortFileError::Invalid),
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(PortFileError::Invalid(format!("{}: {e}", path.display())))
                }
                Err(_) => {}
            }
            if exited() {
                return Err(PortFileError::Exited);
            }
            if Instant::now() >= deadline {
                return Err(PortFileError::Timeout(path.to_path_buf()));
            }
            std::thread::sleep(crate::wait::POLL);
        }
    }

    /// The address of listener `name`, if the file has it.
    pub fn get(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.get(name).copied()
    }

    /// The address of listener `name`; panics naming the file's listeners when absent.
    pub fn addr(&self, name: &str) -> SocketAddr {
        *self.listeners.get(name).unwrap_or_else(|| {
            panic!(
                "no {name:?} listener in the port file: {:?}",
                self.listeners
            )
        })
    }
}

/// Why [`PortFile::wait`] has no port file.
#[derive(Debug)]
pub enum PortFileError {
    /// The server exited before writing it (e.g. it could not bind).
    Exited,
    /// It was not written in time.
    Timeout(PathBuf),
    /// It is not a JSON object of socket addresses.
    Invalid(String),
}

impl std::fmt::Display for PortFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited => write!(f, "the server exited before writing its port file"),
            Self::Timeout(path) => write!(f, "no port file at {} in time", path.display()),
            Self::Invalid(why) => write!(f, "invalid port file: {why}"),
        }
    }
}

impl std::error::Error for PortFileError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_address_per_listener() {
        let file = PortFile::parse(r#"{"quic":"127.0.0.1:43121","http":"[::1]:43122"}"#).unwrap();
        assert_eq!(file.addr("quic"), "127.0.0.1:43121".parse().unwrap());
        assert_eq!(file.addr("http"), "[::1]:43122".parse().unwrap());
        assert_eq!(file.listeners.len(), 2);
    }

    #[test]
    fn rejects_what_is_not_an_object_of_addresses() {
        for text in ["", "[]", r#"{"quic":43121}"#, r#"{"quic":"localhost"}"#] {
            assert!(PortFile::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn wait_ends_when_the_server_exited() {
        let scratch = crate::Scratch::new("portfile");
        let path = scratch.path("ports.json");
        let err = PortFile::wait(&path, Duration::from_secs(5), || true).unwrap_err();
        assert!(matches!(err, PortFileError::Exited), "{err}");
        let err = PortFile::wait(&path, Duration::ZERO, || false).unwrap_err();
        assert!(matches!(err, PortFileError::Timeout(_)), "{err}");
        std::fs::write(&path, r#"{"quic":"127.0.0.1:1"}"#).unwrap();
        let file = PortFile::wait(&path, Duration::ZERO, || true).unwrap();
        assert_eq!(file.addr("quic").port(), 1);
    }

    #[test]
    fn listens_tells_this_process_s_sockets_from_others() {
        let port = free_port();
        let me = std::process::id();
        assert!(!listens(me, port));
        let _udp = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        assert!(!listens(me, port), "UDP alone");
        let _tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
        assert!(listens(me, port));
        // Another process (here: none with this PID) does not own them.
        assert!(!listens(u32::MAX, port));
    }

    #[test]
    fn free_ports_are_not_handed_out_twice() {
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
    }
}
