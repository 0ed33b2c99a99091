use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::Error;

/// A JWS signing algorithm, written in a key's `alg` and a token header's `alg`.
///
/// A [`Key`](crate::Key) has exactly one; it signs with it and verifies only tokens whose header
/// names it. `none` is deliberately absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// HMAC with SHA-256 (shared secret, 32 random bytes when generated).
    HS256,
    /// HMAC with SHA-384 (shared secret, 48 random bytes when generated).
    HS384,
    /// HMAC with SHA-512 (shared secret, 64 random bytes when generated).
    HS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys when generated).
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// EdDSA on Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm, in the order listed above.
    pub const ALL: [Algorithm; 12] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::ES256,
        Self::ES384,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::EdDSA,
    ];

    /// The name used in JWK and JWT headers, e.g. `"HS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Whether this is an HMAC algorithm, whose key is a shared secret with no public half.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as Jwt;
        match self {
            Self::HS256 => Jwt::HS256,
            Self::HS384 => Jwt::HS384,
            Self::HS512 => Jwt::HS512,
            Self::ES256 => Jwt::ES256,
            Self::ES384 => Jwt::ES384,
            Self::RS256 => Jwt::RS256,
            Self::RS384 => Jwt::RS384,
            Self::RS512 => Jwt::RS512,
            Self::PS256 => Jwt::PS256,
            Self::PS384 => Jwt::PS384,
            Self::PS512 => Jwt::PS512,
            Self::EdDSA => Jwt::EdDSA,
        }
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Parses the exact (case-sensitive) JWA name, as the reference does.
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| Error::UnknownAlgorithm(s.to_string()))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_display_and_serde() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.to_string().parse::<Algorithm>().unwrap(), alg);
            let json = serde_json::to_string(&alg).unwrap();
            assert_eq!(json, format!("\"{alg}\""));
            assert_eq!(serde_json::from_str::<Algorithm>(&json).unwrap(), alg);
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        for name in ["none", "None", "hs256", "EDDSA", "ES512", "HS128", ""] {
            assert!(
                matches!(name.parse::<Algorithm>(), Err(Error::UnknownAlgorithm(_))),
                "{name}"
            );
        }
    }
}
