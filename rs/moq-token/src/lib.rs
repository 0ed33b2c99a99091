//! JWT keys and tokens for moq-relay authentication, compatible with the reference
//! `moq-token` key files and claims.
//!
//! A [`Key`] is a JWK with one [`Algorithm`]. Whoever hands out access keeps the signing key
//! and [`sign`](Key::sign)s [`Claims`]; the relay holds the same HMAC secret or the
//! [public half](Key::to_public) and [`verify`](Key::verify)s the token a client presents
//! (`?jwt=` in the URL), then matches the claims against the connection's path.
//!
//! ```text
//!   issuer                                  relay
//!   Key::generate ──to_public()──────────▶  Key (verify only)
//!   Key::sign(Claims) ──▶ token ──client──▶ Key::verify(token) ──▶ Claims { root, put, get, .. }
//! ```
//!
//! Verification trusts nothing in the token's header: the key's algorithm is the only one
//! accepted, so `alg: none` and algorithm-confusion tokens fail. See [`Key::verify`].
//!
//! The `moq-token` binary in this crate generates keys, signs and verifies on the command line.
//!
//! # Example
//! ```
//! use moq_token::{Algorithm, Claims, Key};
//!
//! let key = Key::generate(Algorithm::EdDSA, Some("2026-01".into()))?;
//! let claims = Claims {
//!     root: "room/123".into(),
//!     publish: vec!["alice".into()],
//!     subscribe: vec!["".into()],
//!     ..Default::default()
//! };
//! let token = key.sign(&claims)?;
//!
//! // The relay only needs the public key, stored in the same file format.
//! let public = Key::decode_str(&key.to_public()?.encode_string()?)?;
//! assert_eq!(public.verify(&token)?, claims);
//! assert!(public.sign(&claims).is_err());
//! # Ok::<(), moq_token::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod algorithm;
mod claims;
mod error;
mod generate;
mod jwk;
mod key;

pub use algorithm::Algorithm;
pub use claims::Claims;
pub use error::Error;
pub use generate::RSA_BITS;
pub use jwk::{MAX_KID_LENGTH, MIN_HMAC_SECRET_BYTES, MIN_RSA_BITS};
pub use key::{Key, KeyOperation, EXPIRY_LEEWAY_SECS, MAX_TOKEN_LENGTH};
