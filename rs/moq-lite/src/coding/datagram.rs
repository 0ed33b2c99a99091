//! DATAGRAM (lite-05, spec §5.16).

use bytes::{Buf, BufMut, Bytes};

use super::{
    get_varint, put_varint, require_version, Decode, DecodeError, Encode, Version,
    MAX_DATAGRAM_SIZE,
};

/// A single-frame group sent as a QUIC datagram. No length field: the payload runs to the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// The SUBSCRIBE ID.
    pub subscribe_id: u64,
    /// Group sequence.
    pub group: u64,
    /// Absolute timestamp in the track timescale.
    pub timestamp: u64,
    /// The frame (whole datagram ≤ [`super::MAX_DATAGRAM_SIZE`]).
    pub payload: Bytes,
}

impl Encode for Datagram {
    /// The whole datagram must fit in [`MAX_DATAGRAM_SIZE`] (a local bug otherwise).
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite05,
            "DATAGRAM does not exist in {version}"
        );
        debug_assert!(
            self.encoded_len() <= MAX_DATAGRAM_SIZE,
            "datagram of {} bytes",
            self.encoded_len()
        );
        put_varint(buf, self.subscribe_id);
        put_varint(buf, self.group);
        put_varint(buf, self.timestamp);
        buf.put_slice(&self.payload);
    }
}

impl Decode for Datagram {
    /// Consumes all of `buf`: the payload runs to its end.
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version >= Version::Lite05, "DATAGRAM", version)?;
        // spec: §5.16 whole body ≤ 1200 bytes.
        if buf.remaining() > MAX_DATAGRAM_SIZE {
            return Err(DecodeError::TooLarge {
                what: "datagram",
                len: buf.remaining() as u64,
                max: MAX_DATAGRAM_SIZE as u64,
            });
        }
        let subscribe_id = get_varint(buf)?;
        let group = get_varint(buf)?;
        let timestamp = get_varint(buf)?;
        let payload = buf.copy_to_bytes(buf.remaining());
        Ok(Self {
            subscribe_id,
            group,
            timestamp,
            payload,
        })
    }
}

impl Datagram {
    /// Bytes this datagram takes on the wire.
    pub fn encoded_len(&self) -> usize {
        super::varint_len(self.subscribe_id)
            + super::varint_len(self.group)
            + super::varint_len(self.timestamp)
            + self.payload.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_limit() {
        let bytes = vec![0u8; MAX_DATAGRAM_SIZE + 1];
        assert_eq!(
            Datagram::decode(&mut &bytes[..], Version::Lite05),
            Err(DecodeError::TooLarge {
                what: "datagram",
                len: 1201,
                max: 1200
            })
        );
        let dgram = Datagram::decode(&mut &bytes[..MAX_DATAGRAM_SIZE], Version::Lite05).unwrap();
        assert_eq!(dgram.payload.len(), MAX_DATAGRAM_SIZE - 3);
        assert_eq!(dgram.encoded_len(), MAX_DATAGRAM_SIZE);
        assert_eq!(
            Datagram::decode(&mut &bytes[..2], Version::Lite05),
            Err(DecodeError::Short)
        );
        assert!(matches!(
            Datagram::decode(&mut &bytes[..3], Version::Lite04),
            Err(DecodeError::Unsupported { .. })
        ));
    }
}
