//! Our `moq-relay` as a child process of a [`Run`], on ports it chose and reported.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::ports::{free_port, PortFile, PortFileError};
use crate::Run;

/// How long a relay gets to bind its listeners and write its port file.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How many free ports a shared-port start tries before giving up (each can be taken by another
/// process between being found free and being bound).
const SHARED_PORT_ATTEMPTS: usize = 5;

/// `moq-relay` beside the binary `sibling` in the same target directory (e.g.
/// `env!("CARGO_BIN_EXE_hang")`); panics with the build command when it is missing.
pub fn relay_bin(sibling: &str) -> PathBuf {
    let path = Path::new(sibling).with_file_name("moq-relay");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p moq-relay` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// Where the relay listens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Ports {
    /// Port 0 everywhere: the relay reports what it got.
    #[default]
    Any,
    /// QUIC and HTTP on one number, found free (retried when taken meanwhile).
    Shared,
    /// QUIC and HTTP on this number.
    Fixed(u16),
}

/// What to start a relay with: a self-signed certificate for `localhost`, QUIC and the public
/// HTTP listener on 127.0.0.1, and these arguments after them.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RelayOptions {
    args: Vec<String>,
    ports: Ports,
    internal: bool,
}

impl RelayOptions {
    /// Port 0 for every listener, no more arguments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Also the internal listener (`/metrics`, `/health`), on port 0.
    pub fn internal(mut self) -> Self {
        self.internal = true;
        self
    }

    /// QUIC and HTTP on one port number, so that `http://127.0.0.1:PORT/…` URLs work (clients
    /// fetch the certificate's fingerprint there, then connect to the same number over QUIC),
    /// also after a restart with a new certificate. The number is found free and the start retried
    /// on another when it was taken meanwhile: prefer the default (port 0) where a test can
    /// pin the fingerprint instead.
    pub fn shared_port(mut self) -> Self {
        self.ports = Ports::Shared;
        self
    }

    /// QUIC and HTTP on `port` (a relay restarted where its predecessor was).
    pub fn on_port(mut self, port: u16) -> Self {
        self.ports = Ports::Fixed(port);
        self
    }
}

/// Where a relay started by [`Run::start_relay`] listens, and its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAddrs {
    /// QUIC (UDP): WebTransport and raw QUIC sessions.
    pub quic: SocketAddr,
    /// The public HTTP listener (TCP): `/certificate.sha256`, `/announced`.
    pub http: SocketAddr,
    /// The internal listener (TCP), when asked for: `/metrics`, `/health`.
    pub internal: Option<SocketAddr>,
    /// Hex SHA-256 of the relay's certificate, from `/certificate.sha256`.
    pub fingerprint: String,
}

impl RelayAddrs {
    /// A WebTransport URL: `https://127.0.0.1:QUIC{path}`. Clients need [`Self::tls_args`].
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.quic)
    }

    /// A raw QUIC URL: `moql://127.0.0.1:QUIC{path}`. Clients need [`Self::tls_args`].
    pub fn moql_url(&self, path: &str) -> String {
        format!("moql://{}{path}", self.quic)
    }

    /// An `http://` URL (fingerprint fetched by the client, then WebTransport to the same
    /// number): only for a relay started with [`RelayOptions::shared_port`] or
    /// [`RelayOptions::on_port`].
    pub fn http_url(&self, path: &str) -> String {
        assert_eq!(
            self.quic.port(),
            self.http.port(),
            "http:// URLs need QUIC and HTTP on one port: start the relay with shared_port()"
        );
        format!("http://{}{path}", self.http)
    }

    /// The client flags that pin this relay's certificate.
    pub fn tls_args(&self) -> [String; 2] {
        ["--tls-fingerprint".to_string(), self.fingerprint.clone()]
    }

    /// The internal listener; panics unless started with [`RelayOptions::internal`].
    pub fn internal(&self) -> SocketAddr {
        self.internal
            .expect("the relay was started without RelayOptions::internal()")
    }
}

impl Run {
    /// Start `bin` (our relay, see [`relay_bin`]) as child `name` and wait until it has bound
    /// every listener and serves its certificate's fingerprint. Panics with the relay's log when
    /// it does not start.
    pub fn start_relay(&mut self, name: &str, bin: &Path, options: &RelayOptions) -> RelayAddrs {
        for attempt in 1..=SHARED_PORT_ATTEMPTS {
            let port = match options.ports {
                Ports::Any => 0,
                Ports::Shared => free_port(),
                Ports::Fixed(port) => port,
            };
            match self.try_start_relay(name, bin, options, port) {
                Ok(addrs) => return addrs,
                // The free port was taken meanwhile: another.
                Err(PortFileError::Exited)
                    if options.ports == Ports::Shared && attempt < SHARED_PORT_ATTEMPTS =>
                {
                    self.remove(name)
                }
                Err(err) => panic!("{name} did not start: {err}\n{}", self.logs()),
            }
        }
        unreachable!("the last attempt panics")
    }

    fn try_start_relay(
        &mut self,
        name: &str,
        bin: &Path,
        options: &RelayOptions,
        port: u16,
    ) -> Result<RelayAddrs, PortFileError> {
        let port_file = self.path(&format!("{name}.ports.json"));
        let _ = std::fs::remove_file(&port_file);
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin);
        cmd.args(["--listen", &addr, "--tls-generate", "localhost"])
            .args(["--web-http-listen", &addr]);
        if options.internal {
            cmd.args(["--internal-listen", "127.0.0.1:0"]);
        }
        cmd.arg("--port-file")
            .arg(&port_file)
            .args(&options.args)
            .stdout(std::process::Stdio::null());
        self.spawn(name, &mut cmd);
        let ports = PortFile::wait(&port_file, START_TIMEOUT, || self.exited(name).is_some())?;
        let http = ports.addr("http");
        let response = crate::http::get_blocking(http, "/certificate.sha256").unwrap_or_else(|e| {
            panic!("GET /certificate.sha256 from {name}: {e}\n{}", self.logs())
        });
        let fingerprint = response.body.trim().to_string();
        assert!(
            response.status == 200 && fingerprint.len() == 64,
            "{name}: /certificate.sha256 answered {} {:?}",
            response.status,
            response.body
        );
        Ok(RelayAddrs {
            quic: ports.addr("quic"),
            http,
            internal: options.internal.then(|| ports.addr("internal")),
            fingerprint,
        })
    }
}
