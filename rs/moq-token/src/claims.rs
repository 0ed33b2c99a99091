use serde::{Deserialize, Serialize};

use crate::Error;

/// The payload of a token: where the holder may connect and what it may publish and subscribe.
///
/// The JSON names are the reference's (`root`, `put`, `get`, `cluster`, `exp`, `iat`), not the
/// `pub`/`sub` of older documentation (`sub` is a registered JWT claim). `put` and `get` are
/// decoded from a string or an array of strings and always encoded as arrays, as the reference
/// does; empty fields are omitted. Unknown claims (`sub`, `aud`, ...) are ignored.
///
/// Every path is relative to `root`, and `""` means "everything under the root". The relay
/// checks them against the connection's URL path; this crate only signs and verifies.
///
/// ```
/// let claims = moq_token::Claims {
///     root: "room/123".into(),
///     publish: vec!["alice".into()],
///     subscribe: vec!["".into()],
///     ..Default::default()
/// };
/// let json = serde_json::to_string(&claims)?;
/// assert_eq!(json, r#"{"root":"room/123","put":["alice"],"get":[""]}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// The URL path prefix the connection must be under; `""` (the default) is anywhere.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub root: String,

    /// Path prefixes, relative to `root`, the holder may publish (announce) under.
    #[serde(
        rename = "put",
        default,
        with = "string_or_array",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub publish: Vec<String>,

    /// Path prefixes, relative to `root`, the holder may discover and subscribe to.
    #[serde(
        rename = "get",
        default,
        with = "string_or_array",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub subscribe: Vec<String>,

    /// Marks a relay-to-relay (cluster) session. Omitted when false. The reference dropped this
    /// claim in later releases and ignores it when present.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cluster: bool,

    /// Expiry, unix seconds (`exp`). Checked by [`Key::verify`](crate::Key::verify) when present.
    /// Any `u64` is accepted: values past what a clock can represent (such as `u64::MAX`) simply
    /// never expire. A negative, fractional or larger number is a malformed token.
    #[serde(rename = "exp", default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,

    /// Issue time, unix seconds (`iat`). Informational; nothing checks it (any `u64`).
    #[serde(rename = "iat", default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<u64>,
}

impl Claims {
    /// Rejects claims that grant nothing: neither `put` nor `get`. Run by
    /// [`Key::sign`](crate::Key::sign) and [`Key::verify`](crate::Key::verify).
    pub fn validate(&self) -> Result<(), Error> {
        if self.publish.is_empty() && self.subscribe.is_empty() {
            return Err(Error::NoPermissions);
        }
        Ok(())
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

/// `put`/`get`: a single string or an array of strings on input, always an array on output.
mod string_or_array {
    use std::fmt;

    use serde::{
        de::{self, SeqAccess, Visitor},
        Deserializer, Serialize, Serializer,
    };

    pub fn serialize<S: Serializer>(value: &[String], serializer: S) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<String>, D::Error> {
        struct StringOrArray;

        impl<'de> Visitor<'de> for StringOrArray {
            type Value = Vec<String>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path string or an array of path strings")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(vec![value.to_string()])
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut paths = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(path) = seq.next_element::<String>()? {
                    paths.push(path);
                }
                Ok(paths)
            }
        }

        deserializer.deserialize_any(StringOrArray)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_get_decode_from_a_string_or_an_array() {
        let claims: Claims =
            serde_json::from_str(r#"{"root":"demo","put":"alice","get":["", "bob"]}"#).unwrap();
        assert_eq!(claims.root, "demo");
        assert_eq!(claims.publish, ["alice"]);
        assert_eq!(claims.subscribe, ["", "bob"]);
        assert!(!claims.cluster);
        assert_eq!(claims.expires, None);
    }

    #[test]
    fn encodes_arrays_and_omits_empty_fields_like_the_reference() {
        let claims = Claims {
            publish: vec!["alice".into()],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&claims).unwrap(),
            r#"{"put":["alice"]}"#
        );

        let claims = Claims {
            root: "demo".into(),
            publish: vec!["".into()],
            subscribe: vec!["a".into(), "b".into()],
            cluster: true,
            expires: Some(4_102_444_800),
            issued: Some(1_700_000_000),
        };
        let json = serde_json::to_string(&claims).unwrap();
        assert_eq!(
            json,
            r#"{"root":"demo","put":[""],"get":["a","b"],"cluster":true,"exp":4102444800,"iat":1700000000}"#
        );
        assert_eq!(serde_json::from_str::<Claims>(&json).unwrap(), claims);
    }

    #[test]
    fn ignores_unknown_claims_and_accepts_null_times() {
        let claims: Claims = serde_json::from_str(
            r#"{"get":"","sub":"x","aud":"relay","exp":null,"cluster":false}"#,
        )
        .unwrap();
        assert_eq!(claims.subscribe, [""]);
        assert_eq!(claims.expires, None);
    }

    #[test]
    fn rejects_wrong_shapes() {
        for json in [
            r#"{"put":5}"#,
            r#"{"get":[1]}"#,
            r#"{"exp":-1}"#,
            r#"{"exp":"soon"}"#,
            r#"{"cluster":"yes"}"#,
        ] {
            assert!(serde_json::from_str::<Claims>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn claims_without_put_or_get_are_useless() {
        let claims = Claims {
            root: "demo".into(),
            cluster: true,
            ..Default::default()
        };
        assert!(matches!(claims.validate(), Err(Error::NoPermissions)));
        let claims = Claims {
            subscribe: vec!["".into()],
            ..claims
        };
        assert!(claims.validate().is_ok());
    }
}
