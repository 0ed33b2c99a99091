//! The JWK (RFC 7517/7518/8037) form of a key, as the reference writes it, and its validation.
//!
//! Parsing checks everything up front (algorithm against key type and curve, lengths, points on
//! the curve, private half matching public half), so a [`Key`] that exists can be used.

use base64::{
    alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    Engine,
};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde::{Deserialize, Serialize};

use crate::{Algorithm, Error, Key, KeyOperation};

/// base64url as JWK and JWT use it: written without padding, read with or without.
pub(crate) const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The shortest HMAC secret accepted, as the reference and its JS twin require.
pub const MIN_HMAC_SECRET_BYTES: usize = 32;
/// The smallest RSA modulus accepted; the crypto backend caps the largest at 4096 bits.
pub const MIN_RSA_BITS: usize = 2048;
/// The longest key ID, as the reference's `KeyId` allows.
pub const MAX_KID_LENGTH: usize = 128;

/// The key material, already checked to be consistent.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Material {
    /// `kty: oct`, an HMAC secret.
    Oct { secret: Vec<u8> },
    /// `kty: EC` on P-256 or P-384, big-endian coordinates and scalar.
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
        d: Option<Vec<u8>>,
    },
    /// `kty: RSA`, big-endian integers.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        private: Option<RsaPrivate>,
    },
    /// `kty: OKP` with `crv: Ed25519`: public key `x` and seed `d`, 32 bytes each.
    Ed25519 { x: Vec<u8>, d: Option<Vec<u8>> },
}

/// The NIST curves the EC algorithms use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    /// Bytes in a coordinate or private scalar.
    fn size(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

/// The private RSA parameters; always complete (the CRT values are recomputed on load).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaPrivate {
    pub d: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
    pub dp: Vec<u8>,
    pub dq: Vec<u8>,
    pub qi: Vec<u8>,
}

impl RsaPrivate {
    pub fn from_key(key: &rsa::RsaPrivateKey) -> Result<Self, Error> {
        let missing = || Error::InvalidKey("RSA key lacks CRT parameters".into());
        let [p, q] = key.primes() else {
            return Err(Error::UnsupportedKey("multi-prime RSA keys"));
        };
        Ok(Self {
            d: key.d().to_bytes_be(),
            p: p.to_bytes_be(),
            q: q.to_bytes_be(),
            dp: key.dp().ok_or_else(missing)?.to_bytes_be(),
            dq: key.dq().ok_or_else(missing)?.to_bytes_be(),
            qi: key.qinv().ok_or_else(missing)?.to_bytes_be().1,
        })
    }
}

/// The JSON document, field by field. Field order gives the reference's output order for every
/// key type (`crv x y d`, `n e d p q dp dq qi`, `crv x d`, `k`).
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct Jwk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_ops: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dq: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    qi: Option<String>,
    /// Multi-prime RSA; read only to refuse it.
    #[serde(default, skip_serializing)]
    oth: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    /// The reference's newer signing ceiling; read only to refuse it (see [`Jwk::into_key`]).
    #[serde(default, skip_serializing)]
    scope: Option<serde_json::Value>,
}

impl Jwk {
    /// The JWK for a key, private parts included when it has them.
    pub fn from_key(key: &Key) -> Self {
        let b64 = |bytes: &[u8]| Some(BASE64URL.encode(bytes));
        let mut jwk = Jwk {
            alg: Some(key.algorithm.to_string()),
            key_ops: Some(key.operations.iter().map(|op| op.to_string()).collect()),
            kid: key.kid.clone(),
            ..Default::default()
        };
        match &key.material {
            Material::Oct { secret } => {
                jwk.kty = Some("oct".into());
                jwk.k = b64(secret);
            }
            Material::Ec { curve, x, y, d } => {
                jwk.kty = Some("EC".into());
                jwk.crv = Some(curve.name().into());
                jwk.x = b64(x);
                jwk.y = b64(y);
                jwk.d = d.as_deref().and_then(b64);
            }
            Material::Rsa { n, e, private } => {
                jwk.kty = Some("RSA".into());
                jwk.n = b64(n);
                jwk.e = b64(e);
                if let Some(private) = private {
                    jwk.d = b64(&private.d);
                    jwk.p = b64(&private.p);
                    jwk.q = b64(&private.q);
                    jwk.dp = b64(&private.dp);
                    jwk.dq = b64(&private.dq);
                    jwk.qi = b64(&private.qi);
                }
            }
            Material::Ed25519 { x, d } => {
                jwk.kty = Some("OKP".into());
                jwk.crv = Some("Ed25519".into());
                jwk.x = b64(x);
                jwk.d = d.as_deref().and_then(b64);
            }
        }
        jwk
    }

    /// Validate and build the key.
    ///
    /// Follows the reference where it is lenient for old files: `kty` defaults to `oct`, and
    /// `key_ops` to `["sign", "verify"]`. Refuses a key carrying the reference's `scope` (a
    /// ceiling on what its tokens may grant), because silently ignoring it would let this
    /// crate sign tokens the key's owner meant to forbid.
    pub fn into_key(self) -> Result<Key, Error> {
        let alg: Algorithm = self
            .alg
            .as_deref()
            .ok_or_else(|| Error::InvalidKey("missing alg".into()))?
            .parse()?;

        let operations = match &self.key_ops {
            None => vec![KeyOperation::Sign, KeyOperation::Verify],
            Some(ops) => {
                let mut ops = ops
                    .iter()
                    .map(|op| op.parse())
                    .collect::<Result<Vec<KeyOperation>, _>>()?;
                ops.sort();
                ops.dedup();
                ops
            }
        };

        if let Some(kid) = &self.kid {
            check_kid(kid)?;
        }
        if self.scope.is_some() {
            return Err(Error::UnsupportedKey(
                "the key has a `scope` (a limit on what its tokens may grant), which this version does not enforce",
            ));
        }

        let kty = self.kty.as_deref().unwrap_or("oct");
        let material = match kty {
            "oct" => self.oct(alg)?,
            "EC" => self.ec(alg)?,
            "RSA" => self.rsa(alg)?,
            "OKP" => self.okp(alg)?,
            other => return Err(Error::InvalidKey(format!("unknown kty {other:?}"))),
        };

        Ok(Key {
            algorithm: alg,
            operations,
            material,
            kid: self.kid,
        })
    }

    fn oct(&self, alg: Algorithm) -> Result<Material, Error> {
        expect_alg(alg, "oct", alg.is_hmac())?;
        let secret = required("k", &self.k)?;
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(Error::InvalidKey(format!(
                "the HMAC secret k is {} bytes; at least {MIN_HMAC_SECRET_BYTES} are required",
                secret.len()
            )));
        }
        Ok(Material::Oct { secret })
    }

    fn ec(&self, alg: Algorithm) -> Result<Material, Error> {
        let curve = match self.crv.as_deref() {
            Some("P-256") => Curve::P256,
            Some("P-384") => Curve::P384,
            other => {
                return Err(Error::InvalidKey(format!(
                    "EC curve {other:?} is not P-256 or P-384"
                )))
            }
        };
        let fits = matches!(
            (curve, alg),
            (Curve::P256, Algorithm::ES256) | (Curve::P384, Algorithm::ES384)
        );
        expect_alg(alg, curve.name(), fits)?;

        let x = sized("x", required("x", &self.x)?, curve.size())?;
        let y = sized("y", required("y", &self.y)?, curve.size())?;
        let d = optional("d", &self.d)?
            .map(|d| sized("d", d, curve.size()))
            .transpose()?;

        let mut point = Vec::with_capacity(1 + 2 * curve.size());
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let not_on_curve = || Error::InvalidKey(format!("x/y is not a point on {}", curve.name()));
        let mismatch = || Error::InvalidKey("the private key d does not match x/y".into());
        let bad_d = || Error::InvalidKey(format!("d is not a valid {} private key", curve.name()));

        // The coordinates must name a valid point, and d (when present) must be its private key.
        match curve {
            Curve::P256 => {
                let public =
                    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| not_on_curve())?;
                if let Some(d) = &d {
                    let secret = p256::SecretKey::from_slice(d).map_err(|_| bad_d())?;
                    if secret.public_key() != public {
                        return Err(mismatch());
                    }
                }
            }
            Curve::P384 => {
                let public =
                    p384::PublicKey::from_sec1_bytes(&point).map_err(|_| not_on_curve())?;
                if let Some(d) = &d {
                    let secret = p384::SecretKey::from_slice(d).map_err(|_| bad_d())?;
                    if secret.public_key() != public {
                        return Err(mismatch());
                    }
                }
            }
        }
        Ok(Material::Ec { curve, x, y, d })
    }

    fn rsa(&self, alg: Algorithm) -> Result<Material, Error> {
        use Algorithm::*;
        expect_alg(
            alg,
            "RSA",
            matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
        )?;
        if self.oth.is_some() {
            return Err(Error::UnsupportedKey("multi-prime RSA keys (oth)"));
        }

        let n = rsa::BigUint::from_bytes_be(&required("n", &self.n)?);
        let e = rsa::BigUint::from_bytes_be(&required("e", &self.e)?);
        // Checks the exponent and the 4096-bit ceiling the backend verifies with.
        let public = rsa::RsaPublicKey::new(n.clone(), e.clone())
            .map_err(|err| Error::InvalidKey(format!("RSA public key: {err}")))?;
        if public.n().bits() < MIN_RSA_BITS {
            return Err(Error::InvalidKey(format!(
                "the RSA modulus is {} bits; at least {MIN_RSA_BITS} are required",
                public.n().bits()
            )));
        }

        let private = match optional("d", &self.d)? {
            None => None,
            Some(d) => {
                // p and q are optional: without them the primes are recovered from n, e, d.
                let primes = match (optional("p", &self.p)?, optional("q", &self.q)?) {
                    (Some(p), Some(q)) => vec![
                        rsa::BigUint::from_bytes_be(&p),
                        rsa::BigUint::from_bytes_be(&q),
                    ],
                    (None, None) => Vec::new(),
                    _ => return Err(Error::InvalidKey("RSA key has only one of p and q".into())),
                };
                let key = rsa::RsaPrivateKey::from_components(
                    n,
                    e,
                    rsa::BigUint::from_bytes_be(&d),
                    primes,
                )
                .map_err(|err| Error::InvalidKey(format!("RSA private key: {err}")))?;
                Some(RsaPrivate::from_key(&key)?)
            }
        };

        Ok(Material::Rsa {
            n: public.n().to_bytes_be(),
            e: public.e().to_bytes_be(),
            private,
        })
    }

    fn okp(&self, alg: Algorithm) -> Result<Material, Error> {
        if self.crv.as_deref() != Some("Ed25519") {
            return Err(Error::InvalidKey(format!(
                "OKP curve {:?} is not Ed25519",
                self.crv
            )));
        }
        expect_alg(alg, "Ed25519", alg == Algorithm::EdDSA)?;

        let x = sized("x", required("x", &self.x)?, 32)?;
        let public = ed25519_dalek::VerifyingKey::from_bytes(&to_array(&x))
            .map_err(|_| Error::InvalidKey("x is not an Ed25519 public key".into()))?;
        let d = optional("d", &self.d)?
            .map(|d| sized("d", d, 32))
            .transpose()?;
        if let Some(d) = &d {
            let derived = ed25519_dalek::SigningKey::from_bytes(&to_array(d)).verifying_key();
            if derived != public {
                return Err(Error::InvalidKey(
                    "the private key d does not match x".into(),
                ));
            }
        }
        Ok(Material::Ed25519 { x, d })
    }
}

/// Key IDs follow the reference's `KeyId` rules, so either side loads the other's files (a kid
/// also ends up in file names and URLs there).
pub(crate) fn check_kid(kid: &str) -> Result<(), Error> {
    let valid = !kid.is_empty()
        && kid.len() <= MAX_KID_LENGTH
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidKeyId(kid.to_string()))
    }
}

fn expect_alg(alg: Algorithm, kind: &str, fits: bool) -> Result<(), Error> {
    if fits {
        Ok(())
    } else {
        Err(Error::InvalidKey(format!(
            "alg {alg} cannot be used with a {kind} key"
        )))
    }
}

fn optional(name: &str, value: &Option<String>) -> Result<Option<Vec<u8>>, Error> {
    value
        .as_deref()
        .map(|value| {
            BASE64URL
                .decode(value)
                .map_err(|err| Error::InvalidKey(format!("{name} is not base64url: {err}")))
        })
        .transpose()
}

fn required(name: &str, value: &Option<String>) -> Result<Vec<u8>, Error> {
    optional(name, value)?.ok_or_else(|| Error::InvalidKey(format!("missing {name}")))
}

fn sized(name: &str, bytes: Vec<u8>, len: usize) -> Result<Vec<u8>, Error> {
    if bytes.len() == len {
        Ok(bytes)
    } else {
        Err(Error::InvalidKey(format!(
            "{name} is {} bytes, expected {len}",
            bytes.len()
        )))
    }
}

/// Only called on slices [`sized`] checked to be 32 bytes.
fn to_array(bytes: &[u8]) -> [u8; 32] {
    let mut array = [0; 32];
    array.copy_from_slice(bytes);
    array
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Key, Error> {
        serde_json::from_str::<Jwk>(json).unwrap().into_key()
    }

    const SECRET: &str = "Fp8kipWUJeUFqeSqWym_tRC_tyI8z-QpqopIGrbrD68"; // 32 bytes

    #[test]
    fn kty_defaults_to_oct_and_key_ops_to_sign_verify() {
        let key = parse(&format!(r#"{{"alg":"HS256","k":"{SECRET}"}}"#)).unwrap();
        assert_eq!(key.algorithm(), Algorithm::HS256);
        assert_eq!(key.operations(), [KeyOperation::Sign, KeyOperation::Verify]);
    }

    #[test]
    fn field_base64_may_be_padded() {
        let key = parse(&format!(r#"{{"kty":"oct","alg":"HS256","k":"{SECRET}="}}"#)).unwrap();
        let unpadded = parse(&format!(r#"{{"kty":"oct","alg":"HS256","k":"{SECRET}"}}"#)).unwrap();
        assert_eq!(key, unpadded);
    }

    #[test]
    fn rejects_inconsistent_or_weak_keys() {
        let cases = [
            // short HMAC secret (16 bytes)
            r#"{"kty":"oct","alg":"HS256","k":"AAAAAAAAAAAAAAAAAAAAAA"}"#.to_string(),
            // missing secret
            r#"{"kty":"oct","alg":"HS256"}"#.to_string(),
            // missing alg
            format!(r#"{{"kty":"oct","k":"{SECRET}"}}"#),
            // HMAC secret labelled as RSA / EC
            format!(r#"{{"kty":"oct","alg":"RS256","k":"{SECRET}"}}"#),
            format!(r#"{{"alg":"ES256","k":"{SECRET}"}}"#),
            // unknown kty, alg, key operation
            format!(r#"{{"kty":"foo","alg":"HS256","k":"{SECRET}"}}"#),
            format!(r#"{{"kty":"oct","alg":"none","k":"{SECRET}"}}"#),
            format!(r#"{{"kty":"oct","alg":"HS256","k":"{SECRET}","key_ops":["fly"]}}"#),
            // bad kid
            format!(r#"{{"kty":"oct","alg":"HS256","k":"{SECRET}","kid":"../etc"}}"#),
            // Ed25519 public key of the wrong length
            r#"{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","x":"AAAA"}"#.to_string(),
            // EC point not on the curve
            format!(r#"{{"kty":"EC","crv":"P-256","alg":"ES256","x":"{SECRET}","y":"{SECRET}"}}"#),
        ];
        for json in cases {
            assert!(parse(&json).is_err(), "{json}");
        }
    }

    #[test]
    fn refuses_a_key_scope_it_would_not_enforce() {
        let json =
            format!(r#"{{"kty":"oct","alg":"HS256","k":"{SECRET}","scope":{{"put":["demo"]}}}}"#);
        assert!(matches!(parse(&json), Err(Error::UnsupportedKey(_))));
    }

    #[test]
    fn kid_rules_match_the_reference() {
        assert!(check_kid("abc-123_DEF").is_ok());
        assert!(check_kid(&"a".repeat(MAX_KID_LENGTH)).is_ok());
        for kid in ["", "a b", "a/b", "a.b", "ü"] {
            assert!(check_kid(kid).is_err(), "{kid}");
        }
        assert!(check_kid(&"a".repeat(MAX_KID_LENGTH + 1)).is_err());
    }
}
