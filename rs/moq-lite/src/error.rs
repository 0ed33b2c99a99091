//! The crate error and its one mapping to the spec's numeric codes (§8).

use crate::coding::{DecodeError, Version};

/// Everything that can end a session, a stream, a track or a group.
///
/// Each variant says whose fault it was: the peer's bytes ([`Error::Decode`]), legal bytes in an
/// illegal order ([`Error::ProtocolViolation`]), local misuse, or the transport. [`Error::code`] is
/// the single place where errors become the application codes sent on RESET_STREAM,
/// STOP_SENDING and CONNECTION_CLOSE, and [`Error::from_code`] the way back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// 0: routine cancellation (unsubscribe, dropped handle).
    #[error("cancelled")]
    Cancel,
    /// 2: the group fell behind the live edge.
    #[error("group is too old")]
    Old,
    /// 3: a timeout.
    #[error("timed out")]
    Timeout,
    /// 4: the QUIC/WebTransport connection failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// 5: the peer sent bytes that do not decode.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// 6: not allowed.
    #[error("unauthorized")]
    Unauthorized,
    /// 9: no common version.
    #[error("unsupported version")]
    Version,
    /// 10: a stream type that is unknown or not allowed here.
    #[error("unexpected stream type {0}")]
    UnexpectedStream(u64),
    /// 12: duplicate (e.g. a broadcast announced twice, a reused subscribe ID).
    #[error("duplicate")]
    Duplicate,
    /// 13: no such broadcast or track.
    #[error("not found")]
    NotFound,
    /// 14: a frame ended before its declared size, or overflowed it.
    #[error("wrong frame size")]
    WrongSize,
    /// 15: legal bytes in an illegal order.
    #[error("protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// 16: a message that is not expected here.
    #[error("unexpected message")]
    UnexpectedMessage,
    /// 17: a feature this peer or version does not support.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// 24: the producer went away without finishing.
    #[error("producer dropped")]
    Dropped,
    /// 25: closed.
    #[error("closed")]
    Closed,
    /// 27: frame larger than allowed.
    #[error("frame too large")]
    FrameTooLarge,
    /// 30: nothing is announced or served at that path.
    #[error("unroutable")]
    Unroutable,
    /// 64+n: an application-defined code.
    #[error("application error {0}")]
    App(u16),
    /// Any other code received from the peer.
    #[error("remote error code {0}")]
    Remote(u32),
}

impl Error {
    /// The application error code on the wire (spec §8).
    pub fn code(&self) -> u32 {
        match self {
            Error::Cancel => 0,
            Error::Old => 2,
            Error::Timeout => 3,
            Error::Transport(_) => 4,
            Error::Decode(DecodeError::TooLarge {
                what: "frame size", ..
            }) => 27,
            Error::Decode(_) => 5,
            Error::Unauthorized => 6,
            Error::Version => 9,
            Error::UnexpectedStream(_) => 10,
            Error::Duplicate => 12,
            Error::NotFound => 13,
            Error::WrongSize => 14,
            Error::ProtocolViolation(_) => 15,
            Error::UnexpectedMessage => 16,
            Error::Unsupported(_) => 17,
            Error::Dropped => 24,
            Error::Closed => 25,
            Error::FrameTooLarge => 27,
            Error::Unroutable => 30,
            Error::App(n) => 64 + *n as u32,
            Error::Remote(c) => *c,
        }
    }

    /// The error for a code received on a reset, stop or close.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => Error::Cancel,
            2 => Error::Old,
            3 => Error::Timeout,
            4 => Error::Transport("remote transport error".into()),
            6 => Error::Unauthorized,
            9 => Error::Version,
            12 => Error::Duplicate,
            13 => Error::NotFound,
            14 => Error::WrongSize,
            15 => Error::ProtocolViolation("reported by peer"),
            16 => Error::UnexpectedMessage,
            17 => Error::Unsupported("reported by peer"),
            24 => Error::Dropped,
            25 => Error::Closed,
            27 => Error::FrameTooLarge,
            30 => Error::Unroutable,
            c @ 64..=65599 => Error::App((c - 64) as u16),
            c => Error::Remote(c),
        }
    }
}

/// moq-lite-06 peers (the moq-net 0.3 crate: relay 0.17.10, `moq` CLI 0.14.10) number error codes
/// their own way, one table for streams and one for sessions, on every version they speak. Spec §8
/// (our [`Error::code`]) is what lite-01..05 peers of the earlier generation and ours use; nothing
/// on the wire names the table, so lite-06 sessions use the moq-net one and older versions §8.
impl Error {
    /// The code for a stream reset or STOP_SENDING on a session of `version`.
    pub fn stream_code(&self, version: Version) -> u32 {
        if version < Version::Lite06 {
            return self.code();
        }
        match self {
            Error::Cancel | Error::Dropped | Error::Closed => 0x1,
            Error::Timeout => 0x2,
            Error::Transport(_) => 0x3,
            Error::Old => 0x34,
            Error::NotFound => 0x33,
            Error::Unroutable => 0x36,
            Error::WrongSize => 0x37,
            Error::FrameTooLarge
            | Error::Decode(DecodeError::TooLarge {
                what: "frame size", ..
            }) => 0x38,
            Error::App(n) => 64 + *n as u32,
            Error::Remote(c) => *c,
            _ => 0x0,
        }
    }

    /// The error for a stream reset or STOP_SENDING code received on a session of `version`.
    pub fn from_stream_code(code: u32, version: Version) -> Self {
        if version < Version::Lite06 {
            return Self::from_code(code);
        }
        match code {
            0x1 => Error::Cancel,
            0x2 | 0x31 => Error::Timeout,
            0x3 => Error::Transport("the peer's session closed".into()),
            0x4 => Error::Closed,
            0x5 | 0x34 | 0x35 => Error::Old,
            0x12 => Error::ProtocolViolation("malformed track (reported by peer)"),
            0x32 | 0x38 => Error::FrameTooLarge,
            0x33 => Error::NotFound,
            0x36 => Error::Unroutable,
            0x37 => Error::WrongSize,
            0x39 => Error::ProtocolViolation("timestamp mismatch (reported by peer)"),
            c @ 64..=65599 => Error::App((c - 64) as u16),
            // 0x0 is the peer's internal error.
            c => Error::Remote(c),
        }
    }

    /// The code for closing a session of `version`.
    pub fn session_code(&self, version: Version) -> u32 {
        if version < Version::Lite06 {
            return self.code();
        }
        match self {
            Error::Cancel | Error::Closed | Error::Dropped => 0x0,
            Error::Unauthorized => 0x2,
            Error::ProtocolViolation(_)
            | Error::Decode(_)
            | Error::UnexpectedStream(_)
            | Error::UnexpectedMessage
            | Error::Duplicate
            | Error::WrongSize => 0x3,
            Error::Timeout => 0x11,
            Error::Version => 0x15,
            Error::App(n) => 64 + *n as u32,
            Error::Remote(c) => *c,
            _ => 0x1,
        }
    }

    /// The error for a session close code received on a session of `version`.
    pub fn from_session_code(code: u32, version: Version) -> Self {
        if version < Version::Lite06 {
            return Self::from_code(code);
        }
        match code {
            0x0 => Error::Cancel,
            0x1 => Error::Transport("the peer's internal error".into()),
            0x2 => Error::Unauthorized,
            0x3 => Error::ProtocolViolation("reported by peer"),
            0x6 => Error::ProtocolViolation("key-value formatting (reported by peer)"),
            0x10 | 0x11 => Error::Timeout,
            0x15 => Error::Version,
            c @ 64..=65599 => Error::App((c - 64) as u16),
            c => Error::Remote(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [
            0, 2, 3, 6, 9, 12, 13, 14, 16, 24, 25, 27, 30, 64, 100, 65599, 7, 1000000,
        ] {
            assert_eq!(Error::from_code(code).code(), code, "code {code}");
        }
        assert_eq!(Error::App(5).code(), 69);
        assert_eq!(Error::NotFound.code(), 13);
    }

    #[test]
    fn lite06_peers_use_the_moq_net_tables() {
        let v6 = Version::Lite06;
        // What relay 0.17.10 sends: a cancel is 1 on a stream (never a "required extension").
        assert_eq!(Error::from_stream_code(1, v6), Error::Cancel);
        assert_eq!(Error::from_stream_code(0x33, v6), Error::NotFound);
        assert_eq!(Error::from_stream_code(0x34, v6), Error::Old);
        assert_eq!(Error::Cancel.stream_code(v6), 1);
        assert_eq!(Error::Old.stream_code(v6), 0x34);
        assert_eq!(Error::NotFound.stream_code(v6), 0x33);
        assert_eq!(Error::Cancel.session_code(v6), 0);
        assert_eq!(Error::Unauthorized.session_code(v6), 2);
        assert_eq!(
            Error::from_session_code(3, v6),
            Error::ProtocolViolation("reported by peer")
        );
        // Round trips in the moq-net tables for what both sides name.
        for err in [
            Error::Cancel,
            Error::Old,
            Error::NotFound,
            Error::Unroutable,
            Error::WrongSize,
            Error::FrameTooLarge,
            Error::App(7),
        ] {
            assert_eq!(
                Error::from_stream_code(err.stream_code(v6), v6),
                err,
                "{err}"
            );
        }
        // Older versions keep spec §8.
        assert_eq!(Error::Cancel.stream_code(Version::Lite05), 0);
        assert_eq!(
            Error::from_stream_code(13, Version::Lite05),
            Error::NotFound
        );
        assert_eq!(
            Error::from_session_code(6, Version::Lite05),
            Error::Unauthorized
        );
    }
}
