//! Varints (RFC 9000 §16), strings, zigzag and length-prefixed message framing.
//!
//! CONTRACT (implemented by the coding helper):
//! - `pub const MAX_VARINT: u64 = (1 << 62) - 1;`
//! - `pub fn put_varint<B: BufMut>(buf: &mut B, v: u64)` minimal form; values above MAX_VARINT are a
//!   local bug: debug_assert and clamp.
//! - `pub fn get_varint<B: Buf>(buf: &mut B) -> Result<u64, DecodeError>` (Short if incomplete;
//!   accepts non-minimal forms).
//! - `pub fn varint_len(v: u64) -> usize`
//! - `pub fn put_string<B: BufMut>(buf: &mut B, s: &str)`, `pub fn get_string<B: Buf>(buf) -> Result<String, DecodeError>`
//!   (length checked against MAX_STRING_LEN before allocating).
//! - `pub fn zigzag_encode(i64) -> u64`, `pub fn zigzag_decode(u64) -> i64`.
//! - `pub fn put_message<B: BufMut>(buf: &mut B, body: impl FnOnce(&mut Vec<u8>))` writes Length + body.
//! - `pub fn get_message<B: Buf, T>(buf: &mut B, body: impl FnOnce(&mut bytes::Bytes) -> Result<T, DecodeError>) -> Result<T, DecodeError>`
//!   reads Length (checked against MAX_MESSAGE_SIZE), Short if the body is not all there yet,
//!   maps Short inside the body to Truncated and leftovers to Long.

use bytes::{Buf, BufMut, Bytes};

use super::{DecodeError, Version, MAX_MESSAGE_SIZE, MAX_STRING_LEN};
use crate::Path;

/// Largest value a QUIC varint can hold (spec §2).
pub const MAX_VARINT: u64 = (1 << 62) - 1;

/// Write `v` as a varint in its minimal form.
///
/// Values above [`MAX_VARINT`] cannot be encoded; passing one is a local bug (debug builds panic,
/// release builds clamp).
pub fn put_varint<B: BufMut>(buf: &mut B, v: u64) {
    debug_assert!(v <= MAX_VARINT, "varint {v} exceeds 2^62-1");
    let v = v.min(MAX_VARINT);
    match varint_len(v) {
        1 => buf.put_u8(v as u8),
        2 => buf.put_u16(0x4000 | v as u16),
        4 => buf.put_u32(0x8000_0000 | v as u32),
        _ => buf.put_u64(0xc000_0000_0000_0000 | v),
    }
}

/// Read a varint, accepting non-minimal forms.
///
/// Returns [`DecodeError::Short`] without consuming anything when the varint is incomplete.
pub fn get_varint<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
    let first = *buf.chunk().first().ok_or(DecodeError::Short)?;
    let len = 1usize << (first >> 6);
    if buf.remaining() < len {
        return Err(DecodeError::Short);
    }
    let v = match len {
        1 => u64::from(buf.get_u8()),
        2 => u64::from(buf.get_u16() & 0x3fff),
        4 => u64::from(buf.get_u32() & 0x3fff_ffff),
        _ => buf.get_u64() & MAX_VARINT,
    };
    Ok(v)
}

/// Bytes taken by the minimal varint encoding of `v` (values above [`MAX_VARINT`] count as 8).
pub fn varint_len(v: u64) -> usize {
    match v {
        0..=0x3f => 1,
        0x40..=0x3fff => 2,
        0x4000..=0x3fff_ffff => 4,
        _ => 8,
    }
}

/// Write a string: varint length, then the UTF-8 bytes.
pub fn put_string<B: BufMut>(buf: &mut B, s: &str) {
    debug_assert!(
        s.len() as u64 <= MAX_STRING_LEN,
        "string of {} bytes exceeds MAX_STRING_LEN",
        s.len()
    );
    put_varint(buf, s.len() as u64);
    buf.put_slice(s.as_bytes());
}

/// Read a string, checking its length against [`MAX_STRING_LEN`] before allocating.
pub fn get_string<B: Buf>(buf: &mut B) -> Result<String, DecodeError> {
    let bytes = get_sized(buf, MAX_STRING_LEN, "string")?;
    String::from_utf8(bytes.into()).map_err(|_| DecodeError::InvalidUtf8)
}

/// Map a signed integer onto an unsigned one so small magnitudes stay small (spec §2).
///
/// Only values with `|v| <` 2^61 (see [`super::MAX_ZIGZAG`]) fit in a varint afterwards.
pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag_encode`].
pub fn zigzag_decode(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Write a length-prefixed message: the varint byte length of what `body` writes, then those bytes.
pub fn put_message<B: BufMut>(buf: &mut B, body: impl FnOnce(&mut Vec<u8>)) {
    let mut scratch = Vec::new();
    body(&mut scratch);
    debug_assert!(
        scratch.len() as u64 <= MAX_MESSAGE_SIZE,
        "message of {} bytes exceeds MAX_MESSAGE_SIZE",
        scratch.len()
    );
    put_varint(buf, scratch.len() as u64);
    buf.put_slice(&scratch);
}

/// Read a length-prefixed message and decode its body with `body`.
///
/// The length is checked against [`MAX_MESSAGE_SIZE`] as soon as it is read; the result is
/// [`DecodeError::Short`] until the whole body is buffered. Inside the body, running out of bytes
/// is [`DecodeError::Truncated`] and bytes left over are [`DecodeError::Long`].
pub fn get_message<B: Buf, T>(
    buf: &mut B,
    body: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut bytes = get_sized(buf, MAX_MESSAGE_SIZE, "message")?;
    let value = body(&mut bytes).map_err(short_is_truncated)?;
    match bytes.remaining() {
        0 => Ok(value),
        n => Err(DecodeError::Long(n)),
    }
}

/// Inside a body whose extent is already known, running out of bytes means the sender lied.
pub(crate) fn short_is_truncated(err: DecodeError) -> DecodeError {
    match err {
        DecodeError::Short => DecodeError::Truncated,
        other => other,
    }
}

/// Read a varint length (checked against `max` before anything is buffered), then that many bytes.
pub(crate) fn get_sized<B: Buf>(
    buf: &mut B,
    max: u64,
    what: &'static str,
) -> Result<Bytes, DecodeError> {
    let len = get_varint(buf)?;
    if len > max {
        return Err(DecodeError::TooLarge { what, len, max });
    }
    // `len <= max`, and every `max` used here fits comfortably in usize.
    let len = len as usize;
    if buf.remaining() < len {
        return Err(DecodeError::Short);
    }
    Ok(buf.copy_to_bytes(len))
}

/// Read one raw byte.
pub(crate) fn get_u8<B: Buf>(buf: &mut B) -> Result<u8, DecodeError> {
    if !buf.has_remaining() {
        return Err(DecodeError::Short);
    }
    Ok(buf.get_u8())
}

/// Read a big-endian u16 (compat SETUP framing).
pub(crate) fn get_u16<B: Buf>(buf: &mut B) -> Result<u16, DecodeError> {
    if buf.remaining() < 2 {
        return Err(DecodeError::Short);
    }
    Ok(buf.get_u16())
}

/// Write a bool as one byte, 0 or 1.
pub(crate) fn put_bool<B: BufMut>(buf: &mut B, v: bool) {
    buf.put_u8(u8::from(v));
}

/// Read a bool byte; anything but 0 or 1 is invalid.
pub(crate) fn get_bool<B: Buf>(buf: &mut B, what: &'static str) -> Result<bool, DecodeError> {
    match get_u8(buf)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(DecodeError::InvalidValue {
            what,
            value: v.into(),
        }),
    }
}

/// Write a broadcast path as a string.
pub(crate) fn put_path<B: BufMut>(buf: &mut B, path: &Path) {
    put_string(buf, path.as_str());
}

/// Read a string and normalise it into a [`Path`].
pub(crate) fn get_path<B: Buf>(buf: &mut B) -> Result<Path, DecodeError> {
    Ok(Path::new(&get_string(buf)?)?)
}

/// Write an optional group sequence in the "+1" form (spec §2): `None` → 0, `Some(n)` → n+1.
pub(crate) fn put_plus_one<B: BufMut>(buf: &mut B, v: Option<u64>) {
    let raw = match v {
        None => 0,
        Some(n) => {
            debug_assert!(n < MAX_VARINT, "group {n} cannot be +1 encoded");
            n.saturating_add(1)
        }
    };
    put_varint(buf, raw);
}

/// Read an optional group sequence in the "+1" form.
pub(crate) fn get_plus_one<B: Buf>(buf: &mut B) -> Result<Option<u64>, DecodeError> {
    Ok(get_varint(buf)?.checked_sub(1))
}

/// Fail with [`DecodeError::Unsupported`] unless `supported` (the message exists in `version`).
pub(crate) fn require_version(
    supported: bool,
    what: &'static str,
    version: Version,
) -> Result<(), DecodeError> {
    match supported {
        true => Ok(()),
        false => Err(DecodeError::Unsupported { what, version }),
    }
}

/// Write a typed message: `Type (i)` outside the length, then `Length (i)` + body.
pub(crate) fn put_typed<B: BufMut>(buf: &mut B, kind: u64, body: impl FnOnce(&mut Vec<u8>)) {
    put_varint(buf, kind);
    put_message(buf, body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::MAX_ZIGZAG;

    fn varint_bytes(v: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        buf
    }

    fn decode_varint(mut bytes: &[u8]) -> Result<u64, DecodeError> {
        let v = get_varint(&mut bytes)?;
        assert!(bytes.is_empty(), "varint left {} bytes", bytes.len());
        Ok(v)
    }

    #[test]
    fn varint_spec_examples() {
        // spec: §2 examples.
        assert_eq!(varint_bytes(37), [0x25]);
        assert_eq!(varint_bytes(15293), [0x7b, 0xbd]);
        assert_eq!(varint_bytes(494_878_333), [0x9d, 0x7f, 0x3e, 0x7d]);
        assert_eq!(decode_varint(&[0x25]), Ok(37));
        assert_eq!(decode_varint(&[0x7b, 0xbd]), Ok(15293));
        assert_eq!(decode_varint(&[0x9d, 0x7f, 0x3e, 0x7d]), Ok(494_878_333));
    }

    #[test]
    fn varint_boundaries_use_minimal_form() {
        for (v, len) in [
            (0, 1),
            (63, 1),
            (64, 2),
            (16383, 2),
            (16384, 4),
            ((1 << 30) - 1, 4),
            (1 << 30, 8),
            (MAX_VARINT, 8),
        ] {
            let bytes = varint_bytes(v);
            assert_eq!(bytes.len(), len, "{v}");
            assert_eq!(varint_len(v), len, "{v}");
            assert_eq!(decode_varint(&bytes), Ok(v));
        }
        assert_eq!(varint_bytes(MAX_VARINT), [0xff; 8]);
    }

    #[test]
    fn varint_accepts_non_minimal_forms() {
        // spec: §2 decoders must accept non-minimal forms.
        assert_eq!(decode_varint(&[0x40, 0x25]), Ok(37));
        assert_eq!(decode_varint(&[0x80, 0, 0, 0x25]), Ok(37));
        assert_eq!(decode_varint(&[0xc0, 0, 0, 0, 0, 0, 0, 0x25]), Ok(37));
        assert_eq!(
            decode_varint(&[0xc0, 0, 0, 0, 0xff, 0x0d, 0xad, 0x05]),
            Ok(0xff0d_ad05)
        );
    }

    #[test]
    fn varint_short_consumes_nothing() {
        for bytes in [&[][..], &[0x40], &[0x9d, 0x7f, 0x3e], &[0xff; 7]] {
            let mut buf = bytes;
            assert_eq!(get_varint(&mut buf), Err(DecodeError::Short));
            assert_eq!(buf.len(), bytes.len());
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "exceeds 2^62-1")]
    fn varint_too_large_is_a_local_bug() {
        varint_bytes(MAX_VARINT + 1);
    }

    #[test]
    fn zigzag_examples() {
        // spec: §2 (−1→1, 1→2, −2→3).
        for (s, u) in [
            (0i64, 0u64),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (1_000_000, 2_000_000),
            (33_333, 66_666),
        ] {
            assert_eq!(zigzag_encode(s), u, "{s}");
            assert_eq!(zigzag_decode(u), s, "{u}");
        }
        assert_eq!(zigzag_encode(MAX_ZIGZAG), MAX_VARINT - 1);
        assert_eq!(zigzag_encode(-MAX_ZIGZAG), MAX_VARINT - 2);
        assert_eq!(zigzag_decode(MAX_VARINT), -(1 << 61));
        assert_eq!(zigzag_decode(u64::MAX), i64::MIN);
        assert_eq!(zigzag_encode(i64::MIN), u64::MAX);
    }

    #[test]
    fn string_roundtrip_and_limits() {
        let mut buf = Vec::new();
        put_string(&mut buf, "héllo");
        assert_eq!(buf[0], 6);
        assert_eq!(get_string(&mut &buf[..]), Ok("héllo".to_string()));
        assert_eq!(get_string(&mut &buf[..3]), Err(DecodeError::Short));
        assert_eq!(
            get_string(&mut &[0x02, 0xff, 0xfe][..]),
            Err(DecodeError::InvalidUtf8)
        );
        // A huge length is rejected before waiting for (or allocating) the bytes.
        assert_eq!(
            get_string(&mut &[0xbf, 0xff, 0xff, 0xff][..]),
            Err(DecodeError::TooLarge {
                what: "string",
                len: (1 << 30) - 1,
                max: MAX_STRING_LEN
            })
        );
    }

    #[test]
    fn message_framing() {
        let mut buf = Vec::new();
        put_message(&mut buf, |b| put_varint(b, 300));
        assert_eq!(buf, [0x02, 0x41, 0x2c]);

        let read = |bytes: &[u8]| get_message(&mut &bytes[..], get_varint);
        assert_eq!(read(&[0x02, 0x41, 0x2c]), Ok(300));
        assert_eq!(read(&[0x02, 0x41]), Err(DecodeError::Short));
        assert_eq!(read(&[0x01, 0x41]), Err(DecodeError::Truncated));
        assert_eq!(read(&[0x03, 0x41, 0x2c, 0x00]), Err(DecodeError::Long(1)));
        assert_eq!(
            read(&[0x80, 0x04, 0x00, 0x01]),
            Err(DecodeError::TooLarge {
                what: "message",
                len: MAX_MESSAGE_SIZE + 1,
                max: MAX_MESSAGE_SIZE
            })
        );
    }

    #[test]
    fn plus_one_and_bool() {
        let mut buf = Vec::new();
        put_plus_one(&mut buf, None);
        put_plus_one(&mut buf, Some(0));
        put_plus_one(&mut buf, Some(MAX_VARINT - 1));
        let mut b = &buf[..];
        assert_eq!(get_plus_one(&mut b), Ok(None));
        assert_eq!(get_plus_one(&mut b), Ok(Some(0)));
        assert_eq!(get_plus_one(&mut b), Ok(Some(MAX_VARINT - 1)));
        assert_eq!(
            get_bool(&mut &[2u8][..], "flag"),
            Err(DecodeError::InvalidValue {
                what: "flag",
                value: 2
            })
        );
        assert_eq!(get_bool(&mut &[1u8][..], "flag"), Ok(true));
    }
}
