//! moq-lite: live pub/sub over QUIC and WebTransport.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod coding;
mod error;
pub mod model;
mod path;
mod session;

pub use coding::Version;
pub use error::Error;
pub use path::{Path, PathError, MAX_PATH_LEN, MAX_PATH_SEGMENTS};
pub use model::*;
pub use session::{Client, Handshake, Server, Session, MAX_INFLIGHT_GROUPS};
