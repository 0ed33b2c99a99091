//! Subscribe stream messages (spec §5.7–§5.9).

use bytes::{Buf, BufMut};

use super::{
    get_bool, get_message, get_path, get_plus_one, get_string, get_u8, get_varint, put_bool,
    put_message, put_path, put_plus_one, put_string, put_typed, put_varint, require_version,
    Decode, DecodeError, Encode, Version,
};
use crate::Path;

/// SUBSCRIBE: first message on a Subscribe stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Subscriber-chosen ID, unique per session direction.
    pub id: u64,
    /// Broadcast path relative to the session root.
    pub broadcast: Path,
    /// Track name (free-form, may contain `/`).
    pub track: String,
    /// Subscriber priority, higher first (raw byte).
    pub priority: u8,
    /// lite-03+: oldest group first when true.
    pub ordered: bool,
    /// lite-03+: max latency in milliseconds.
    pub max_latency_ms: u64,
    /// lite-03+: first group wanted (`None` = latest), +1 encoded.
    pub start_group: Option<u64>,
    /// lite-03+: last group wanted, inclusive (`None` = unbounded), +1 encoded.
    pub end_group: Option<u64>,
    /// lite-06: first frame wanted within `start_group` (0 = the whole group). Needs a `start_group`.
    pub start_frame: u64,
    /// lite-06: last frame wanted (inclusive) within `end_group`, +1 encoded. Needs an `end_group`.
    pub end_frame: Option<u64>,
}

/// SUBSCRIBE_UPDATE (lite-03+): replaces the subscription's preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscribeUpdate {
    /// Subscriber priority.
    pub priority: u8,
    /// Oldest first when true.
    pub ordered: bool,
    /// Max latency in milliseconds.
    pub max_latency_ms: u64,
    /// First group wanted (+1 encoded).
    pub start_group: Option<u64>,
    /// Last group wanted inclusive (+1 encoded).
    pub end_group: Option<u64>,
    /// lite-06: first frame wanted within `start_group` (see [`Subscribe::start_frame`]).
    pub start_frame: u64,
    /// lite-06: last frame wanted within `end_group` (see [`Subscribe::end_frame`]).
    pub end_frame: Option<u64>,
}

/// A publisher → subscriber message on the Subscribe stream; which variants exist depends on the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeResponse {
    /// lite-01 (`Length, Priority (8)`) / lite-02 (`Length` = 0) untyped SUBSCRIBE_OK.
    /// `priority` is not on the wire for lite-02 (decodes as 0).
    OkLegacy {
        /// Publisher priority (lite-01 only).
        priority: u8,
    },
    /// lite-03/04 typed 0x0 SUBSCRIBE_OK.
    Ok {
        /// Priority.
        priority: u8,
        /// Ordered.
        ordered: bool,
        /// Max latency (ms).
        max_latency_ms: u64,
        /// Start group (+1 encoded).
        start_group: Option<u64>,
        /// End group (+1 encoded).
        end_group: Option<u64>,
    },
    /// lite-05 typed 0x0 SUBSCRIBE_OK/START: the first group that will be delivered.
    Start {
        /// Absolute group sequence.
        group: u64,
    },
    /// lite-05 typed 0x1 SUBSCRIBE_END: first sequence that will never come (exclusive).
    End {
        /// Absolute group sequence.
        group: u64,
    },
    /// SUBSCRIBE_DROP: typed 0x1 on lite-03/04, 0x2 on lite-05. Plain (not +1) sequences.
    Drop {
        /// First dropped group.
        start: u64,
        /// Last dropped group (inclusive).
        end: u64,
        /// Error code (0 = simply unavailable).
        error_code: u64,
    },
}

impl Encode for Subscribe {
    /// lite-01/02 stop after the priority byte; the lite-03+ fields are then not written.
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        put_message(buf, |b| {
            put_varint(b, self.id);
            put_path(b, &self.broadcast);
            put_string(b, &self.track);
            b.put_u8(self.priority);
            if version >= Version::Lite03 {
                put_preferences(
                    b,
                    version,
                    self.ordered,
                    self.max_latency_ms,
                    (self.start_group, self.start_frame),
                    (self.end_group, self.end_frame),
                );
            }
        });
    }
}

impl Decode for Subscribe {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        get_message(buf, |b| {
            let id = get_varint(b)?;
            let broadcast = get_path(b)?;
            let track = get_string(b)?;
            let priority = get_u8(b)?;
            // spec: §5.7 the preferences exist from lite-03 on.
            if version < Version::Lite03 {
                return Ok(Self {
                    id,
                    broadcast,
                    track,
                    priority,
                    ordered: false,
                    max_latency_ms: 0,
                    start_group: None,
                    end_group: None,
                    start_frame: 0,
                    end_frame: None,
                });
            }
            let p = get_preferences(b, version)?;
            Ok(Self {
                id,
                broadcast,
                track,
                priority,
                ordered: p.ordered,
                max_latency_ms: p.max_latency_ms,
                start_group: p.start_group,
                end_group: p.end_group,
                start_frame: p.start_frame,
                end_frame: p.end_frame,
            })
        })
    }
}

impl Encode for SubscribeUpdate {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite03,
            "SUBSCRIBE_UPDATE does not exist in {version}"
        );
        put_message(buf, |b| {
            b.put_u8(self.priority);
            put_preferences(
                b,
                version,
                self.ordered,
                self.max_latency_ms,
                (self.start_group, self.start_frame),
                (self.end_group, self.end_frame),
            );
        });
    }
}

impl Decode for SubscribeUpdate {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version >= Version::Lite03, "SUBSCRIBE_UPDATE", version)?;
        get_message(buf, |b| {
            let priority = get_u8(b)?;
            let p = get_preferences(b, version)?;
            Ok(Self {
                priority,
                ordered: p.ordered,
                max_latency_ms: p.max_latency_ms,
                start_group: p.start_group,
                end_group: p.end_group,
                start_frame: p.start_frame,
                end_frame: p.end_frame,
            })
        })
    }
}

/// The subscription preferences shared by SUBSCRIBE (lite-03+) and SUBSCRIBE_UPDATE, after the
/// priority byte.
struct Preferences {
    ordered: bool,
    max_latency_ms: u64,
    start_group: Option<u64>,
    end_group: Option<u64>,
    start_frame: u64,
    end_frame: Option<u64>,
}

/// lite-03…05: `Ordered (8), Max Latency (i), Group Start (+1), Group End (+1)`.
/// lite-06: `Max Age (i), Group Start (raw), Group End (+1), Frame Start (i), Frame End (+1)`: the
/// Ordered byte is gone and Group Start is the plain sequence, 0 meaning no floor (so `None` and
/// `Some(0)` write the same bytes). Frame bounds need a group to qualify; a frame bound without
/// one, or on an older version, is a local bug (debug builds panic, release builds drop it).
fn put_preferences(
    b: &mut Vec<u8>,
    version: Version,
    ordered: bool,
    max_latency_ms: u64,
    (start_group, start_frame): (Option<u64>, u64),
    (end_group, end_frame): (Option<u64>, Option<u64>),
) {
    if !version.is_lite06() {
        debug_assert!(
            start_frame == 0 && end_frame.is_none(),
            "frame bounds do not exist in {version}"
        );
        put_bool(b, ordered);
        put_varint(b, max_latency_ms);
        put_plus_one(b, start_group);
        put_plus_one(b, end_group);
        return;
    }
    debug_assert!(
        (start_frame == 0 || start_group.is_some()) && (end_frame.is_none() || end_group.is_some()),
        "a frame bound needs its group"
    );
    put_varint(b, max_latency_ms);
    put_varint(b, start_group.unwrap_or(0));
    put_plus_one(b, end_group);
    put_varint(b, start_frame);
    put_plus_one(b, end_frame);
}

fn get_preferences(b: &mut bytes::Bytes, version: Version) -> Result<Preferences, DecodeError> {
    if !version.is_lite06() {
        return Ok(Preferences {
            ordered: get_bool(b, "ordered")?,
            max_latency_ms: get_varint(b)?,
            start_group: get_plus_one(b)?,
            end_group: get_plus_one(b)?,
            start_frame: 0,
            end_frame: None,
        });
    }
    let max_latency_ms = get_varint(b)?;
    let start = get_varint(b)?;
    let end_group = get_plus_one(b)?;
    let start_frame = get_varint(b)?;
    let end_frame = get_plus_one(b)?;
    // spec (lite-06): a Frame End qualifies a Group End; without one there is nothing to count from.
    if end_frame.is_some() && end_group.is_none() {
        return Err(DecodeError::InvalidValue {
            what: "frame end without a group end",
            value: end_frame.unwrap_or(0),
        });
    }
    // Group Start 0 with Frame Start 0 is no floor at all; group 0 stays named when a frame
    // offset qualifies it.
    let start_group = match (start, start_frame) {
        (0, 0) => None,
        (start, _) => Some(start),
    };
    Ok(Preferences {
        ordered: false,
        max_latency_ms,
        start_group,
        end_group,
        start_frame,
        end_frame,
    })
}

impl SubscribeResponse {
    /// Whether this variant exists in `version` (spec §5.9).
    pub fn allowed(&self, version: Version) -> bool {
        match self {
            // The lite-02 form drops the priority (it decodes as 0).
            SubscribeResponse::OkLegacy { .. } => version.is_compat(),
            SubscribeResponse::Ok { .. } => matches!(version, Version::Lite03 | Version::Lite04),
            SubscribeResponse::Start { .. } | SubscribeResponse::End { .. } => {
                version >= Version::Lite05
            }
            SubscribeResponse::Drop { .. } => version >= Version::Lite03,
        }
    }
}

impl Encode for SubscribeResponse {
    /// A variant not in `version` (see [`SubscribeResponse::allowed`]) is a local bug: debug builds
    /// panic, release builds write the variant's own layout, which the peer will reject.
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            self.allowed(version),
            "{self:?} does not exist in {version}"
        );
        match *self {
            SubscribeResponse::OkLegacy { priority } => put_message(buf, |b| {
                if version == Version::Lite01 {
                    b.put_u8(priority);
                }
            }),
            SubscribeResponse::Ok {
                priority,
                ordered,
                max_latency_ms,
                start_group,
                end_group,
            } => put_typed(buf, 0x0, |b| {
                b.put_u8(priority);
                put_bool(b, ordered);
                put_varint(b, max_latency_ms);
                put_plus_one(b, start_group);
                put_plus_one(b, end_group);
            }),
            SubscribeResponse::Start { group } => put_typed(buf, 0x0, |b| put_varint(b, group)),
            SubscribeResponse::End { group } => put_typed(buf, 0x1, |b| put_varint(b, group)),
            SubscribeResponse::Drop {
                start,
                end,
                error_code,
            } => {
                let kind = if version >= Version::Lite05 { 0x2 } else { 0x1 };
                put_typed(buf, kind, |b| {
                    put_varint(b, start);
                    put_varint(b, end);
                    put_varint(b, error_code);
                })
            }
        }
    }
}

impl Decode for SubscribeResponse {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        match version {
            // spec: §5.9 lite-01 SUBSCRIBE_OK carries the publisher priority, lite-02's is empty.
            Version::Lite01 => get_message(buf, |b| {
                Ok(Self::OkLegacy {
                    priority: get_u8(b)?,
                })
            }),
            Version::Lite02 => get_message(buf, |_| Ok(Self::OkLegacy { priority: 0 })),
            Version::Lite03 | Version::Lite04 => match get_varint(buf)? {
                0x0 => get_message(buf, |b| {
                    Ok(Self::Ok {
                        priority: get_u8(b)?,
                        ordered: get_bool(b, "ordered")?,
                        max_latency_ms: get_varint(b)?,
                        start_group: get_plus_one(b)?,
                        end_group: get_plus_one(b)?,
                    })
                }),
                0x1 => get_message(buf, get_drop),
                kind => Err(DecodeError::InvalidValue {
                    what: "subscribe response type",
                    value: kind,
                }),
            },
            // spec: §5.9 lite-06 keeps the lite-05 responses.
            Version::Lite05 | Version::Lite06 => match get_varint(buf)? {
                0x0 => get_message(buf, |b| {
                    Ok(Self::Start {
                        group: get_varint(b)?,
                    })
                }),
                0x1 => get_message(buf, |b| {
                    Ok(Self::End {
                        group: get_varint(b)?,
                    })
                }),
                0x2 => get_message(buf, get_drop),
                kind => Err(DecodeError::InvalidValue {
                    what: "subscribe response type",
                    value: kind,
                }),
            },
        }
    }
}

/// The SUBSCRIBE_DROP body (same on lite-03…05, only its type differs).
fn get_drop(b: &mut bytes::Bytes) -> Result<SubscribeResponse, DecodeError> {
    Ok(SubscribeResponse::Drop {
        start: get_varint(b)?,
        end: get_varint(b)?,
        error_code: get_varint(b)?,
    })
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
    fn legacy_ok() {
        let ok = SubscribeResponse::OkLegacy { priority: 7 };
        assert_eq!(ok.encode_to_vec(Version::Lite01), [0x01, 0x07]);
        assert_eq!(
            decode::<SubscribeResponse>(&[0x01, 0x07], Version::Lite01),
            Ok(ok)
        );
        let ok = SubscribeResponse::OkLegacy { priority: 0 };
        assert_eq!(ok.encode_to_vec(Version::Lite02), [0x00]);
        assert_eq!(
            decode::<SubscribeResponse>(&[0x00], Version::Lite02),
            Ok(ok)
        );
        assert_eq!(
            decode::<SubscribeResponse>(&[0x01, 0x07], Version::Lite02),
            Err(DecodeError::Long(1))
        );
    }

    #[test]
    fn typed_per_version() {
        let drop = SubscribeResponse::Drop {
            start: 6,
            end: 7,
            error_code: 0,
        };
        assert_eq!(
            drop.encode_to_vec(Version::Lite05),
            [0x02, 0x03, 0x06, 0x07, 0x00]
        );
        assert_eq!(
            drop.encode_to_vec(Version::Lite04),
            [0x01, 0x03, 0x06, 0x07, 0x00]
        );
        assert_eq!(
            decode::<SubscribeResponse>(&[0x01, 0x03, 0x06, 0x07, 0x00], Version::Lite03),
            Ok(drop)
        );
        // Type 1 on lite-05 is SUBSCRIBE_END, whose body is one varint.
        assert_eq!(
            decode::<SubscribeResponse>(&[0x01, 0x03, 0x06, 0x07, 0x00], Version::Lite05),
            Err(DecodeError::Long(2))
        );
        assert_eq!(
            decode::<SubscribeResponse>(&[0x02, 0x00], Version::Lite04),
            Err(DecodeError::InvalidValue {
                what: "subscribe response type",
                value: 2
            })
        );
        assert_eq!(
            decode::<SubscribeResponse>(&[0x03, 0x00], Version::Lite05),
            Err(DecodeError::InvalidValue {
                what: "subscribe response type",
                value: 3
            })
        );
        let ok = [0x05, 0x3c, 0x02, 0x00, 0x00, 0x00];
        assert_eq!(
            decode::<SubscribeResponse>(&[&[0x00][..], &ok].concat(), Version::Lite03),
            Err(DecodeError::InvalidValue {
                what: "ordered",
                value: 2
            })
        );
    }

    #[test]
    fn allowed_table() {
        let all = [
            SubscribeResponse::OkLegacy { priority: 0 },
            SubscribeResponse::Ok {
                priority: 0,
                ordered: false,
                max_latency_ms: 0,
                start_group: None,
                end_group: None,
            },
            SubscribeResponse::Start { group: 0 },
            SubscribeResponse::End { group: 0 },
            SubscribeResponse::Drop {
                start: 0,
                end: 0,
                error_code: 0,
            },
        ];
        let count = |v: Version| all.iter().filter(|r| r.allowed(v)).count();
        assert_eq!([count(Version::Lite01), count(Version::Lite02)], [1, 1]);
        assert_eq!(
            [
                count(Version::Lite03),
                count(Version::Lite04),
                count(Version::Lite05)
            ],
            [2, 2, 3]
        );
    }

    #[test]
    fn update_needs_lite03() {
        assert!(matches!(
            decode::<SubscribeUpdate>(&[0x00], Version::Lite02),
            Err(DecodeError::Unsupported { .. })
        ));
        assert_eq!(
            decode::<SubscribeUpdate>(&[0x05, 0x50, 0x01, 0x00, 0x00, 0x00], Version::Lite03),
            Ok(SubscribeUpdate {
                priority: 0x50,
                ordered: true,
                max_latency_ms: 0,
                start_group: None,
                end_group: None,
                start_frame: 0,
                end_frame: None,
            })
        );
    }
}
