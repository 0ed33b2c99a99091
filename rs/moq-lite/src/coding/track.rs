//! Track, fetch, probe and goaway stream messages (spec §5.10, §5.11, §5.14, §5.15).

use bytes::{Buf, BufMut};

use super::{
    get_bool, get_message, get_path, get_plus_one, get_string, get_u8, get_varint, put_bool,
    put_message, put_path, put_plus_one, put_string, put_varint, require_version, Decode,
    DecodeError, Encode, Version,
};
use crate::Path;

/// TRACK (lite-05): request a track's immutable properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRequest {
    /// Broadcast path.
    pub broadcast: Path,
    /// Track name.
    pub track: String,
}

/// TRACK_INFO (lite-05): the publisher's fixed track properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    /// Publisher priority.
    pub priority: u8,
    /// Publisher ordered.
    pub ordered: bool,
    /// Publisher max latency (cache retention), milliseconds.
    pub max_latency_ms: u64,
    /// Frame timestamp units per second; never 0 (decode rejects 0).
    pub timescale: u64,
}

/// FETCH (lite-05): one whole group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Broadcast path.
    pub broadcast: Path,
    /// Track name.
    pub track: String,
    /// Subscriber priority.
    pub priority: u8,
    /// Group sequence.
    pub group: u64,
    /// lite-06: first frame wanted (0 = from the start of the group).
    pub start_frame: u64,
    /// lite-06: last frame wanted, inclusive (`None` = to the end), +1 encoded.
    pub end_frame: Option<u64>,
}

/// PROBE (lite-03+): `Bitrate`, and `RTT` on lite-04+.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    /// Bits per second (0 = unknown).
    pub bitrate: u64,
    /// Milliseconds (lite-04+, 0 = unknown).
    pub rtt_ms: u64,
}

/// GOAWAY (lite-04+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Goaway {
    /// Where to reconnect; empty = just close.
    pub uri: String,
}

impl Encode for TrackRequest {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite05,
            "TRACK does not exist in {version}"
        );
        put_message(buf, |b| {
            put_path(b, &self.broadcast);
            put_string(b, &self.track);
        });
    }
}

impl Decode for TrackRequest {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version >= Version::Lite05, "TRACK", version)?;
        get_message(buf, |b| {
            Ok(Self {
                broadcast: get_path(b)?,
                track: get_string(b)?,
            })
        })
    }
}

impl Encode for TrackInfo {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite05,
            "TRACK_INFO does not exist in {version}"
        );
        debug_assert!(self.timescale != 0, "TRACK_INFO timescale must not be 0");
        put_message(buf, |b| {
            b.put_u8(self.priority);
            // lite-06 dropped the Ordered byte.
            if !version.is_lite06() {
                put_bool(b, self.ordered);
            }
            put_varint(b, self.max_latency_ms);
            put_varint(b, self.timescale);
        });
    }
}

impl Decode for TrackInfo {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version >= Version::Lite05, "TRACK_INFO", version)?;
        get_message(buf, |b| {
            let info = Self {
                priority: get_u8(b)?,
                ordered: match version.is_lite06() {
                    true => false,
                    false => get_bool(b, "ordered")?,
                },
                max_latency_ms: get_varint(b)?,
                timescale: get_varint(b)?,
            };
            // spec: §5.10 timescale 0 is a protocol violation.
            if info.timescale == 0 {
                return Err(DecodeError::InvalidValue {
                    what: "timescale",
                    value: 0,
                });
            }
            Ok(info)
        })
    }
}

impl Encode for Fetch {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite05,
            "FETCH does not exist in {version}"
        );
        debug_assert!(
            version.is_lite06() || (self.start_frame == 0 && self.end_frame.is_none()),
            "FETCH frame bounds do not exist in {version}"
        );
        put_message(buf, |b| {
            put_path(b, &self.broadcast);
            put_string(b, &self.track);
            b.put_u8(self.priority);
            put_varint(b, self.group);
            if version.is_lite06() {
                put_varint(b, self.start_frame);
                put_plus_one(b, self.end_frame);
            }
        });
    }
}

impl Decode for Fetch {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        // spec: §3.1 the reference serves and uses FETCH only from lite-05 on.
        require_version(version >= Version::Lite05, "FETCH", version)?;
        get_message(buf, |b| {
            let broadcast = get_path(b)?;
            let track = get_string(b)?;
            let priority = get_u8(b)?;
            let group = get_varint(b)?;
            let (start_frame, end_frame) = match version.is_lite06() {
                true => (get_varint(b)?, get_plus_one(b)?),
                false => (0, None),
            };
            // spec (lite-06): a range that ends before it starts can never be served.
            if let Some(end) = end_frame.filter(|end| *end < start_frame) {
                return Err(DecodeError::InvalidValue {
                    what: "fetch frame end before its start",
                    value: end,
                });
            }
            Ok(Self {
                broadcast,
                track,
                priority,
                group,
                start_frame,
                end_frame,
            })
        })
    }
}

impl Encode for Probe {
    /// `rtt_ms` is not written before lite-04.
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite03,
            "PROBE does not exist in {version}"
        );
        put_message(buf, |b| {
            put_varint(b, self.bitrate);
            if version >= Version::Lite04 {
                put_varint(b, self.rtt_ms);
            }
        });
    }
}

impl Decode for Probe {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version >= Version::Lite03, "PROBE", version)?;
        get_message(buf, |b| {
            let bitrate = get_varint(b)?;
            // spec: §5.14 RTT is on the wire from lite-04 on.
            let rtt_ms = match version >= Version::Lite04 {
                true => get_varint(b)?,
                false => 0,
            };
            Ok(Self { bitrate, rtt_ms })
        })
    }
}

impl Encode for Goaway {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite04,
            "GOAWAY does not exist in {version}"
        );
        put_message(buf, |b| put_string(b, &self.uri));
    }
}

impl Decode for Goaway {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version >= Version::Lite04, "GOAWAY", version)?;
        get_message(buf, |b| {
            Ok(Self {
                uri: get_string(b)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: Decode>(mut bytes: &[u8], version: Version) -> Result<T, DecodeError> {
        let v = T::decode(&mut bytes, version)?;
        assert!(bytes.is_empty(), "{} bytes left", bytes.len());
        Ok(v)
    }

    #[test]
    fn track_info_rejects_zero_timescale() {
        assert_eq!(
            decode::<TrackInfo>(&[0x04, 0x00, 0x00, 0x00, 0x00], Version::Lite05),
            Err(DecodeError::InvalidValue {
                what: "timescale",
                value: 0
            })
        );
        assert_eq!(
            decode::<TrackInfo>(&[0x04, 0x00, 0x03, 0x00, 0x01], Version::Lite05),
            Err(DecodeError::InvalidValue {
                what: "ordered",
                value: 3
            })
        );
    }

    #[test]
    fn probe_rtt_from_lite04() {
        let probe = Probe {
            bitrate: 5,
            rtt_ms: 40,
        };
        assert_eq!(probe.encode_to_vec(Version::Lite04), [0x02, 0x05, 0x28]);
        assert_eq!(probe.encode_to_vec(Version::Lite03), [0x01, 0x05]);
        assert_eq!(
            decode::<Probe>(&[0x01, 0x05], Version::Lite03),
            Ok(Probe {
                bitrate: 5,
                rtt_ms: 0
            })
        );
        assert_eq!(
            decode::<Probe>(&[0x01, 0x05], Version::Lite04),
            Err(DecodeError::Truncated)
        );
        assert!(matches!(
            decode::<Probe>(&[0x01, 0x05], Version::Lite02),
            Err(DecodeError::Unsupported { .. })
        ));
    }

    #[test]
    fn version_gates() {
        assert!(matches!(
            decode::<Goaway>(&[0x01, 0x00], Version::Lite03),
            Err(DecodeError::Unsupported { .. })
        ));
        assert_eq!(
            decode::<Goaway>(&[0x01, 0x00], Version::Lite04),
            Ok(Goaway::default())
        );
        for v in [
            Version::Lite01,
            Version::Lite02,
            Version::Lite03,
            Version::Lite04,
        ] {
            assert!(matches!(
                decode::<Fetch>(&[0x00], v),
                Err(DecodeError::Unsupported { .. })
            ));
            assert!(matches!(
                decode::<TrackRequest>(&[0x00], v),
                Err(DecodeError::Unsupported { .. })
            ));
            assert!(matches!(
                decode::<TrackInfo>(&[0x00], v),
                Err(DecodeError::Unsupported { .. })
            ));
        }
    }
}
