//! SETUP (lite-05, spec §4), the compat CLIENT/SERVER_SETUP (lite-01/02, spec §1.6) and SESSION_INFO.

use bytes::{Buf, BufMut, Bytes};

use super::{
    get_message, get_sized, get_u16, get_u8, get_varint, put_message, put_string, put_varint,
    require_version, short_is_truncated, varint_len, Decode, DecodeError, Encode, Version,
    MAX_MESSAGE_SIZE, MAX_PARAMETERS, MAX_STRING_LEN, MAX_VERSIONS,
};

/// SETUP parameter IDs (spec §4).
const PARAM_PROBE: u64 = 0x1;
const PARAM_PATH: u64 = 0x2;
const PARAM_ROLE: u64 = 0x3;
const PARAM_COST: u64 = 0x4;
const PARAM_ORIGIN: u64 = 0x5;

/// The compat CLIENT_SETUP type byte (also the ClientCompat bidi stream type).
pub const CLIENT_SETUP_COMPAT_TYPE: u8 = 0x20;
/// The compat SERVER_SETUP type byte.
pub const SERVER_SETUP_COMPAT_TYPE: u8 = 0x21;

/// SETUP parameter 0x1: the probe capability a publisher advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeLevel {
    /// 0: no probe stream.
    None,
    /// 1: reports bitrate/RTT.
    Report,
    /// 2 (and any unknown larger value): can also increase its send rate.
    Increase,
}

/// SETUP parameter 0x3: what the client intends to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// 0 (and any unknown value): publish and subscribe.
    Both,
    /// 1: only publishes.
    Publisher,
    /// 2: only subscribes.
    Subscriber,
}

/// The lite-05 SETUP message (after the Setup stream type). Parameters are encoded in ascending
/// ID order; unknown IDs are skipped on decode; a duplicate ID is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setup {
    /// 0x1 Probe; `None` = parameter absent.
    pub probe: Option<ProbeLevel>,
    /// 0x2 Path (path + optional `?query`), client only on URI-less transports. Empty ≡ absent.
    pub path: Option<String>,
    /// 0x3 Role; client only.
    pub role: Option<Role>,
    /// 0x4 Cost (absent = 1).
    pub cost: Option<u64>,
    /// 0x5 Origin hop ID (0 ≡ absent).
    pub origin: Option<u64>,
}

/// A compat SETUP parameter value (IETF style: even key → varint, odd key → bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompatParam {
    /// Even key.
    Varint(u64),
    /// Odd key.
    Bytes(Bytes),
}

/// The compat CLIENT_SETUP: `0x20`, u16 big-endian length, versions, IETF-style parameters.
/// Its type byte is written by `encode` (the 0x20 is part of this message), and `decode` starts
/// *after* the 0x20 tag (which the stream dispatcher has read as the bidi stream type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSetupCompat {
    /// Offered version codes, most preferred first.
    pub versions: Vec<u64>,
    /// Parameters `(key, value)` in wire order.
    pub params: Vec<(u64, CompatParam)>,
}

/// The compat SERVER_SETUP: `0x21`, u16 length, selected version, parameters.
/// When a lite version is selected the parameters use the lite style (`count, {id, len, bytes}`),
/// otherwise IETF style; we only ever send an empty set (`00`). `encode` writes the 0x21 tag and
/// `decode` expects it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSetupCompat {
    /// The selected version code.
    pub version: u64,
    /// Parameters as raw `(id, bytes)` (lite style) — kept only so they can be skipped.
    pub params: Vec<(u64, Bytes)>,
}

/// lite-01/02 SESSION_INFO on the compat stream: `Length, Bitrate (i)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// Estimated bitrate, 0 = unknown.
    pub bitrate: u64,
}

impl ProbeLevel {
    /// The wire value.
    pub const fn code(self) -> u64 {
        match self {
            ProbeLevel::None => 0,
            ProbeLevel::Report => 1,
            ProbeLevel::Increase => 2,
        }
    }

    /// The level for a wire value; unknown values ≥ 2 mean [`ProbeLevel::Increase`] (spec §4).
    pub const fn from_code(code: u64) -> Self {
        match code {
            0 => ProbeLevel::None,
            1 => ProbeLevel::Report,
            _ => ProbeLevel::Increase,
        }
    }
}

impl Role {
    /// The wire value.
    pub const fn code(self) -> u64 {
        match self {
            Role::Both => 0,
            Role::Publisher => 1,
            Role::Subscriber => 2,
        }
    }

    /// The role for a wire value; unknown values mean [`Role::Both`] (spec §4).
    pub const fn from_code(code: u64) -> Self {
        match code {
            1 => Role::Publisher,
            2 => Role::Subscriber,
            _ => Role::Both,
        }
    }
}

/// Write a parameter whose value is one varint: `id, len, varint`.
fn put_varint_param<B: BufMut>(buf: &mut B, id: u64, v: u64) {
    put_varint(buf, id);
    put_varint(buf, varint_len(v) as u64);
    put_varint(buf, v);
}

/// Read a parameter value that must be exactly one varint.
fn varint_param(mut value: Bytes) -> Result<u64, DecodeError> {
    let v = get_varint(&mut value).map_err(short_is_truncated)?;
    match value.remaining() {
        0 => Ok(v),
        n => Err(DecodeError::Long(n)),
    }
}

/// Read a parameter count, capped at [`MAX_PARAMETERS`].
fn get_param_count<B: Buf>(buf: &mut B) -> Result<u64, DecodeError> {
    let count = get_varint(buf)?;
    if count > MAX_PARAMETERS {
        return Err(DecodeError::TooLarge {
            what: "parameter count",
            len: count,
            max: MAX_PARAMETERS,
        });
    }
    Ok(count)
}

/// Remember a parameter ID, failing if it was already seen.
fn check_duplicate(seen: &mut Vec<u64>, id: u64) -> Result<(), DecodeError> {
    if seen.contains(&id) {
        return Err(DecodeError::DuplicateParameter(id));
    }
    seen.push(id);
    Ok(())
}

impl Encode for Setup {
    /// Writes the parameters in ascending ID order. `Some("")` paths and `Some(0)` origins mean
    /// "absent" on the wire and are not written.
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version >= Version::Lite05,
            "SETUP does not exist in {version}"
        );
        let path = self.path.as_deref().filter(|p| !p.is_empty());
        let origin = self.origin.filter(|o| *o != 0);
        let count = [
            self.probe.is_some(),
            path.is_some(),
            self.role.is_some(),
            self.cost.is_some(),
            origin.is_some(),
        ]
        .into_iter()
        .filter(|present| *present)
        .count();
        put_message(buf, |b| {
            put_varint(b, count as u64);
            if let Some(probe) = self.probe {
                put_varint_param(b, PARAM_PROBE, probe.code());
            }
            if let Some(path) = path {
                put_varint(b, PARAM_PATH);
                put_string(b, path);
            }
            if let Some(role) = self.role {
                put_varint_param(b, PARAM_ROLE, role.code());
            }
            if let Some(cost) = self.cost {
                put_varint_param(b, PARAM_COST, cost);
            }
            if let Some(origin) = origin {
                put_varint_param(b, PARAM_ORIGIN, origin);
            }
        });
    }
}

impl Decode for Setup {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version >= Version::Lite05, "SETUP", version)?;
        get_message(buf, |b| {
            let count = get_param_count(b)?;
            let mut seen = Vec::new();
            let mut setup = Setup::default();
            for _ in 0..count {
                let id = get_varint(b)?;
                let value = get_sized(b, MAX_MESSAGE_SIZE, "parameter")?;
                // spec: §4 duplicates are a protocol violation.
                check_duplicate(&mut seen, id)?;
                match id {
                    PARAM_PROBE => setup.probe = Some(ProbeLevel::from_code(varint_param(value)?)),
                    PARAM_PATH => {
                        if value.len() as u64 > MAX_STRING_LEN {
                            return Err(DecodeError::TooLarge {
                                what: "path parameter",
                                len: value.len() as u64,
                                max: MAX_STRING_LEN,
                            });
                        }
                        let path = String::from_utf8(value.into())
                            .map_err(|_| DecodeError::InvalidUtf8)?;
                        // spec: §4 an empty Path is the same as an absent one.
                        setup.path = Some(path).filter(|p| !p.is_empty());
                    }
                    PARAM_ROLE => setup.role = Some(Role::from_code(varint_param(value)?)),
                    PARAM_COST => setup.cost = Some(varint_param(value)?),
                    // spec: §4 Origin 0 is the same as an absent one.
                    PARAM_ORIGIN => setup.origin = Some(varint_param(value)?).filter(|o| *o != 0),
                    // spec: §4 unknown IDs are ignored.
                    _ => {}
                }
            }
            Ok(setup)
        })
    }
}

/// Write a compat message: type byte, u16 big-endian length, body.
fn put_compat<B: BufMut>(buf: &mut B, kind: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let mut scratch = Vec::new();
    body(&mut scratch);
    debug_assert!(
        scratch.len() <= usize::from(u16::MAX),
        "compat SETUP of {} bytes",
        scratch.len()
    );
    buf.put_u8(kind);
    buf.put_u16(scratch.len().min(usize::from(u16::MAX)) as u16);
    buf.put_slice(&scratch);
}

/// Read a u16-length compat body (after the type byte) and decode it exactly.
fn get_compat<B: Buf, T>(
    buf: &mut B,
    body: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let len = usize::from(get_u16(buf)?);
    if buf.remaining() < len {
        return Err(DecodeError::Short);
    }
    let mut bytes = buf.copy_to_bytes(len);
    let value = body(&mut bytes).map_err(short_is_truncated)?;
    match bytes.remaining() {
        0 => Ok(value),
        n => Err(DecodeError::Long(n)),
    }
}

/// Write an IETF-style parameter list: count, then `key` and a varint (even key) or bytes (odd key).
fn put_ietf_params<'a, B: BufMut>(
    buf: &mut B,
    params: impl ExactSizeIterator<Item = (u64, &'a CompatParam)>,
) {
    put_varint(buf, params.len() as u64);
    for (key, value) in params {
        put_varint(buf, key);
        match value {
            CompatParam::Varint(v) => {
                debug_assert!(key % 2 == 0, "varint compat parameter with odd key {key}");
                put_varint(buf, *v);
            }
            CompatParam::Bytes(bytes) => {
                debug_assert!(key % 2 == 1, "bytes compat parameter with even key {key}");
                put_varint(buf, bytes.len() as u64);
                buf.put_slice(bytes);
            }
        }
    }
}

/// Read an IETF-style parameter list.
fn get_ietf_params<B: Buf>(buf: &mut B) -> Result<Vec<(u64, CompatParam)>, DecodeError> {
    let count = get_param_count(buf)?;
    let mut params: Vec<(u64, CompatParam)> = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..count {
        let key = get_varint(buf)?;
        let value = match key % 2 {
            0 => CompatParam::Varint(get_varint(buf)?),
            _ => CompatParam::Bytes(get_sized(buf, MAX_MESSAGE_SIZE, "parameter")?),
        };
        check_duplicate(&mut seen, key)?;
        params.push((key, value));
    }
    Ok(params)
}

impl Encode for ClientSetupCompat {
    /// Writes the `0x20` type byte too (spec §1.6).
    fn encode<B: BufMut>(&self, buf: &mut B, _version: Version) {
        put_compat(buf, CLIENT_SETUP_COMPAT_TYPE, |b| {
            put_varint(b, self.versions.len() as u64);
            for version in &self.versions {
                put_varint(b, *version);
            }
            put_ietf_params(b, self.params.iter().map(|(k, v)| (*k, v)));
        });
    }
}

impl Decode for ClientSetupCompat {
    /// Starts after the `0x20` type byte, which the stream dispatcher has already read.
    fn decode<B: Buf>(buf: &mut B, _version: Version) -> Result<Self, DecodeError> {
        get_compat(buf, |b| {
            let count = get_varint(b)?;
            if count > MAX_VERSIONS {
                return Err(DecodeError::TooLarge {
                    what: "version count",
                    len: count,
                    max: MAX_VERSIONS,
                });
            }
            // Each version takes at least one byte: never reserve more than the body could hold.
            let mut versions = Vec::with_capacity((count as usize).min(b.remaining()));
            for _ in 0..count {
                versions.push(get_varint(b)?);
            }
            let params = get_ietf_params(b)?;
            Ok(Self { versions, params })
        })
    }
}

impl Encode for ServerSetupCompat {
    /// Writes the `0x21` type byte too. Parameters use the lite style when `self.version` is a
    /// lite code, IETF style otherwise (an even key's bytes must then hold one varint).
    fn encode<B: BufMut>(&self, buf: &mut B, _version: Version) {
        put_compat(buf, SERVER_SETUP_COMPAT_TYPE, |b| {
            put_varint(b, self.version);
            put_varint(b, self.params.len() as u64);
            let lite = Version::from_code(self.version).is_some();
            for (id, value) in &self.params {
                put_varint(b, *id);
                if lite || id % 2 == 1 {
                    put_varint(b, value.len() as u64);
                    b.put_slice(value);
                } else {
                    let v = varint_param(value.clone());
                    debug_assert!(v.is_ok(), "IETF compat parameter {id} is not one varint");
                    put_varint(b, v.unwrap_or(0));
                }
            }
        });
    }
}

impl Decode for ServerSetupCompat {
    /// Expects the `0x21` type byte first. For a non-lite selected version the IETF-style
    /// parameters are read, an even key's varint kept as its minimal encoding.
    fn decode<B: Buf>(buf: &mut B, _version: Version) -> Result<Self, DecodeError> {
        let kind = get_u8(buf)?;
        if kind != SERVER_SETUP_COMPAT_TYPE {
            return Err(DecodeError::InvalidValue {
                what: "SERVER_SETUP type",
                value: kind.into(),
            });
        }
        get_compat(buf, |b| {
            let version = get_varint(b)?;
            let lite = Version::from_code(version).is_some();
            let count = get_param_count(b)?;
            let mut params = Vec::new();
            let mut seen = Vec::new();
            for _ in 0..count {
                let id = get_varint(b)?;
                let value = if lite || id % 2 == 1 {
                    get_sized(b, MAX_MESSAGE_SIZE, "parameter")?
                } else {
                    let mut v = Vec::with_capacity(8);
                    put_varint(&mut v, get_varint(b)?);
                    Bytes::from(v)
                };
                check_duplicate(&mut seen, id)?;
                params.push((id, value));
            }
            Ok(Self { version, params })
        })
    }
}

impl Encode for SessionInfo {
    fn encode<B: BufMut>(&self, buf: &mut B, version: Version) {
        debug_assert!(
            version.is_compat(),
            "SESSION_INFO does not exist in {version}"
        );
        put_message(buf, |b| put_varint(b, self.bitrate));
    }
}

impl Decode for SessionInfo {
    fn decode<B: Buf>(buf: &mut B, version: Version) -> Result<Self, DecodeError> {
        require_version(version.is_compat(), "SESSION_INFO", version)?;
        get_message(buf, |b| {
            Ok(Self {
                bitrate: get_varint(b)?,
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
    fn setup_parameters_in_ascending_order() {
        let setup = Setup {
            probe: Some(ProbeLevel::Report),
            path: Some("/a".into()),
            role: Some(Role::Publisher),
            cost: Some(0),
            origin: Some(300),
        };
        let bytes = setup.encode_to_vec(Version::Lite05);
        assert_eq!(
            bytes,
            [
                0x12, 0x05, 0x01, 0x01, 0x01, 0x02, 0x02, b'/', b'a', 0x03, 0x01, 0x01, 0x04, 0x01,
                0x00, 0x05, 0x02, 0x41, 0x2c
            ]
        );
        assert_eq!(decode::<Setup>(&bytes, Version::Lite05), Ok(setup));
    }

    #[test]
    fn setup_absent_forms() {
        let setup = Setup {
            path: Some(String::new()),
            origin: Some(0),
            ..Default::default()
        };
        assert_eq!(setup.encode_to_vec(Version::Lite05), [0x01, 0x00]);
        // Explicit empty Path and Origin 0 decode as absent; unknown IDs are skipped.
        let bytes = [0x08, 0x03, 0x02, 0x00, 0x05, 0x01, 0x00, 0x3f, 0x00];
        assert_eq!(
            decode::<Setup>(&bytes, Version::Lite05),
            Ok(Setup::default())
        );
        // Unknown Probe/Role values.
        let bytes = [0x07, 0x02, 0x01, 0x01, 0x09, 0x03, 0x01, 0x07];
        let setup = decode::<Setup>(&bytes, Version::Lite05).unwrap();
        assert_eq!(setup.probe, Some(ProbeLevel::Increase));
        assert_eq!(setup.role, Some(Role::Both));
    }

    #[test]
    fn setup_rejects() {
        let dup = [0x06, 0x02, 0x3f, 0x00, 0x3f, 0x01, 0x00];
        assert_eq!(
            decode::<Setup>(&dup, Version::Lite05),
            Err(DecodeError::DuplicateParameter(0x3f))
        );
        let many = [0x02, 0x40, 0x41];
        assert!(matches!(
            decode::<Setup>(&many, Version::Lite05),
            Err(DecodeError::TooLarge { len: 65, .. })
        ));
        // A varint parameter with a byte left over.
        let long = [0x05, 0x01, 0x04, 0x02, 0x00, 0x00];
        assert_eq!(
            decode::<Setup>(&long, Version::Lite05),
            Err(DecodeError::Long(1))
        );
        let empty_cost = [0x03, 0x01, 0x04, 0x00];
        assert_eq!(
            decode::<Setup>(&empty_cost, Version::Lite05),
            Err(DecodeError::Truncated)
        );
        let bad_utf8 = [0x04, 0x01, 0x02, 0x01, 0xff];
        assert_eq!(
            decode::<Setup>(&bad_utf8, Version::Lite05),
            Err(DecodeError::InvalidUtf8)
        );
        assert!(matches!(
            decode::<Setup>(&[0x01, 0x00], Version::Lite04),
            Err(DecodeError::Unsupported { .. })
        ));
    }

    #[test]
    fn compat_server_ietf_params_roundtrip() {
        let bytes = [
            0x21, 0x00, 0x0d, 0xc0, 0, 0, 0, 0xff, 0, 0, 0x0e, 0x02, 0x02, 0x05, 0x01, 0x00,
        ];
        let server = decode::<ServerSetupCompat>(&bytes, Version::Lite02).unwrap();
        assert_eq!(
            server.params,
            vec![(2, Bytes::from_static(&[5])), (1, Bytes::new())]
        );
        assert_eq!(server.encode_to_vec(Version::Lite02), bytes);
        assert_eq!(
            decode::<ServerSetupCompat>(&[0x20, 0x00, 0x00], Version::Lite02),
            Err(DecodeError::InvalidValue {
                what: "SERVER_SETUP type",
                value: 0x20
            })
        );
    }

    #[test]
    fn compat_client_limits() {
        // 65 versions claimed.
        assert!(matches!(
            decode::<ClientSetupCompat>(&[0x00, 0x02, 0x40, 0x41], Version::Lite02),
            Err(DecodeError::TooLarge {
                what: "version count",
                ..
            })
        ));
        // 63 versions claimed in a 1-byte body: truncated, without reserving 63 slots first.
        assert_eq!(
            decode::<ClientSetupCompat>(&[0x00, 0x01, 0x3f], Version::Lite02),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode::<ClientSetupCompat>(&[0x00, 0x03, 0x00, 0x00, 0x00], Version::Lite02),
            Err(DecodeError::Long(1))
        );
        assert_eq!(
            decode::<ClientSetupCompat>(
                &[0x00, 0x07, 0x00, 0x02, 0x02, 0x01, 0x02, 0x02],
                Version::Lite02
            ),
            Err(DecodeError::Short)
        );
        assert_eq!(
            decode::<ClientSetupCompat>(
                &[0x00, 0x06, 0x00, 0x02, 0x02, 0x01, 0x02, 0x02],
                Version::Lite02
            ),
            Err(DecodeError::DuplicateParameter(2))
        );
    }

    #[test]
    fn session_info() {
        let info = SessionInfo { bitrate: 1_000_000 };
        let bytes = info.encode_to_vec(Version::Lite02);
        assert_eq!(bytes, [0x04, 0x80, 0x0f, 0x42, 0x40]);
        assert_eq!(decode::<SessionInfo>(&bytes, Version::Lite01), Ok(info));
        assert!(matches!(
            decode::<SessionInfo>(&bytes, Version::Lite03),
            Err(DecodeError::Unsupported { .. })
        ));
    }
}
