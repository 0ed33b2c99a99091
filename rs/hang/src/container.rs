//! The legacy frame container (spec §12.3): every moq-lite frame of a media track is
//! `Timestamp (QUIC varint, presentation time in microseconds)` followed by the codec payload.
//!
//! The keyframe flag is not on the wire: the first frame of every group is the keyframe (§12.4).
//! On lite-05 the moq-lite FRAME timestamp carries the same microsecond value, because media tracks
//! announce a timescale of [`TIMESCALE`].

use bytes::{BufMut, Bytes, BytesMut};
use moq_lite::coding::{get_varint, put_varint, varint_len};

/// Timestamp units per second of the legacy container: microseconds.
pub const TIMESCALE: u64 = 1_000_000;

/// Largest timestamp the container can carry (a QUIC varint: 2^62 - 1 µs, about 146 000 years).
pub const MAX_TIMESTAMP: u64 = moq_lite::coding::MAX_VARINT;

/// What can go wrong encoding or decoding a legacy frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContainerError {
    /// The payload is empty or ends inside the timestamp varint.
    #[error("legacy frame is shorter than its timestamp")]
    Truncated,
    /// A timestamp above [`MAX_TIMESTAMP`] (local misuse).
    #[error("timestamp {0} µs does not fit a QUIC varint")]
    TimestampTooLarge(u64),
}

/// The wire form of a frame: varint `timestamp` (µs), then `payload`.
pub fn encode(timestamp: u64, payload: &[u8]) -> Result<Bytes, ContainerError> {
    if timestamp > MAX_TIMESTAMP {
        return Err(ContainerError::TimestampTooLarge(timestamp));
    }
    let mut buf = BytesMut::with_capacity(varint_len(timestamp) + payload.len());
    put_varint(&mut buf, timestamp);
    buf.put_slice(payload);
    Ok(buf.freeze())
}

/// Split a whole moq-lite frame into its timestamp (µs) and codec payload. Never panics; the
/// payload shares the input's memory.
pub fn decode(mut buf: Bytes) -> Result<(u64, Bytes), ContainerError> {
    // A varint can only be short: any first byte starts a valid one.
    let timestamp = get_varint(&mut buf).map_err(|_| ContainerError::Truncated)?;
    Ok((timestamp, buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_vector() {
        // §11.4: hang ts 1 000 000 µs + Annex-B bytes.
        let wire = hex::decode("800f4240000000016588").unwrap();
        let (timestamp, payload) = decode(Bytes::from(wire.clone())).unwrap();
        assert_eq!(timestamp, 1_000_000);
        assert_eq!(&payload[..], &[0, 0, 0, 1, 0x65, 0x88]);
        assert_eq!(encode(timestamp, &payload).unwrap(), wire);
    }

    #[test]
    fn truncated_and_too_large() {
        assert_eq!(decode(Bytes::new()), Err(ContainerError::Truncated));
        assert_eq!(
            decode(Bytes::from_static(&[0x80, 0x0f])),
            Err(ContainerError::Truncated)
        );
        assert_eq!(
            encode(MAX_TIMESTAMP + 1, b""),
            Err(ContainerError::TimestampTooLarge(MAX_TIMESTAMP + 1))
        );
    }

    proptest! {
        #[test]
        fn round_trip(timestamp in 0..=MAX_TIMESTAMP, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let wire = encode(timestamp, &payload).unwrap();
            prop_assert_eq!(decode(wire).unwrap(), (timestamp, Bytes::from(payload)));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = decode(bytes.into());
        }
    }
}
