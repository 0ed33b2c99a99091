//! Fuzz-target bodies, shared by the cargo-fuzz crate (`fuzz/fuzz_targets/*.rs`) and the corpus
//! replay test (`tests/fuzz_corpus.rs`), so a committed crash input is checked by `cargo test`.
//!
//! Each function feeds arbitrary bytes to the decoders of one message family for every version
//! and panics only when it finds a codec bug: a decoder panicking, a decoded value whose
//! encoding does not decode back to the same value, or a strict prefix of a decodable message
//! that is not [`DecodeError::Short`].

use std::fmt::Debug;

use super::*;

/// Prefix checks are quadratic; skip them for messages longer than this.
const PREFIX_CHECK_LIMIT: usize = 4096;

/// How a message type is framed, for the checks that depend on it.
#[derive(Clone, Copy)]
enum Framing {
    /// Every strict prefix of an encoding must be `Short`.
    Prefixed,
    /// The compat CLIENT_SETUP: `encode` writes the 0x20 tag, `decode` starts after it.
    ClientCompat,
    /// Runs to the end of the buffer (DATAGRAM): a prefix may be another valid value.
    ToEnd,
}

/// Decode a `T` from the front of `data`; when that succeeds, check it round-trips and return it
/// with the number of bytes it took.
fn check<T>(data: &[u8], version: Version, framing: Framing) -> Option<(T, usize)>
where
    T: Encode + Decode + PartialEq + Debug,
{
    let mut buf = data;
    let value = T::decode(&mut buf, version).ok()?;
    let used = data.len() - buf.len();

    let mut encoded = value.encode_to_vec(version);
    if let Framing::ClientCompat = framing {
        assert_eq!(
            encoded.first(),
            Some(&CLIENT_SETUP_COMPAT_TYPE),
            "compat CLIENT_SETUP tag"
        );
        encoded.remove(0);
    }
    let mut again = &encoded[..];
    assert_eq!(
        T::decode(&mut again, version).as_ref(),
        Ok(&value),
        "{version}: {value:?} encoded as {encoded:02x?} does not decode back"
    );
    assert!(
        again.is_empty(),
        "{version}: {value:?} decoded from {encoded:02x?} left {} bytes",
        again.len()
    );

    if !matches!(framing, Framing::ToEnd) {
        for bytes in [&data[..used], &encoded[..]] {
            if bytes.len() > PREFIX_CHECK_LIMIT {
                continue;
            }
            for cut in 0..bytes.len() {
                let result = T::decode(&mut &bytes[..cut], version);
                assert_eq!(
                    result,
                    Err(DecodeError::Short),
                    "{version}: {:02x?} cut at {cut}",
                    bytes
                );
            }
        }
    }
    Some((value, used))
}

/// Run [`check`] for every version.
fn each_version<T>(data: &[u8])
where
    T: Encode + Decode + PartialEq + Debug,
{
    for version in Version::ALL {
        check::<T>(data, version, Framing::Prefixed);
    }
}

/// SETUP, SESSION_INFO and the compat CLIENT_SETUP / SERVER_SETUP.
pub fn setup(data: &[u8]) {
    each_version::<Setup>(data);
    each_version::<SessionInfo>(data);
    // The compat exchange happens before a version exists; the argument is ignored.
    check::<ClientSetupCompat>(data, Version::Lite02, Framing::ClientCompat);
    check::<ServerSetupCompat>(data, Version::Lite02, Framing::Prefixed);
}

/// ANNOUNCE_REQUEST, ANNOUNCE_OK, ANNOUNCE_INIT, ANNOUNCE and (lite-06) ANNOUNCE_START/END/UPDATE,
/// plus the lite-06 announce id table driven by whatever decodes.
pub fn announce(data: &[u8]) {
    each_version::<AnnounceRequest>(data);
    each_version::<AnnounceOk>(data);
    each_version::<AnnounceInit>(data);
    each_version::<Announce>(data);
    each_version::<AnnounceMessage>(data);
    let mut ids = AnnounceIds::default();
    let mut rest = data;
    while let Ok(msg) = AnnounceMessage::decode(&mut rest, Version::Lite06) {
        match msg {
            AnnounceMessage::Start { suffix, .. } => {
                let id = ids.start(suffix.clone());
                assert_eq!(ids.id_of(&suffix), Some(id));
            }
            AnnounceMessage::Update { id, .. } => {
                let _ = ids.get(id);
            }
            AnnounceMessage::End { id } => {
                if let Some(suffix) = ids.end(id) {
                    assert_eq!(ids.id_of(&suffix), None);
                }
            }
            AnnounceMessage::Unknown { .. } => {}
        }
    }
}

/// SUBSCRIBE, SUBSCRIBE_UPDATE and the subscribe responses.
pub fn subscribe(data: &[u8]) {
    each_version::<Subscribe>(data);
    each_version::<SubscribeUpdate>(data);
    each_version::<SubscribeResponse>(data);
}

/// TRACK, TRACK_INFO, FETCH, PROBE and GOAWAY.
pub fn track(data: &[u8]) {
    each_version::<TrackRequest>(data);
    each_version::<TrackInfo>(data);
    each_version::<Fetch>(data);
    each_version::<Probe>(data);
    each_version::<Goaway>(data);
}

/// The GROUP header and FRAME headers.
pub fn group(data: &[u8]) {
    each_version::<GroupHeader>(data);
    each_version::<FrameHeader>(data);
}

/// DATAGRAM.
pub fn datagram(data: &[u8]) {
    for version in Version::ALL {
        check::<Datagram>(data, version, Framing::ToEnd);
    }
}

/// One whole stream as a peer would send it. The first byte picks the version (low 3 bits, mod 6: lite-05, 04, 03, 02, 01, 06),
/// uni or bidi (bit 3) and, for bidi, the opener's or the responder's side (bit 4); the rest is
/// the stream: its type varint, then messages in the order the spec allows, until one fails.
pub fn stream(data: &[u8]) {
    walk(data);
}

/// The body of [`stream`]; returns the unread rest, or `None` if there was no stream type.
fn walk(data: &[u8]) -> Option<&[u8]> {
    let (&selector, rest) = data.split_first()?;
    // lite-06 last, so selectors 0…4 pick what they did before it existed (committed seeds).
    const WALK: [Version; 6] = [
        Version::Lite05,
        Version::Lite04,
        Version::Lite03,
        Version::Lite02,
        Version::Lite01,
        Version::Lite06,
    ];
    let version = WALK[usize::from(selector & 0x7) % WALK.len()];
    let uni = selector & 0x08 != 0;
    let responder = selector & 0x10 != 0;
    let mut stream = Stream { rest, version };
    let kind = get_varint(&mut stream.rest).ok()?;

    if uni {
        match UniStreamType::from_id(kind).filter(|t| t.allowed(version)) {
            Some(UniStreamType::Group) => {
                let header = stream.next::<GroupHeader>();
                if header.is_some() {
                    stream.frames();
                }
            }
            Some(UniStreamType::Setup) => {
                stream.next::<Setup>();
            }
            None => {}
        }
        return Some(stream.rest);
    }

    let Some(kind) = BiStreamType::from_id(kind).filter(|t| t.allowed(version)) else {
        return Some(stream.rest);
    };
    match (kind, responder) {
        (BiStreamType::Session, _) => {}
        (BiStreamType::Announce, false) => {
            stream.next::<AnnounceRequest>();
        }
        (BiStreamType::Announce, true) => {
            let first = match version {
                Version::Lite01 | Version::Lite02 => stream.next::<AnnounceInit>().map(drop),
                Version::Lite05 | Version::Lite06 => stream.next::<AnnounceOk>().map(drop),
                Version::Lite03 | Version::Lite04 => Some(()),
            };
            if first.is_some() && version.is_lite06() {
                while stream.next::<AnnounceMessage>().is_some() {}
            } else if first.is_some() {
                while stream.next::<Announce>().is_some() {}
            }
        }
        (BiStreamType::Subscribe, false) => {
            if stream.next::<Subscribe>().is_some() && version >= Version::Lite03 {
                while stream.next::<SubscribeUpdate>().is_some() {}
            }
        }
        (BiStreamType::Subscribe, true) => while stream.next::<SubscribeResponse>().is_some() {},
        (BiStreamType::Fetch, false) => {
            stream.next::<Fetch>();
        }
        (BiStreamType::Fetch, true) => stream.frames(),
        (BiStreamType::Probe, false) => {}
        (BiStreamType::Probe, true) => while stream.next::<Probe>().is_some() {},
        (BiStreamType::Goaway, _) => {
            stream.next::<Goaway>();
        }
        (BiStreamType::Track, false) => {
            stream.next::<TrackRequest>();
        }
        (BiStreamType::Track, true) => {
            stream.next::<TrackInfo>();
        }
        (BiStreamType::ClientCompat, false) => {
            if stream
                .checked::<ClientSetupCompat>(Framing::ClientCompat)
                .is_some()
            {
                while stream.next::<SessionInfo>().is_some() {}
            }
        }
        (BiStreamType::ClientCompat, true) => {
            if stream.next::<ServerSetupCompat>().is_some() {
                while stream.next::<SessionInfo>().is_some() {}
            }
        }
    }
    Some(stream.rest)
}

/// The unread rest of a stream.
struct Stream<'a> {
    rest: &'a [u8],
    version: Version,
}

impl Stream<'_> {
    /// Decode and check the next message, consuming it.
    fn next<T>(&mut self) -> Option<T>
    where
        T: Encode + Decode + PartialEq + Debug,
    {
        self.checked(Framing::Prefixed)
    }

    fn checked<T>(&mut self, framing: Framing) -> Option<T>
    where
        T: Encode + Decode + PartialEq + Debug,
    {
        let (value, used) = check::<T>(self.rest, self.version, framing)?;
        self.rest = self.rest.get(used..)?;
        Some(value)
    }

    /// FRAME headers, each followed by its payload, until the bytes run out.
    fn frames(&mut self) {
        while let Some(frame) = self.next::<FrameHeader>() {
            let Some(rest) = usize::try_from(frame.size)
                .ok()
                .and_then(|size| self.rest.get(size..))
            else {
                return;
            };
            self.rest = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn walks_whole_streams() {
        // Every message of these streams decodes, so nothing is left over.
        for stream in [
            "08 00 02 00 05 80 1e 84 80 0a 80 0f 42 40 00 00 00 01 65 88 01 00",
            "0b 00 02 05 07 03 61 62 63 00",
            "10 01 03 70 39 01 07 01 03 62 62 62 01 07 06 00 03 62 62 62 00",
            "13 01 04 02 01 61 00 05 01 03 62 62 62",
            "12 02 00 05 3c 00 00 00 00 01 03 06 07 00",
            "00 02 15 00 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f 3c 00 00 00 00 06 50 00 41 f4 0b 00",
            "11 04 05 80 26 25 a0 28",
            "03 20 00 1a 03 c0 00 00 00 ff 0d ad 02 c0 00 00 00 ff 0d ad 01 c0 00 00 00 ff 00 00 0e 00 01 00",
            "13 20 21 00 09 c0 00 00 00 ff 0d ad 02 00 01 00",
            // lite-06: ANNOUNCE_OK, START, END; SUBSCRIBE with frame bounds; GROUP with frame start.
            "15 01 03 70 39 01 00 08 03 62 62 62 01 07 01 01 01 01 00",
            "05 02 17 01 08 61 6e 6f 6e 2f 62 62 62 05 76 69 64 65 6f 3c 41 f4 05 0a 0f 04",
            "0d 00 07 41 2c 80 01 11 70 0f 00 01 61",
        ] {
            assert_eq!(walk(&hex(stream)), Some(&[][..]), "{stream}");
        }
        // A stream type the version lacks is skipped whole.
        assert_eq!(walk(&hex("01 06 00")), Some(&[0u8][..]));
    }

    #[test]
    #[should_panic(expected = "cut at")]
    fn prefix_check_catches_a_value_from_a_cut() {
        // A datagram-like decoder checked as if it were length-prefixed must fail the check.
        check::<Datagram>(
            &hex("00 07 80 00 bb 80 6f 70 75 73"),
            Version::Lite05,
            Framing::Prefixed,
        );
    }
}
