//! The crate error and its one mapping to the spec's numeric codes (§8).

use crate::coding::DecodeError;

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
}
