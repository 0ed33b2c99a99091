use std::path::PathBuf;

use crate::{Algorithm, KeyOperation};

/// Everything that can go wrong with a key or a token.
///
/// The variants say whose fault it was: a bad key file ([`InvalidKey`](Self::InvalidKey),
/// [`UnsupportedKey`](Self::UnsupportedKey), [`InvalidKeyId`](Self::InvalidKeyId)), a key used
/// for something it may not do ([`NotPermitted`](Self::NotPermitted),
/// [`MissingPrivateKey`](Self::MissingPrivateKey), [`NoPublicKey`](Self::NoPublicKey)), or a
/// token the holder of the key should refuse ([`MalformedToken`](Self::MalformedToken),
/// [`WrongAlgorithm`](Self::WrongAlgorithm), [`BadSignature`](Self::BadSignature),
/// [`Expired`](Self::Expired), [`NoPermissions`](Self::NoPermissions)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An algorithm name that is not one of the twelve supported ones.
    #[error("unknown algorithm {0:?} (expected one of HS256, HS384, HS512, ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA)")]
    UnknownAlgorithm(String),

    /// The key file or JWK could not be parsed, or its parts do not fit together.
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// A well-formed JWK using a feature this crate does not implement.
    #[error("unsupported key: {0}")]
    UnsupportedKey(&'static str),

    /// A key ID outside the reference's rules: 1 to 128 of `A-Z a-z 0-9 - _`.
    #[error("invalid key id {0:?}: use 1 to 128 characters from A-Z, a-z, 0-9, '-' and '_'")]
    InvalidKeyId(String),

    /// The key's `key_ops` do not allow this operation.
    #[error("the key does not permit {0} (key_ops)")]
    NotPermitted(KeyOperation),

    /// Signing needs the private half, and this is a public key.
    #[error("the key has no private part, so it can only verify")]
    MissingPrivateKey,

    /// HMAC keys are a shared secret: there is no public half to hand out.
    #[error("an HMAC ({0}) key is a shared secret and has no public key")]
    NoPublicKey(Algorithm),

    /// The token's header names another algorithm than the key's (including `none`).
    #[error("wrong algorithm: the token says {found:?}, but the key is {expected}")]
    WrongAlgorithm {
        /// The key's algorithm, the only one accepted.
        expected: Algorithm,
        /// The `alg` in the token header.
        found: String,
    },

    /// The token is not a well-formed JWT with JSON claims of the expected shape.
    #[error("malformed token: {0}")]
    MalformedToken(String),

    /// The signature does not match the key.
    #[error("bad signature: the token was not signed by this key, or was altered")]
    BadSignature,

    /// The `exp` claim lies in the past.
    #[error("token expired at {expires} (unix seconds; now {now})")]
    Expired {
        /// The token's `exp`.
        expires: u64,
        /// The verifier's clock, unix seconds.
        now: u64,
    },

    /// The claims grant neither `put` (publish) nor `get` (subscribe), so the token is useless.
    #[error("the token grants no permissions: neither publish (put) nor subscribe (get)")]
    NoPermissions,

    /// The operating system's random source or a crypto backend failed.
    #[error("crypto failure: {0}")]
    Crypto(String),

    /// Reading or writing a key file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said (already part of the message, so not a `source`).
        error: std::io::Error,
    },
}

impl From<jsonwebtoken::errors::Error> for Error {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match err.kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_)
            | ErrorKind::InvalidClaimFormat(_) => Self::MalformedToken(err.to_string()),
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::RsaFailedSigning => Self::InvalidKey(err.to_string()),
            _ => Self::Crypto(err.to_string()),
        }
    }
}
