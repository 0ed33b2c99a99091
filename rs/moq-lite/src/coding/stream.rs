//! Stream type tags (spec §3): the first varint on every stream.

/// The type of a bidirectional stream, written by its opener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BiStreamType {
    /// 0x0: lite-01/02 session stream (historical; rejected).
    Session,
    /// 0x1: announce discovery, opened by a subscriber.
    Announce,
    /// 0x2: one subscription, opened by a subscriber.
    Subscribe,
    /// 0x3: fetch one group (lite-05).
    Fetch,
    /// 0x4: probe reports (lite-03+).
    Probe,
    /// 0x5: goaway (lite-04+).
    Goaway,
    /// 0x6: track info (lite-05).
    Track,
    /// 0x20: compat CLIENT_SETUP (lite-01/02 negotiation); the type byte is part of the message.
    ClientCompat,
}

/// The type of a unidirectional stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UniStreamType {
    /// 0x0: one group's frames.
    Group,
    /// 0x1: the SETUP message (lite-05), once per endpoint.
    Setup,
}

// CONTRACT (coding helper): for both enums
// - `pub const fn id(self) -> u64`
// - `pub fn from_id(id: u64) -> Option<Self>`
// - `pub fn allowed(self, version: Version) -> bool` (table in spec §3.1/§3.2; Fetch/Track only 05,
//   Probe 03+, Goaway 04+, Setup 05, Session/ClientCompat only 01/02)
// - `impl Encode` writes the varint id; there is no Decode (use get_varint + from_id so an unknown
//   type can be reset without being an error).

use bytes::BufMut;

use super::{put_varint, Encode, Version};

impl BiStreamType {
    /// The stream type varint.
    pub const fn id(self) -> u64 {
        match self {
            BiStreamType::Session => 0x0,
            BiStreamType::Announce => 0x1,
            BiStreamType::Subscribe => 0x2,
            BiStreamType::Fetch => 0x3,
            BiStreamType::Probe => 0x4,
            BiStreamType::Goaway => 0x5,
            BiStreamType::Track => 0x6,
            BiStreamType::ClientCompat => 0x20,
        }
    }

    /// The stream type for a varint, if it is one we know (in any version).
    pub fn from_id(id: u64) -> Option<Self> {
        Some(match id {
            0x0 => BiStreamType::Session,
            0x1 => BiStreamType::Announce,
            0x2 => BiStreamType::Subscribe,
            0x3 => BiStreamType::Fetch,
            0x4 => BiStreamType::Probe,
            0x5 => BiStreamType::Goaway,
            0x6 => BiStreamType::Track,
            0x20 => BiStreamType::ClientCompat,
            _ => return None,
        })
    }

    /// Whether this stream type exists in `version` (spec §3.1; Fetch per the reference, 05 only).
    pub fn allowed(self, version: Version) -> bool {
        match self {
            BiStreamType::Session | BiStreamType::ClientCompat => version.is_compat(),
            BiStreamType::Announce | BiStreamType::Subscribe => true,
            BiStreamType::Fetch | BiStreamType::Track => version >= Version::Lite05,
            BiStreamType::Probe => version >= Version::Lite03,
            BiStreamType::Goaway => version >= Version::Lite04,
        }
    }
}

impl Encode for BiStreamType {
    fn encode<B: BufMut>(&self, buf: &mut B, _version: Version) {
        put_varint(buf, self.id());
    }
}

impl UniStreamType {
    /// The stream type varint.
    pub const fn id(self) -> u64 {
        match self {
            UniStreamType::Group => 0x0,
            UniStreamType::Setup => 0x1,
        }
    }

    /// The stream type for a varint, if it is one we know (in any version).
    pub fn from_id(id: u64) -> Option<Self> {
        match id {
            0x0 => Some(UniStreamType::Group),
            0x1 => Some(UniStreamType::Setup),
            _ => None,
        }
    }

    /// Whether this stream type exists in `version` (spec §3.2).
    pub fn allowed(self, version: Version) -> bool {
        match self {
            UniStreamType::Group => true,
            UniStreamType::Setup => version >= Version::Lite05,
        }
    }
}

impl Encode for UniStreamType {
    fn encode<B: BufMut>(&self, buf: &mut B, _version: Version) {
        put_varint(buf, self.id());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BI: [BiStreamType; 8] = [
        BiStreamType::Session,
        BiStreamType::Announce,
        BiStreamType::Subscribe,
        BiStreamType::Fetch,
        BiStreamType::Probe,
        BiStreamType::Goaway,
        BiStreamType::Track,
        BiStreamType::ClientCompat,
    ];

    #[test]
    fn ids_roundtrip() {
        for t in BI {
            assert_eq!(BiStreamType::from_id(t.id()), Some(t));
            assert_eq!(t.encode_to_vec(Version::Lite05), [t.id() as u8]);
        }
        for t in [UniStreamType::Group, UniStreamType::Setup] {
            assert_eq!(UniStreamType::from_id(t.id()), Some(t));
        }
        assert_eq!(BiStreamType::from_id(0x7), None);
        assert_eq!(BiStreamType::from_id(0x21), None);
        assert_eq!(UniStreamType::from_id(0x2), None);
    }

    #[test]
    fn version_table() {
        // spec: §3.1 / §3.2.
        let allowed = |t: BiStreamType| Version::ALL.into_iter().filter(|v| t.allowed(*v)).count();
        assert_eq!(allowed(BiStreamType::Session), 2);
        assert_eq!(allowed(BiStreamType::ClientCompat), 2);
        assert_eq!(allowed(BiStreamType::Announce), 6);
        assert_eq!(allowed(BiStreamType::Subscribe), 6);
        assert_eq!(allowed(BiStreamType::Probe), 4);
        assert_eq!(allowed(BiStreamType::Goaway), 3);
        assert!(
            BiStreamType::Fetch.allowed(Version::Lite05)
                && !BiStreamType::Fetch.allowed(Version::Lite04)
        );
        assert!(
            BiStreamType::Track.allowed(Version::Lite05)
                && !BiStreamType::Track.allowed(Version::Lite04)
        );
        assert!(!BiStreamType::ClientCompat.allowed(Version::Lite03));
        assert!(
            UniStreamType::Setup.allowed(Version::Lite05)
                && !UniStreamType::Setup.allowed(Version::Lite04)
        );
        assert!(Version::ALL
            .into_iter()
            .all(|v| UniStreamType::Group.allowed(v)));
    }
}
