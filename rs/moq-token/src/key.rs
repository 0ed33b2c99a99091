use std::{
    fmt,
    path::Path,
    str::FromStr,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    generate,
    jwk::{check_kid, Curve, Jwk, Material, BASE64URL},
    Algorithm, Claims, Error,
};

/// Seconds a token stays accepted after its `exp`, for clock skew between signer and verifier.
/// Deliberately small: an expiry is meant to hold.
pub const EXPIRY_LEEWAY_SECS: u64 = 2;

/// The longest token [`Key::verify`] looks at; real ones are well under 2 KiB.
pub const MAX_TOKEN_LENGTH: usize = 16 * 1024;

/// An operation a key is permitted (JWK `key_ops`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyOperation {
    /// Create tokens (`"sign"`).
    Sign,
    /// Check tokens (`"verify"`).
    Verify,
    /// `"encrypt"`: allowed in the file for compatibility; unused here.
    Encrypt,
    /// `"decrypt"`: allowed in the file for compatibility; unused here.
    Decrypt,
}

impl KeyOperation {
    /// The JWK name, e.g. `"sign"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
        }
    }
}

impl fmt::Display for KeyOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyOperation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        [Self::Sign, Self::Verify, Self::Encrypt, Self::Decrypt]
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| Error::InvalidKey(format!("unknown key operation {s:?} in key_ops")))
    }
}

/// A signing or verifying key: a JWK with one algorithm, permitted operations, and an optional
/// key ID.
///
/// | kind | `kty` | fields | algorithms |
/// |---|---|---|---|
/// | HMAC secret | `oct` (the default when absent) | `k` (≥ 32 bytes) | HS256/384/512 |
/// | ECDSA | `EC` | `crv` (`P-256`/`P-384`), `x`, `y`, private `d` | ES256 / ES384 |
/// | RSA (2048–4096 bits) | `RSA` | `n`, `e`, private `d p q dp dq qi` | RS*/PS* |
/// | Ed25519 | `OKP` | `crv` (`Ed25519`), `x`, private `d` | EdDSA |
///
/// Plus `alg`, `key_ops` (defaults to `["sign","verify"]`) and `kid`. A key is validated
/// completely when it is built or loaded, so a `Key` that exists can be used. Its fields are
/// fixed; derive a new key (e.g. [`to_public`](Self::to_public)) instead.
///
/// Files hold the base64url encoding (no padding) of the JWK JSON, as the reference writes
/// them; see [`decode_str`](Self::decode_str). `serde` (de)serializes the plain JWK JSON.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub(crate) algorithm: Algorithm,
    /// Sorted, no duplicates.
    pub(crate) operations: Vec<KeyOperation>,
    pub(crate) material: Material,
    pub(crate) kid: Option<String>,
}

impl Key {
    /// Generate a new key for `alg`, permitted to sign and verify.
    ///
    /// HMAC secrets are 32/48/64 random bytes (HS256/384/512), RSA keys 2048 bits, EC keys on
    /// P-256/P-384, EdDSA keys Ed25519. `kid` must be 1 to 128 of `A-Z a-z 0-9 - _` (the
    /// reference's rule); it is copied into the header of every token the key signs.
    pub fn generate(alg: Algorithm, kid: Option<String>) -> Result<Key, Error> {
        if let Some(kid) = &kid {
            check_kid(kid)?;
        }
        Ok(Key {
            algorithm: alg,
            operations: vec![KeyOperation::Sign, KeyOperation::Verify],
            material: generate::material(alg)?,
            kid,
        })
    }

    /// Load a key file: base64url of the JWK JSON, or the JSON itself (see
    /// [`decode_str`](Self::decode_str)).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Key, Error> {
        let path = path.as_ref();
        let contents = std::fs::read_to_string(path).map_err(|error| Error::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::decode_str(&contents)
    }

    /// Write the key file (see [`encode_string`](Self::encode_string)), replacing any file there.
    ///
    /// A key with private material is written readable by its owner only (mode 0600 on Unix),
    /// also when it replaces a more permissive file.
    pub fn to_file(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let encoded = self.encode_string()?;
        write_file(path, encoded.as_bytes(), self.has_private()).map_err(|error| Error::Io {
            path: path.to_path_buf(),
            error,
        })
    }

    /// Parse the key file format: base64url (padded or not) of the JWK JSON. Surrounding
    /// whitespace is ignored, and plain JWK JSON (starting with `{`) is accepted too, as the
    /// reference does.
    pub fn decode_str(s: &str) -> Result<Key, Error> {
        let s = s.trim();
        let json = if s.starts_with('{') {
            s.as_bytes().to_vec()
        } else {
            BASE64URL
                .decode(s)
                .map_err(|err| Error::InvalidKey(format!("not base64url-encoded JSON: {err}")))?
        };
        let jwk: Jwk = serde_json::from_slice(&json)
            .map_err(|err| Error::InvalidKey(format!("not a JWK JSON object: {err}")))?;
        jwk.into_key()
    }

    /// The key file format: base64url without padding of the JWK JSON, no trailing newline.
    pub fn encode_string(&self) -> Result<String, Error> {
        let json = serde_json::to_vec(&Jwk::from_key(self))
            .map_err(|err| Error::InvalidKey(format!("cannot encode JWK: {err}")))?;
        Ok(BASE64URL.encode(json))
    }

    /// The public half: private parts stripped, `key_ops` set to `["verify"]`, same `alg` and
    /// `kid`. Hand this to relays, which only verify.
    ///
    /// Fails for HMAC keys ([`Error::NoPublicKey`]), whose secret both signs and verifies, and
    /// for keys not permitted to verify.
    pub fn to_public(&self) -> Result<Key, Error> {
        if !self.permits(KeyOperation::Verify) {
            return Err(Error::NotPermitted(KeyOperation::Verify));
        }
        let material = match &self.material {
            Material::Oct { .. } => return Err(Error::NoPublicKey(self.algorithm)),
            Material::Ec { curve, x, y, .. } => Material::Ec {
                curve: *curve,
                x: x.clone(),
                y: y.clone(),
                d: None,
            },
            Material::Rsa { n, e, .. } => Material::Rsa {
                n: n.clone(),
                e: e.clone(),
                private: None,
            },
            Material::Ed25519 { x, .. } => Material::Ed25519 {
                x: x.clone(),
                d: None,
            },
        };
        Ok(Key {
            algorithm: self.algorithm,
            operations: vec![KeyOperation::Verify],
            material,
            kid: self.kid.clone(),
        })
    }

    /// The one algorithm this key signs with and accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key ID (`kid`), if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The permitted operations (`key_ops`), sorted.
    pub fn operations(&self) -> &[KeyOperation] {
        &self.operations
    }

    /// Whether `key_ops` permits `op`.
    pub fn permits(&self, op: KeyOperation) -> bool {
        self.operations.contains(&op)
    }

    /// Whether the key holds secret material: an HMAC secret or a private key. Only such keys
    /// can sign.
    pub fn has_private(&self) -> bool {
        match &self.material {
            Material::Oct { .. } => true,
            Material::Ec { d, .. } | Material::Ed25519 { d, .. } => d.is_some(),
            Material::Rsa { private, .. } => private.is_some(),
        }
    }

    /// Sign `claims` into a compact JWT. The header carries this key's `alg` and `kid`.
    ///
    /// Fails when `key_ops` lacks `sign`, when this is a public key, or when the claims grant
    /// neither `put` nor `get` ([`Error::NoPermissions`]).
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        if !self.permits(KeyOperation::Sign) {
            return Err(Error::NotPermitted(KeyOperation::Sign));
        }
        claims.validate()?;

        let mut header = Header::new(self.algorithm.to_jwt());
        header.kid = self.kid.clone();
        Ok(jsonwebtoken::encode(
            &header,
            claims,
            &self.encoding_key()?,
        )?)
    }

    /// Check a token and return its claims.
    ///
    /// Accepted only when all of these hold:
    /// - `key_ops` permits `verify`;
    /// - the header's `alg` is exactly this key's algorithm. The token never chooses how it is
    ///   checked, which defeats `alg: none` and HMAC-with-a-public-key confusion;
    /// - the signature is valid for this key;
    /// - `exp`, when present, has not passed (give or take [`EXPIRY_LEEWAY_SECS`]); a token
    ///   without `exp` never expires, as in the reference;
    /// - the claims grant `put` or `get`.
    ///
    /// The header's `kid` is not compared: one key, one verdict. Which paths the claims allow is
    /// the relay's business.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        if !self.permits(KeyOperation::Verify) {
            return Err(Error::NotPermitted(KeyOperation::Verify));
        }
        let token = token.trim();
        if token.len() > MAX_TOKEN_LENGTH {
            return Err(Error::MalformedToken(format!(
                "{} bytes long, the limit is {MAX_TOKEN_LENGTH}",
                token.len()
            )));
        }

        let header_alg = header_alg(token)?;
        if header_alg != self.algorithm.as_str() {
            return Err(Error::WrongAlgorithm {
                expected: self.algorithm,
                found: header_alg,
            });
        }

        let mut validation = Validation::new(self.algorithm.to_jwt());
        // No claim is required, and `exp` is checked below with our own leeway; `aud`, `nbf`
        // and the rest are not part of these tokens.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.decoding_key()?, &validation)?.claims;

        if let Some(expires) = claims.expires {
            let now = unix_now();
            if now >= expires.saturating_add(EXPIRY_LEEWAY_SECS) {
                return Err(Error::Expired { expires, now });
            }
        }
        claims.validate()?;
        Ok(claims)
    }

    fn encoding_key(&self) -> Result<EncodingKey, Error> {
        use p256::pkcs8::EncodePrivateKey;
        use rsa::pkcs1::EncodeRsaPrivateKey;

        // Material was validated when the key was built, so these conversions only fail on
        // a bug; they still return errors rather than panic.
        let invalid = |what: &str| Error::InvalidKey(format!("cannot use {what}"));
        match &self.material {
            Material::Oct { secret } => Ok(EncodingKey::from_secret(secret)),
            Material::Ec { curve, d, .. } => {
                let d = d.as_ref().ok_or(Error::MissingPrivateKey)?;
                let der = match curve {
                    Curve::P256 => p256::SecretKey::from_slice(d)
                        .map_err(|_| invalid("P-256 private key"))?
                        .to_pkcs8_der(),
                    Curve::P384 => p384::SecretKey::from_slice(d)
                        .map_err(|_| invalid("P-384 private key"))?
                        .to_pkcs8_der(),
                }
                .map_err(|_| invalid("EC private key"))?;
                Ok(EncodingKey::from_ec_der(der.as_bytes()))
            }
            Material::Ed25519 { d, .. } => {
                let d = d.as_ref().ok_or(Error::MissingPrivateKey)?;
                let seed: [u8; 32] = d
                    .as_slice()
                    .try_into()
                    .map_err(|_| invalid("Ed25519 seed"))?;
                let der = ed25519_dalek::SigningKey::from_bytes(&seed)
                    .to_pkcs8_der()
                    .map_err(|_| invalid("Ed25519 private key"))?;
                Ok(EncodingKey::from_ed_der(der.as_bytes()))
            }
            Material::Rsa { n, e, private } => {
                let private = private.as_ref().ok_or(Error::MissingPrivateKey)?;
                let big = |bytes: &[u8]| rsa::BigUint::from_bytes_be(bytes);
                let der = rsa::RsaPrivateKey::from_components(
                    big(n),
                    big(e),
                    big(&private.d),
                    vec![big(&private.p), big(&private.q)],
                )
                .map_err(|_| invalid("RSA private key"))?
                .to_pkcs1_der()
                .map_err(|_| invalid("RSA private key"))?;
                Ok(EncodingKey::from_rsa_der(der.as_bytes()))
            }
        }
    }

    fn decoding_key(&self) -> Result<DecodingKey, Error> {
        let b64 = |bytes: &[u8]| BASE64URL.encode(bytes);
        Ok(match &self.material {
            Material::Oct { secret } => DecodingKey::from_secret(secret),
            Material::Ec { x, y, .. } => DecodingKey::from_ec_components(&b64(x), &b64(y))?,
            Material::Ed25519 { x, .. } => DecodingKey::from_ed_components(&b64(x))?,
            Material::Rsa { n, e, .. } => DecodingKey::from_rsa_raw_components(n, e),
        })
    }
}

impl FromStr for Key {
    type Err = Error;

    /// Same as [`Key::decode_str`].
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::decode_str(s)
    }
}

/// Never prints secret material.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("operations", &self.operations)
            .field("private", &self.has_private())
            .finish()
    }
}

/// The plain JWK JSON object (not the base64url file format).
impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Jwk::from_key(self).serialize(serializer)
    }
}

/// The plain JWK JSON object, validated as by [`Key::decode_str`].
impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Jwk::deserialize(deserializer)?
            .into_key()
            .map_err(serde::de::Error::custom)
    }
}

/// The `alg` of a compact JWT's header, read before anything else is trusted.
fn header_alg(token: &str) -> Result<String, Error> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::MalformedToken(
            "expected three base64url parts separated by '.'".into(),
        ));
    };
    let header = BASE64URL
        .decode(header)
        .map_err(|err| Error::MalformedToken(format!("header is not base64url: {err}")))?;
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        crit: Option<serde_json::Value>,
    }
    let header: Header = serde_json::from_slice(&header)
        .map_err(|err| Error::MalformedToken(format!("header: {err}")))?;
    // RFC 7515 §4.1.11: extensions marked critical must be understood; none are.
    if header.crit.is_some() {
        return Err(Error::MalformedToken(
            "the header lists critical extensions (crit), none of which are supported".into(),
        ));
    }
    Ok(header.alg)
}

fn unix_now() -> u64 {
    // A clock set before 1970 is broken beyond what a token check can fix; read it as 1970.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(unix)]
fn write_file(path: &Path, contents: &[u8], private: bool) -> std::io::Result<()> {
    use std::{
        io::Write,
        os::unix::fs::{OpenOptionsExt, PermissionsExt},
    };
    if !private {
        return std::fs::write(path, contents);
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a newly created file; tighten an existing one before writing.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)
}

#[cfg(not(unix))]
fn write_file(path: &Path, contents: &[u8], _private: bool) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn claims() -> Claims {
        Claims {
            root: "demo".into(),
            publish: vec!["alice".into()],
            subscribe: vec!["".into(), "bob".into()],
            cluster: false,
            // Fixed, so two calls compare equal: 2100-01-01 and 2023-11-14.
            expires: Some(4_102_444_800),
            issued: Some(1_700_000_000),
        }
    }

    /// RSA generation is slow in debug builds; generate one key per process and relabel it.
    fn rsa_key(alg: Algorithm) -> Key {
        static RSA: OnceLock<Key> = OnceLock::new();
        let key = RSA.get_or_init(|| Key::generate(Algorithm::RS256, Some("rsa".into())).unwrap());
        Key {
            algorithm: alg,
            ..key.clone()
        }
    }

    fn key(alg: Algorithm) -> Key {
        match alg.to_jwt().family() {
            jsonwebtoken::AlgorithmFamily::Rsa => rsa_key(alg),
            _ => Key::generate(alg, Some(format!("kid-{alg}"))).unwrap(),
        }
    }

    /// A compact JWT with the given header and payload, signed (HMAC) with `secret` or unsigned.
    fn forge(header: &str, payload: &str, secret: Option<(Algorithm, &[u8])>) -> String {
        let message = format!("{}.{}", BASE64URL.encode(header), BASE64URL.encode(payload));
        let signature = match secret {
            None => String::new(),
            Some((alg, secret)) => jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(secret),
                alg.to_jwt(),
            )
            .unwrap(),
        };
        format!("{message}.{signature}")
    }

    fn secret(key: &Key) -> &[u8] {
        match &key.material {
            Material::Oct { secret } => secret,
            _ => panic!("not an HMAC key"),
        }
    }

    #[test]
    fn every_algorithm_signs_and_verifies_and_its_public_key_verifies() {
        for alg in Algorithm::ALL {
            let key = key(alg);
            assert_eq!(key.algorithm(), alg);
            assert!(key.has_private());
            let token = key.sign(&claims()).unwrap();
            assert_eq!(key.verify(&token).unwrap(), claims(), "{alg}");

            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, alg.to_jwt());
            assert_eq!(header.kid.as_deref(), key.kid());

            match key.to_public() {
                Err(Error::NoPublicKey(a)) => assert!(alg.is_hmac() && a == alg),
                Err(err) => panic!("{alg}: {err}"),
                Ok(public) => {
                    assert!(!alg.is_hmac());
                    assert!(!public.has_private());
                    assert_eq!(public.operations(), [KeyOperation::Verify]);
                    assert_eq!(public.kid(), key.kid());
                    assert_eq!(public.verify(&token).unwrap(), claims(), "{alg}");
                    // The public key's file carries no private field.
                    let json = serde_json::to_value(&public).unwrap();
                    for field in ["d", "p", "q", "dp", "dq", "qi", "k"] {
                        assert!(json.get(field).is_none(), "{alg}: {field} in {json}");
                    }
                }
            }
        }
    }

    #[test]
    fn generated_sizes_match_the_reference() {
        let sizes = [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ];
        for (alg, len) in sizes {
            assert_eq!(secret(&Key::generate(alg, None).unwrap()).len(), len);
        }
        let Material::Rsa { n, .. } = &key(Algorithm::RS256).material else {
            panic!("not RSA");
        };
        assert_eq!(n.len() * 8, crate::RSA_BITS);
        let json = serde_json::to_value(Key::generate(Algorithm::ES384, None).unwrap()).unwrap();
        assert_eq!(json["crv"], "P-384");
        let json = serde_json::to_value(Key::generate(Algorithm::EdDSA, None).unwrap()).unwrap();
        assert_eq!(
            (json["kty"].as_str(), json["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
    }

    #[test]
    fn a_header_alg_other_than_the_keys_is_rejected() {
        let key = key(Algorithm::HS256);
        // Correctly signed with the same secret, but HS384: the token must not pick the algorithm.
        let token = forge(
            r#"{"alg":"HS384","typ":"JWT"}"#,
            r#"{"get":[""]}"#,
            Some((Algorithm::HS384, secret(&key))),
        );
        assert!(matches!(
            key.verify(&token),
            Err(Error::WrongAlgorithm { expected: Algorithm::HS256, ref found }) if found == "HS384"
        ));
    }

    #[test]
    fn alg_none_is_rejected() {
        for alg in Algorithm::ALL {
            let key = key(alg);
            for none in ["none", "None", "NONE", ""] {
                let header = format!(r#"{{"alg":"{none}","typ":"JWT"}}"#);
                let token = forge(&header, r#"{"get":[""],"put":[""]}"#, None);
                assert!(
                    matches!(key.verify(&token), Err(Error::WrongAlgorithm { .. })),
                    "{alg} accepted alg {none:?}"
                );
            }
            // No alg at all.
            let token = forge(r#"{"typ":"JWT"}"#, r#"{"get":[""]}"#, None);
            assert!(matches!(key.verify(&token), Err(Error::MalformedToken(_))));
        }
    }

    #[test]
    fn hmac_signed_with_a_public_key_is_rejected() {
        // The classic confusion: an attacker HMACs a token with the (public) verification key's
        // bytes and claims HS256. A verifier that lets the header choose would accept it.
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            let public = key(alg).to_public().unwrap();
            let file = public.encode_string().unwrap();
            let json = serde_json::to_string(&public).unwrap();
            for secret in [file.as_bytes(), json.as_bytes()] {
                for hs in [Algorithm::HS256, Algorithm::HS512] {
                    let header = format!(r#"{{"alg":"{hs}","typ":"JWT"}}"#);
                    let token = forge(&header, r#"{"get":[""],"put":[""]}"#, Some((hs, secret)));
                    assert!(
                        matches!(public.verify(&token), Err(Error::WrongAlgorithm { .. })),
                        "{alg} key accepted {hs}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_signatures_are_rejected() {
        for alg in [
            Algorithm::HS256,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::EdDSA,
        ] {
            let key = key(alg);
            let token = key.sign(&claims()).unwrap();

            // Another key of the same algorithm.
            let other = if matches!(alg, Algorithm::RS256 | Algorithm::PS256) {
                // A second RSA key, generated once.
                static OTHER: OnceLock<Key> = OnceLock::new();
                Key {
                    algorithm: alg,
                    ..OTHER
                        .get_or_init(|| Key::generate(Algorithm::RS256, None).unwrap())
                        .clone()
                }
            } else {
                Key::generate(alg, None).unwrap()
            };
            assert!(
                matches!(other.verify(&token), Err(Error::BadSignature)),
                "{alg}"
            );

            // The claims changed under the original signature.
            let (message, signature) = token.rsplit_once('.').unwrap();
            let (header, _) = message.split_once('.').unwrap();
            let mut escalated = claims();
            escalated.root = String::new();
            let payload = BASE64URL.encode(serde_json::to_vec(&escalated).unwrap());
            let tampered = format!("{header}.{payload}.{signature}");
            assert!(
                matches!(key.verify(&tampered), Err(Error::BadSignature)),
                "{alg}"
            );

            // The signature itself damaged (a different first character).
            let first = if signature.starts_with('A') { "B" } else { "A" };
            let damaged = format!("{message}.{first}{}", &signature[1..]);
            assert!(key.verify(&damaged).is_err(), "{alg}");

            // No signature.
            assert!(key.verify(&format!("{message}.")).is_err(), "{alg}");
        }
    }

    #[test]
    fn expiry_is_enforced_with_a_small_leeway() {
        let key = key(Algorithm::HS256);
        let now = unix_now();
        let at = |expires: Option<u64>| Claims {
            expires,
            ..claims()
        };

        for expires in [now - 3600, now - EXPIRY_LEEWAY_SECS - 1] {
            let token = key.sign(&at(Some(expires))).unwrap();
            assert!(
                matches!(key.verify(&token), Err(Error::Expired { expires: e, .. }) if e == expires),
                "exp {expires} now {now}"
            );
        }
        for expires in [Some(now + 1), Some(now + 3600), None] {
            let token = key.sign(&at(expires)).unwrap();
            assert_eq!(key.verify(&token).unwrap().expires, expires);
        }
        // Just past exp, within the leeway.
        let token = key.sign(&at(Some(now))).unwrap();
        assert!(key.verify(&token).is_ok());
    }

    /// Hostile times: every `u64` exp and iat signs and verifies without overflow (0 and 1 have
    /// expired, the rest have not); negative, fractional and out-of-range numbers are malformed
    /// tokens; `nbf` is not a claim of these tokens and is ignored whatever its value.
    #[test]
    fn extreme_times_are_verdicts_not_panics() {
        let key = key(Algorithm::HS256);
        for expires in [0, 1] {
            let token = key
                .sign(&Claims {
                    expires: Some(expires),
                    ..claims()
                })
                .unwrap();
            assert!(
                matches!(key.verify(&token), Err(Error::Expired { .. })),
                "exp {expires}"
            );
        }
        let huge = [
            i64::MAX as u64,
            1 << 63,
            u64::MAX - EXPIRY_LEEWAY_SECS,
            u64::MAX - 1,
            u64::MAX,
        ];
        for time in huge {
            let at = Claims {
                expires: Some(time),
                issued: Some(time),
                ..claims()
            };
            let token = key.sign(&at).unwrap();
            assert_eq!(key.verify(&token).unwrap(), at, "exp and iat {time}");
        }
        let issued_at_zero = Claims {
            issued: Some(0),
            ..claims()
        };
        assert!(key.verify(&key.sign(&issued_at_zero).unwrap()).is_ok());

        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let signed = |payload: &str| forge(header, payload, Some((Algorithm::HS256, secret(&key))));
        for time in [
            "-1",
            "-9223372036854775808",
            "18446744073709551616",
            "1e300",
            "4102444800.5",
            r#""4102444800""#,
        ] {
            for claim in ["exp", "iat"] {
                let payload = format!(r#"{{"get":"","{claim}":{time}}}"#);
                assert!(
                    matches!(key.verify(&signed(&payload)), Err(Error::MalformedToken(_))),
                    "{payload}"
                );
            }
        }
        for time in ["0", "-1", "18446744073709551615", "1e300", r#""soon""#] {
            let payload = format!(r#"{{"get":"","nbf":{time}}}"#);
            assert!(key.verify(&signed(&payload)).is_ok(), "{payload}");
        }
    }

    #[test]
    fn tokens_without_put_or_get_are_rejected_at_sign_and_verify() {
        let key = key(Algorithm::HS256);
        let empty = Claims {
            root: "demo".into(),
            cluster: true,
            ..Default::default()
        };
        assert!(matches!(key.sign(&empty), Err(Error::NoPermissions)));

        for payload in [r#"{"root":"demo"}"#, r#"{"put":[],"get":[]}"#, "{}"] {
            let token = forge(
                r#"{"alg":"HS256","typ":"JWT"}"#,
                payload,
                Some((Algorithm::HS256, secret(&key))),
            );
            assert!(
                matches!(key.verify(&token), Err(Error::NoPermissions)),
                "{payload}"
            );
        }
    }

    #[test]
    fn key_ops_are_respected() {
        let signer = key(Algorithm::ES256);
        let public = signer.to_public().unwrap();
        assert!(matches!(
            public.sign(&claims()),
            Err(Error::NotPermitted(KeyOperation::Sign))
        ));

        // A public key whose file claims it may sign still cannot: it has no private part.
        let mut json = serde_json::to_value(&public).unwrap();
        json["key_ops"] = serde_json::json!(["sign", "verify"]);
        let lying: Key = serde_json::from_value(json).unwrap();
        assert!(matches!(
            lying.sign(&claims()),
            Err(Error::MissingPrivateKey)
        ));

        // An HMAC key limited to verify, and one limited to sign.
        let hmac = key(Algorithm::HS256);
        let token = hmac.sign(&claims()).unwrap();
        let mut json = serde_json::to_value(&hmac).unwrap();
        json["key_ops"] = serde_json::json!(["verify"]);
        let verify_only: Key = serde_json::from_value(json.clone()).unwrap();
        assert!(matches!(
            verify_only.sign(&claims()),
            Err(Error::NotPermitted(KeyOperation::Sign))
        ));
        assert!(verify_only.verify(&token).is_ok());

        json["key_ops"] = serde_json::json!(["sign"]);
        let sign_only: Key = serde_json::from_value(json).unwrap();
        assert!(sign_only.sign(&claims()).is_ok());
        assert!(matches!(
            sign_only.verify(&token),
            Err(Error::NotPermitted(KeyOperation::Verify))
        ));
        assert!(matches!(
            sign_only.to_public(),
            Err(Error::NotPermitted(KeyOperation::Verify))
        ));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let key = key(Algorithm::HS256);
        let header = BASE64URL.encode(r#"{"alg":"HS256"}"#);
        for token in [
            String::new(),
            "abc".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            "!!!.e30.x".into(),
            format!("{}.e30.x", BASE64URL.encode("not json")),
            format!("{header}.!!!.x"),
            "x".repeat(MAX_TOKEN_LENGTH + 1),
        ] {
            assert!(key.verify(&token).is_err(), "{token}");
        }
        // A critical header extension we cannot honour.
        let token = forge(
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            r#"{"get":[""]}"#,
            Some((Algorithm::HS256, secret(&key))),
        );
        assert!(matches!(key.verify(&token), Err(Error::MalformedToken(_))));

        // The payload is not claims-shaped.
        let token = forge(
            r#"{"alg":"HS256"}"#,
            r#"{"put":5}"#,
            Some((Algorithm::HS256, secret(&key))),
        );
        assert!(matches!(key.verify(&token), Err(Error::MalformedToken(_))));
    }

    #[test]
    fn key_file_round_trips_and_accepts_padding_and_plain_json() {
        let dir = std::env::temp_dir().join(format!("moq-token-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for alg in [
            Algorithm::HS512,
            Algorithm::ES384,
            Algorithm::PS384,
            Algorithm::EdDSA,
        ] {
            let key = key(alg);
            let path = dir.join(format!("{alg}.jwk"));
            key.to_file(&path).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains(['=', '{', '\n', '+', '/']), "{text}");
            assert_eq!(Key::from_file(&path).unwrap(), key);

            // Padded base64url, surrounding whitespace, and plain JSON load the same key.
            let padded = format!("  {text}{}\n", "=".repeat((4 - text.len() % 4) % 4));
            assert_eq!(Key::decode_str(&padded).unwrap(), key);
            let json = serde_json::to_string(&key).unwrap();
            assert_eq!(Key::decode_str(&json).unwrap(), key);

            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{alg}");
                if !alg.is_hmac() {
                    let public = dir.join(format!("{alg}.pub.jwk"));
                    key.to_public().unwrap().to_file(&public).unwrap();
                    let mode = std::fs::metadata(&public).unwrap().permissions().mode() & 0o777;
                    assert_ne!(mode, 0o600, "{alg} public key needlessly private");
                }
            }
        }
        assert!(matches!(
            Key::from_file(dir.join("missing")),
            Err(Error::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();

        for garbage in ["", "not base64!", "e30", "bnVsbA"] {
            assert!(Key::decode_str(garbage).is_err(), "{garbage}");
        }
    }

    #[test]
    fn rsa_private_key_loads_without_crt_parameters() {
        let key = key(Algorithm::RS256);
        let mut json = serde_json::to_value(&key).unwrap();
        let object = json.as_object_mut().unwrap();
        for field in ["p", "q", "dp", "dq", "qi"] {
            object.remove(field);
        }
        // p and q are recovered (in either order), and the CRT values recomputed.
        let minimal: Key = serde_json::from_value(json).unwrap();
        assert!(minimal.has_private());
        assert_eq!(minimal.to_public().unwrap(), key.to_public().unwrap());
        let json = serde_json::to_value(&minimal).unwrap();
        for field in ["p", "q", "dp", "dq", "qi"] {
            assert!(json[field].is_string(), "{field} missing");
        }
        let token = minimal.sign(&claims()).unwrap();
        assert!(key.verify(&token).is_ok());
    }

    #[test]
    fn invalid_kid_is_rejected_at_generate() {
        assert!(matches!(
            Key::generate(Algorithm::HS256, Some("a/b".into())),
            Err(Error::InvalidKeyId(_))
        ));
        assert_eq!(Key::generate(Algorithm::HS256, None).unwrap().kid(), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let key = key(Algorithm::HS256);
        let debug = format!("{key:?}");
        assert!(!debug.contains(&BASE64URL.encode(secret(&key))), "{debug}");
        assert!(debug.contains("HS256"));
    }

    // Vectors produced by the reference's JS twin (@moq/token), as published in the reference's
    // tests: keys with extra unknown fields, tokens with `iat` and no `exp`.
    const JS_HS256_KEY: &str = r#"{"kty":"oct","alg":"HS256","k":"xm6xsSkfFqzPU3KfcbAcF2_h0OkStxQ_nNqVPYl0ync","kid":"js-test-key","key_ops":["sign","verify"],"guest":[],"guest_sub":[],"guest_pub":[]}"#;
    const JS_HS256_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImpzLXRlc3Qta2V5In0.eyJyb290IjoibGl2ZSIsInB1dCI6WyJjYW1lcmExIl0sImdldCI6WyJjYW1lcmExIiwiY2FtZXJhMiJdLCJpYXQiOjE3NzUxNzY3NTR9.tHNQtHh_HCIKxXOexDCM7AkjqWzbULLZzjEckfOGRfY";
    const JS_EDDSA_PUBLIC_KEY: &str = r#"{"kty":"OKP","alg":"EdDSA","crv":"Ed25519","x":"UiU9fT_SdBBpkFtJPRCY0gX1jK_Dr9syYLFuEz4QUM4","kid":"js-eddsa-key","guest":[],"guest_sub":[],"guest_pub":[],"key_ops":["verify"]}"#;
    const JS_EDDSA_PRIVATE_KEY: &str = r#"{"kty":"OKP","alg":"EdDSA","crv":"Ed25519","x":"UiU9fT_SdBBpkFtJPRCY0gX1jK_Dr9syYLFuEz4QUM4","d":"lm-L_PV3ksuQ-KrFBgFMDJqAZC3_Z6Z5UC4ZQY5OoDQ","kid":"js-eddsa-key","key_ops":["sign","verify"]}"#;
    const JS_EDDSA_TOKEN: &str = "eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImpzLWVkZHNhLWtleSJ9.eyJyb290Ijoic3RyZWFtIiwicHV0IjpbInZpZGVvIl0sImlhdCI6MTc3NTE3Njc1Nn0.l9rUMHjPSXWKSXRP3mmeMgTAywtqpdqQehhViWaPrKxax1Y2D9KRIYTixYz-b6PI-AoHQYusHWeeLu_HRw2cAg";

    #[test]
    fn verifies_tokens_from_the_reference_js_implementation() {
        let key = Key::decode_str(JS_HS256_KEY).unwrap();
        assert_eq!(key.kid(), Some("js-test-key"));
        let claims = key.verify(JS_HS256_TOKEN).unwrap();
        assert_eq!(claims.root, "live");
        assert_eq!(claims.publish, ["camera1"]);
        assert_eq!(claims.subscribe, ["camera1", "camera2"]);
        assert_eq!(claims.issued, Some(1_775_176_754));

        let private = Key::decode_str(JS_EDDSA_PRIVATE_KEY).unwrap();
        let public = Key::decode_str(JS_EDDSA_PUBLIC_KEY).unwrap();
        assert_eq!(private.to_public().unwrap(), public);
        for key in [&private, &public] {
            let claims = key.verify(JS_EDDSA_TOKEN).unwrap();
            assert_eq!(
                (claims.root.as_str(), claims.publish),
                ("stream", vec!["video".to_string()])
            );
        }
        assert!(matches!(
            Key::decode_str(JS_HS256_KEY)
                .unwrap()
                .verify(JS_EDDSA_TOKEN),
            Err(Error::WrongAlgorithm { .. })
        ));
    }
}
