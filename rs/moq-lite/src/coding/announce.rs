//! Announce stream messages (spec §5.1–§5.5; lite-06 as docs/moq-lite.md describes it).

use std::collections::HashMap;

use bytes::{Buf, BufMut};

use super::{
    get_message, get_path, get_u8, get_varint, put_message, put_path, put_typed, put_varint,
    require_version, Decode, DecodeError, Encode, Version, MAX_HOPS,
};
use crate::{Cost, Path};

/// ANNOUNCE_REQUEST (ANNOUNCE_PLEASE before lite-04): first message on an Announce stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// Only broadcasts under this prefix (segment-aware); root = everything.
    pub prefix: Path,
    /// lite-04/05 only: the subscriber's own origin ID (0 = none); ignored and not written on other versions.
    pub exclude_hop: u64,
}

/// ANNOUNCE_OK (lite-05): the publisher's first reply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnnounceOk {
    /// Responder's origin ID (0 = unknown).
    pub hop_id: u64,
    /// Number of ANNOUNCE messages that follow as the initial snapshot.
    pub active_count: u64,
}

/// ANNOUNCE_INIT (lite-01/02): the initial set of live broadcasts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceInit {
    /// Paths relative to the request prefix (count ≤ bytes available, never pre-allocated past that).
    pub suffixes: Vec<Path>,
}

/// Announcement status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceStatus {
    /// 0: the broadcast ended.
    Ended,
    /// 1: the broadcast is live.
    Active,
    /// 2: replace an existing live advertisement (lite-05 only; other versions reject 2).
    Restart,
}

/// ANNOUNCE (lite-01…05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Active, ended or restart.
    pub status: AnnounceStatus,
    /// Path relative to the request prefix.
    pub suffix: Path,
    /// Hop IDs. lite-01/02: not on the wire (always empty). lite-03: only the count is on the wire;
    /// decoded as that many zeros. lite-04/05: the IDs. At most [`super::MAX_HOPS`].
    pub hops: Vec<u64>,
}

impl Encode for AnnounceRequest {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        put_message(buf, |b| {
            put_path(b, &self.prefix);
            if has_exclude_hop(version) {
                put_varint(b, self.exclude_hop);
            }
        });
    }
}

impl Decode for AnnounceRequest {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        get_message(buf, |b| {
            let prefix = get_path(b)?;
            // spec: §5.1 Exclude Hop is on the wire for lite-04 and lite-05 only.
            let exclude_hop = match has_exclude_hop(version) {
                true => get_varint(b)?,
                false => 0,
            };
            Ok(Self {
                prefix,
                exclude_hop,
            })
        })
    }
}

fn has_exclude_hop(version: Version) -> bool {
    matches!(version, Version::Lite04 | Version::Lite05)
}

impl Encode for AnnounceOk {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite05,
            "ANNOUNCE_OK does not exist in {version}"
        );
        put_message(buf, |b| {
            put_varint(b, self.hop_id);
            put_varint(b, self.active_count);
        });
    }
}

impl Decode for AnnounceOk {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version >= Version::Lite05, "ANNOUNCE_OK", version)?;
        get_message(buf, |b| {
            Ok(Self {
                hop_id: get_varint(b)?,
                active_count: get_varint(b)?,
            })
        })
    }
}

impl Encode for AnnounceInit {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version.is_compat(),
            "ANNOUNCE_INIT does not exist in {version}"
        );
        put_message(buf, |b| {
            put_varint(b, self.suffixes.len() as u64);
            for suffix in &self.suffixes {
                put_path(b, suffix);
            }
        });
    }
}

impl Decode for AnnounceInit {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version.is_compat(), "ANNOUNCE_INIT", version)?;
        get_message(buf, |b| {
            let count = get_varint(b)?;
            // Every suffix takes at least its length byte, so a count beyond the body is a lie;
            // checking first also bounds the allocation by the message size.
            if count > b.remaining() as u64 {
                return Err(DecodeError::Truncated);
            }
            let mut suffixes = Vec::with_capacity(count as usize);
            for _ in 0..count {
                suffixes.push(get_path(b)?);
            }
            Ok(Self { suffixes })
        })
    }
}

impl AnnounceStatus {
    /// The status byte.
    pub const fn code(self) -> u8 {
        match self {
            AnnounceStatus::Ended => 0,
            AnnounceStatus::Active => 1,
            AnnounceStatus::Restart => 2,
        }
    }
}

impl Encode for Announce {
    /// Restart is written as Active before lite-05 (a local bug: debug builds panic). Hops are
    /// written per version: none on 01/02, the count only on 03, the IDs on 04/05.
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            self.status != AnnounceStatus::Restart || version >= Version::Lite05,
            "ANNOUNCE restart does not exist in {version}"
        );
        debug_assert!(
            self.hops.len() as u64 <= MAX_HOPS,
            "{} hops exceed MAX_HOPS",
            self.hops.len()
        );
        let status = match self.status {
            AnnounceStatus::Restart if version < Version::Lite05 => AnnounceStatus::Active,
            status => status,
        };
        put_message(buf, |b| {
            b.put_u8(status.code());
            put_path(b, &self.suffix);
            match version {
                Version::Lite01 | Version::Lite02 => {}
                Version::Lite03 => put_varint(b, self.hops.len() as u64),
                Version::Lite04 | Version::Lite05 | Version::Lite06 => {
                    put_varint(b, self.hops.len() as u64);
                    for hop in &self.hops {
                        put_varint(b, *hop);
                    }
                }
            }
        });
    }
}

impl Decode for Announce {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        // spec: lite-06 replaced ANNOUNCE with the typed ANNOUNCE_START/END/UPDATE.
        require_version(!version.is_lite06(), "ANNOUNCE", version)?;
        get_message(buf, |b| {
            // spec: §5.4 status 2 (restart) is accepted only on lite-05.
            let status = match get_u8(b)? {
                0 => AnnounceStatus::Ended,
                1 => AnnounceStatus::Active,
                2 if version >= Version::Lite05 => AnnounceStatus::Restart,
                value => {
                    return Err(DecodeError::InvalidValue {
                        what: "announce status",
                        value: value.into(),
                    })
                }
            };
            let suffix = get_path(b)?;
            let hops = match version {
                Version::Lite01 | Version::Lite02 => Vec::new(),
                Version::Lite03 => vec![0; get_hop_count(b)?],
                Version::Lite04 | Version::Lite05 | Version::Lite06 => {
                    let count = get_hop_count(b)?;
                    let mut hops = Vec::with_capacity(count);
                    for _ in 0..count {
                        hops.push(get_varint(b)?);
                    }
                    hops
                }
            };
            Ok(Self {
                status,
                suffix,
                hops,
            })
        })
    }
}

/// A lite-06 announcement: typed, the type outside the length (ANNOUNCE_START 0x0, ANNOUNCE_END 0x1,
/// ANNOUNCE_UPDATE 0x2). The n-th START on a stream has the implicit announce id n (from 0); END and
/// UPDATE name a live id ([`AnnounceIds`] keeps the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnounceMessage {
    /// ANNOUNCE_START: a broadcast is live; takes the next announce id.
    Start {
        /// Path relative to the request prefix.
        suffix: Path,
        /// Hop IDs, without the sender (as lite-05). At most [`MAX_HOPS`].
        hops: Vec<u64>,
        /// Route cost as the sender sees it (the receiver adds the link's price).
        cost: Cost,
    },
    /// ANNOUNCE_END: the broadcast with this id ended; the id is retired.
    End {
        /// Announce id.
        id: u64,
    },
    /// ANNOUNCE_UPDATE (the reference calls it RESTART): new chain and cost for a live id.
    Update {
        /// Announce id.
        id: u64,
        /// Hop IDs, without the sender.
        hops: Vec<u64>,
        /// Route cost.
        cost: Cost,
    },
    /// A type we do not know, skipped by its length (it takes no id). Decode only.
    Unknown {
        /// The type.
        kind: u64,
    },
}

const ANNOUNCE_START: u64 = 0x0;
const ANNOUNCE_END: u64 = 0x1;
const ANNOUNCE_UPDATE: u64 = 0x2;

impl Encode for AnnounceMessage {
    /// lite-06 only; hops beyond [`MAX_HOPS`] are a local bug (debug builds panic).
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version.is_lite06(),
            "typed announcements do not exist in {version}"
        );
        match self {
            AnnounceMessage::Start { suffix, hops, cost } => put_typed(buf, ANNOUNCE_START, |b| {
                put_path(b, suffix);
                put_hops_and_cost(b, hops, *cost);
            }),
            AnnounceMessage::End { id } => put_typed(buf, ANNOUNCE_END, |b| put_varint(b, *id)),
            AnnounceMessage::Update { id, hops, cost } => put_typed(buf, ANNOUNCE_UPDATE, |b| {
                put_varint(b, *id);
                put_hops_and_cost(b, hops, *cost);
            }),
            // Never sent by a session; written empty so the fuzz round trip holds.
            AnnounceMessage::Unknown { kind } => put_typed(buf, *kind, |_| {}),
        }
    }
}

fn put_hops_and_cost(b: &mut Vec<u8>, hops: &[u64], cost: Cost) {
    debug_assert!(
        hops.len() as u64 <= MAX_HOPS,
        "{} hops exceed MAX_HOPS",
        hops.len()
    );
    put_varint(b, hops.len() as u64);
    for hop in hops {
        put_varint(b, *hop);
    }
    let cost = cost.clamped();
    put_varint(b, cost.warm);
    put_varint(b, cost.cold);
}

fn get_hops_and_cost(b: &mut bytes::Bytes) -> Result<(Vec<u64>, Cost), DecodeError> {
    let count = get_hop_count(b)?;
    let mut hops = Vec::with_capacity(count);
    for _ in 0..count {
        hops.push(get_varint(b)?);
    }
    let cost = Cost {
        warm: get_varint(b)?,
        cold: get_varint(b)?,
    };
    Ok((hops, cost))
}

impl Decode for AnnounceMessage {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version.is_lite06(), "ANNOUNCE_START/END/UPDATE", version)?;
        let kind = get_varint(buf)?;
        get_message(buf, |b| match kind {
            ANNOUNCE_START => {
                let suffix = get_path(b)?;
                let (hops, cost) = get_hops_and_cost(b)?;
                Ok(AnnounceMessage::Start { suffix, hops, cost })
            }
            ANNOUNCE_END => Ok(AnnounceMessage::End { id: get_varint(b)? }),
            ANNOUNCE_UPDATE => {
                let id = get_varint(b)?;
                let (hops, cost) = get_hops_and_cost(b)?;
                Ok(AnnounceMessage::Update { id, hops, cost })
            }
            // An unknown type is skipped by its length, so the stream stays up (as the reference).
            kind => {
                b.advance(b.remaining());
                Ok(AnnounceMessage::Unknown { kind })
            }
        })
    }
}

/// The implicit announce ids of one lite-06 Announce stream, either side: the n-th START is id n,
/// END retires an id, an id is never reused. Pure state; the session bounds how many are live.
#[derive(Debug, Default)]
pub struct AnnounceIds {
    next: u64,
    live: HashMap<u64, Path>,
    by_path: HashMap<Path, u64>,
}

impl AnnounceIds {
    /// A START for `suffix`: its id. A suffix already live is a protocol violation for the
    /// receiver (the sender must UPDATE it instead); the caller decides.
    pub fn start(&mut self, suffix: Path) -> u64 {
        let id = self.next;
        self.next += 1;
        if let Some(old) = self.by_path.insert(suffix.clone(), id) {
            self.live.remove(&old);
        }
        self.live.insert(id, suffix);
        id
    }

    /// The live id of `suffix`, if any (the sender's view).
    pub fn id_of(&self, suffix: &Path) -> Option<u64> {
        self.by_path.get(suffix).copied()
    }

    /// The suffix of live `id` (for UPDATE); `None` if unknown or retired.
    pub fn get(&self, id: u64) -> Option<&Path> {
        self.live.get(&id)
    }

    /// Retire `id` (for END): its suffix, or `None` if unknown or retired.
    pub fn end(&mut self, id: u64) -> Option<Path> {
        let suffix = self.live.remove(&id)?;
        self.by_path.remove(&suffix);
        Some(suffix)
    }

    /// Number of live ids.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no id is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// Read a hop count, capped at [`MAX_HOPS`] (spec §2).
fn get_hop_count<B: Buf>(buf: &mut B) -> Result<usize, DecodeError> {
    let count = get_varint(buf)?;
    if count > MAX_HOPS {
        return Err(DecodeError::TooLarge {
            what: "hop count",
            len: count,
            max: MAX_HOPS,
        });
    }
    Ok(count as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<T: Decode>(mut bytes: &[u8], version: Version) -> Result<T, DecodeError> {
        let v = T::decode(&mut bytes, version)?;
        assert!(bytes.is_empty(), "{} bytes left", bytes.len());
        Ok(v)
    }

    fn path(s: &str) -> Path {
        Path::new(s).unwrap()
    }

    #[test]
    fn request_per_version() {
        let req = AnnounceRequest {
            prefix: path("anon"),
            exclude_hop: 42,
        };
        assert_eq!(
            req.encode_to_vec(Version::Lite05),
            [0x06, 0x04, b'a', b'n', b'o', b'n', 0x2a]
        );
        assert_eq!(
            req.encode_to_vec(Version::Lite03),
            [0x05, 0x04, b'a', b'n', b'o', b'n']
        );
        assert_eq!(
            decode::<AnnounceRequest>(&[0x06, 0x04, b'a', b'n', b'o', b'n', 0x2a], Version::Lite03),
            Err(DecodeError::Long(1))
        );
        // Paths are normalised on decode.
        let req = decode::<AnnounceRequest>(&[0x03, 0x02, b'/', b'a'], Version::Lite02).unwrap();
        assert_eq!(req.prefix, path("a"));
    }

    #[test]
    fn announce_status_and_hops() {
        let restart = [0x05, 0x02, 0x01, b'x', 0x01, 0x07];
        assert_eq!(
            decode::<Announce>(&restart, Version::Lite05),
            Ok(Announce {
                status: AnnounceStatus::Restart,
                suffix: path("x"),
                hops: vec![7]
            })
        );
        assert_eq!(
            decode::<Announce>(&restart, Version::Lite04),
            Err(DecodeError::InvalidValue {
                what: "announce status",
                value: 2
            })
        );
        let lite03 = [0x04, 0x01, 0x01, b'x', 0x03];
        assert_eq!(
            decode::<Announce>(&lite03, Version::Lite03).unwrap().hops,
            vec![0, 0, 0]
        );
        let too_many = [0x04, 0x01, 0x01, b'x', 0x21];
        assert!(matches!(
            decode::<Announce>(&too_many, Version::Lite03),
            Err(DecodeError::TooLarge { len: 33, .. })
        ));
        let lite02 = [0x03, 0x01, 0x01, b'x'];
        assert_eq!(
            decode::<Announce>(&lite02, Version::Lite02).unwrap().hops,
            Vec::<u64>::new()
        );
    }

    #[test]
    fn announce_init_count_is_bounded_by_the_body() {
        let init = AnnounceInit {
            suffixes: vec![path("a"), Path::ROOT],
        };
        let bytes = init.encode_to_vec(Version::Lite02);
        assert_eq!(bytes, [0x04, 0x02, 0x01, b'a', 0x00]);
        assert_eq!(decode::<AnnounceInit>(&bytes, Version::Lite01), Ok(init));
        // A count of 2^62-1 in an 8-byte body fails without allocating.
        let huge = [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            decode::<AnnounceInit>(&huge, Version::Lite02),
            Err(DecodeError::Truncated)
        );
        assert!(matches!(
            decode::<AnnounceInit>(&bytes, Version::Lite05),
            Err(DecodeError::Unsupported { .. })
        ));
    }

    #[test]
    fn announce_ok_only_on_lite05() {
        let ok = AnnounceOk {
            hop_id: 12345,
            active_count: 1,
        };
        assert_eq!(ok.encode_to_vec(Version::Lite05), [0x03, 0x70, 0x39, 0x01]);
        assert!(matches!(
            decode::<AnnounceOk>(&[0x03, 0x70, 0x39, 0x01], Version::Lite04),
            Err(DecodeError::Unsupported {
                what: "ANNOUNCE_OK",
                version: Version::Lite04
            })
        ));
    }
}
