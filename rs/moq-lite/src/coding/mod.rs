//! Pure encode/decode of every moq-lite stream header and message, for every version.
//!
//! No async and no I/O here: each message type implements [`Encode`] and [`Decode`] over
//! [`bytes::Buf`]/[`bytes::BufMut`] and takes the negotiated [`Version`], so every version gate
//! lives in this module and nowhere else.
//!
//! Decoding distinguishes "need more bytes" ([`DecodeError::Short`]: read more and retry) from
//! every other error (the bytes are invalid). Every length and count read from the wire is checked
//! against a `MAX_*` constant before anything is allocated, and a length-prefixed message must be
//! consumed exactly.

mod announce;
mod datagram;
mod error;
mod group;
mod primitives;
mod setup;
mod stream;
mod subscribe;
mod track;
mod version;

#[doc(hidden)]
pub mod fuzz;

pub use announce::*;
pub use datagram::*;
pub use error::*;
pub use group::*;
pub use primitives::*;
pub use setup::*;
pub use stream::*;
pub use subscribe::*;
pub use track::*;
pub use version::*;

use bytes::{Buf, BufMut};

/// Largest length-prefixed control message accepted (bytes of body).
pub const MAX_MESSAGE_SIZE: u64 = 256 * 1024;
/// Largest string (track name, URI, path) accepted.
pub const MAX_STRING_LEN: u64 = 8 * 1024;
/// Most hop IDs in one announcement (spec §2).
pub const MAX_HOPS: u64 = 32;
/// Most SETUP parameters (spec §2).
pub const MAX_PARAMETERS: u64 = 64;
/// Most versions offered in a compat CLIENT_SETUP.
pub const MAX_VERSIONS: u64 = 64;
/// Largest frame payload accepted (reference error 27 "frame too large" beyond this).
pub const MAX_FRAME_SIZE: u64 = 32 * 1024 * 1024;
/// Largest DATAGRAM body (spec §5.16).
pub const MAX_DATAGRAM_SIZE: usize = 1200;
/// Largest absolute value of a zigzag timestamp delta (spec §2: |s| < 2^61).
pub const MAX_ZIGZAG: i64 = (1 << 61) - 1;

/// Writes a value in the wire form of `version`.
pub trait Encode {
    /// Append the encoding to `buf`.
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version);

    /// Encode into a fresh `Vec`.
    fn encode_to_vec(&self, version: Version) -> Vec<u8> {
        let mut buf = Vec::new();
        self.encode(&mut buf, version);
        buf
    }
}

/// Reads a value in the wire form of `version`.
pub trait Decode: Sized {
    /// Decode one value from the front of `buf`.
    ///
    /// On [`DecodeError::Short`] the caller must retry with more bytes; `buf` may have been
    /// partially consumed, so decode from a copy (e.g. `&mut &buf[..]`) when retrying.
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError>;
}
