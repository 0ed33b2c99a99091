//! Group stream header and frame header (spec §5.12, §5.13).

use bytes::{Buf, BufMut};

use super::{
    get_message, get_varint, put_message, put_varint, zigzag_decode, zigzag_encode, Decode,
    DecodeError, Encode, Version, MAX_FRAME_SIZE, MAX_ZIGZAG,
};

/// GROUP: the header of a Group uni stream (after the stream type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupHeader {
    /// The SUBSCRIBE ID this group answers.
    pub subscribe_id: u64,
    /// Group sequence.
    pub sequence: u64,
    /// lite-06: index of the first frame on this stream (0 = the group from its start; more when a
    /// subscription resumed partway through). Not on the wire before lite-06 (always 0 there).
    pub frame_start: u64,
}

/// The header of one FRAME; the payload (`size` bytes) follows and is streamed separately so
/// relays can forward it before it has all arrived.
///
/// lite-05: `Timestamp Delta (zigzag i), Payload Length (i)`; lite-01…04: `Payload Length (i)`
/// only (`timestamp_delta` is 0 and not written). `size` ≤ [`super::MAX_FRAME_SIZE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameHeader {
    /// Timestamp minus the previous frame's in this group (first frame: minus 0), in track timescale units.
    pub timestamp_delta: i64,
    /// Payload bytes.
    pub size: u64,
}

impl Encode for GroupHeader {
    /// A non-zero `frame_start` before lite-06 is a local bug (debug builds panic; release builds
    /// drop it, and the peer numbers the frames from 0).
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            self.frame_start == 0 || version.is_lite06(),
            "GROUP frame start does not exist in {version}"
        );
        put_message(buf, |b| {
            put_varint(b, self.subscribe_id);
            put_varint(b, self.sequence);
            if version.is_lite06() {
                put_varint(b, self.frame_start);
            }
        });
    }
}

impl Decode for GroupHeader {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        get_message(buf, |b| {
            Ok(Self {
                subscribe_id: get_varint(b)?,
                sequence: get_varint(b)?,
                // spec (lite-06): GROUP carries the index of its first frame.
                frame_start: match version.is_lite06() {
                    true => get_varint(b)?,
                    false => 0,
                },
            })
        })
    }
}

impl Encode for FrameHeader {
    /// Not length-prefixed. `timestamp_delta` is written on lite-05 only and must be within
    /// ±[`MAX_ZIGZAG`]; `size` must be at most [`MAX_FRAME_SIZE`] (both local bugs otherwise).
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            self.size <= MAX_FRAME_SIZE,
            "frame of {} bytes exceeds MAX_FRAME_SIZE",
            self.size
        );
        if version >= Version::Lite05 {
            debug_assert!(
                (-MAX_ZIGZAG..=MAX_ZIGZAG).contains(&self.timestamp_delta),
                "timestamp delta {} out of range",
                self.timestamp_delta
            );
            put_varint(buf, zigzag_encode(self.timestamp_delta));
        }
        put_varint(buf, self.size);
    }
}

impl Decode for FrameHeader {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        // spec: §5.13 lite-05 puts the zigzag timestamp delta before the payload length.
        let timestamp_delta = match version >= Version::Lite05 {
            true => {
                let raw = get_varint(buf)?;
                let delta = zigzag_decode(raw);
                // spec: §2 zigzag is valid for |s| < 2^61; the one varint beyond decodes to -2^61.
                if !(-MAX_ZIGZAG..=MAX_ZIGZAG).contains(&delta) {
                    return Err(DecodeError::InvalidValue {
                        what: "timestamp delta",
                        value: raw,
                    });
                }
                delta
            }
            false => 0,
        };
        let size = get_varint(buf)?;
        if size > MAX_FRAME_SIZE {
            return Err(DecodeError::TooLarge {
                what: "frame size",
                len: size,
                max: MAX_FRAME_SIZE,
            });
        }
        Ok(Self {
            timestamp_delta,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::MAX_VARINT;

    #[test]
    fn frame_header_per_version() {
        let frame = FrameHeader {
            timestamp_delta: -1,
            size: 3,
        };
        assert_eq!(frame.encode_to_vec(Version::Lite05), [0x01, 0x03]);
        assert_eq!(frame.encode_to_vec(Version::Lite04), [0x03]);
        assert_eq!(
            FrameHeader::decode(&mut &[0x01, 0x03][..], Version::Lite05),
            Ok(frame)
        );
        assert_eq!(
            FrameHeader::decode(&mut &[0x03][..], Version::Lite04),
            Ok(FrameHeader {
                timestamp_delta: 0,
                size: 3
            })
        );
        assert_eq!(
            FrameHeader::decode(&mut &[0x01][..], Version::Lite05),
            Err(DecodeError::Short)
        );
    }

    #[test]
    fn frame_header_limits() {
        let mut big = Vec::new();
        put_varint(&mut big, MAX_FRAME_SIZE + 1);
        assert_eq!(
            FrameHeader::decode(&mut &big[..], Version::Lite03),
            Err(DecodeError::TooLarge {
                what: "frame size",
                len: MAX_FRAME_SIZE + 1,
                max: MAX_FRAME_SIZE
            })
        );
        let mut edge = Vec::new();
        put_varint(&mut edge, MAX_VARINT);
        edge.push(0);
        assert_eq!(
            FrameHeader::decode(&mut &edge[..], Version::Lite05),
            Err(DecodeError::InvalidValue {
                what: "timestamp delta",
                value: MAX_VARINT
            })
        );
        let max = FrameHeader {
            timestamp_delta: -MAX_ZIGZAG,
            size: MAX_FRAME_SIZE,
        };
        assert_eq!(
            FrameHeader::decode(
                &mut &max.encode_to_vec(Version::Lite05)[..],
                Version::Lite05
            ),
            Ok(max)
        );
    }

    #[test]
    fn group_header() {
        let group = GroupHeader {
            subscribe_id: 5,
            sequence: 7,
            frame_start: 0,
        };
        assert_eq!(group.encode_to_vec(Version::Lite01), [0x02, 0x05, 0x07]);
        assert_eq!(
            GroupHeader::decode(&mut &[0x02, 0x05, 0x07][..], Version::Lite02),
            Ok(group)
        );
    }
}
