//! Scaffolding shared by the workspace's integration tests, so that every test takes its own
//! ports, starts and stops its own processes, and leaves nothing behind:
//!
//! ```text
//!  Run ──owns──► Scratch (a temporary directory: logs, port files, fixtures)
//!   │
//!   └──owns──► child processes (stderr to <scratch>/<name>.log; killed and reaped on drop,
//!                               their logs printed when the test panics)
//!                 └── our relay: `--listen 127.0.0.1:0 … --port-file <scratch>/<name>.ports.json`
//!                                 → RelayAddrs { quic, http, internal, fingerprint }
//! ```
//!
//! The reference implementation's binaries (interop peers) are found by [`peers::binary`] and
//! its relay started by [`Run::start_reference_relay`].
//!
//! Servers we own bind port 0 and report the port they got ([`relay`], [`ports::PortFile`]).
//! Programs that cannot report it (the reference peers) get a [`ports::free_port`] and the caller
//! retries the whole start when the port was taken meanwhile. Waits poll an observable event
//! with a deadline ([`wait::until`]); none of them is a sleep standing in for the event.
//!
//! ```no_run
//! use test_support::{relay::RelayOptions, Run};
//!
//! let mut run = Run::new("example");
//! let bin = test_support::relay::relay_bin("target/debug/hang");
//! let relay = run.start_relay("relay", &bin, &RelayOptions::new().args(["--auth-public", ""]));
//! println!("{}", relay.url("/anon"));
//! // Dropping `run` kills the relay and removes its directory.
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod http;
pub mod peers;
pub mod ports;
pub mod process;
pub mod relay;
pub mod scratch;
pub mod wait;

pub use process::Run;
pub use scratch::Scratch;
