//! Fresh key material for each algorithm, from the operating system's random source.

use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::{OsRng, RngCore};

use crate::{
    jwk::{Curve, Material, RsaPrivate},
    Algorithm, Error,
};

/// RSA modulus size for generated keys, as the reference generates.
pub const RSA_BITS: usize = 2048;

pub(crate) fn material(alg: Algorithm) -> Result<Material, Error> {
    use Algorithm::*;
    match alg {
        HS256 => hmac(32),
        HS384 => hmac(48),
        HS512 => hmac(64),
        ES256 => {
            let secret = p256::SecretKey::random(&mut OsRng);
            let point = secret.public_key().to_encoded_point(false);
            ec(
                Curve::P256,
                point.x(),
                point.y(),
                secret.to_bytes().to_vec(),
            )
        }
        ES384 => {
            let secret = p384::SecretKey::random(&mut OsRng);
            let point = secret.public_key().to_encoded_point(false);
            ec(
                Curve::P384,
                point.x(),
                point.y(),
                secret.to_bytes().to_vec(),
            )
        }
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
            let key = rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS)
                .map_err(|err| Error::Crypto(format!("RSA key generation: {err}")))?;
            let public = key.to_public_key();
            use rsa::traits::PublicKeyParts;
            Ok(Material::Rsa {
                n: public.n().to_bytes_be(),
                e: public.e().to_bytes_be(),
                private: Some(RsaPrivate::from_key(&key)?),
            })
        }
        EdDSA => {
            let mut seed = [0; 32];
            fill(&mut seed)?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            Ok(Material::Ed25519 {
                x: key.verifying_key().to_bytes().to_vec(),
                d: Some(seed.to_vec()),
            })
        }
    }
}

fn hmac(len: usize) -> Result<Material, Error> {
    let mut secret = vec![0; len];
    fill(&mut secret)?;
    Ok(Material::Oct { secret })
}

/// Random bytes, failing rather than panicking if the OS source is unavailable.
pub(crate) fn fill(bytes: &mut [u8]) -> Result<(), Error> {
    OsRng
        .try_fill_bytes(bytes)
        .map_err(|err| Error::Crypto(format!("random source: {err}")))
}

fn ec(
    curve: Curve,
    x: Option<&impl AsRef<[u8]>>,
    y: Option<&impl AsRef<[u8]>>,
    d: Vec<u8>,
) -> Result<Material, Error> {
    // An uncompressed encoding of a non-identity point always has both coordinates.
    let missing = || Error::Crypto("generated EC point has no coordinates".into());
    Ok(Material::Ec {
        curve,
        x: x.ok_or_else(missing)?.as_ref().to_vec(),
        y: y.ok_or_else(missing)?.as_ref().to_vec(),
        d: Some(d),
    })
}
