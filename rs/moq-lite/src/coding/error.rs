//! Decode errors.

/// Why bytes could not be decoded.
///
/// [`DecodeError::Short`] alone means "not enough bytes yet"; every other variant means the bytes
/// are invalid and the stream (or session) must be closed with [`crate::Error::Decode`]-class codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Need more bytes; retry once more have arrived.
    #[error("need more bytes")]
    Short,
    /// A length-prefixed message had bytes left over after its last field.
    #[error("message has {0} unexpected trailing bytes")]
    Long(usize),
    /// A length-prefixed message ended before its last field.
    #[error("message body ended early")]
    Truncated,
    /// A length or count from the wire exceeded its limit.
    #[error("{what} of {len} exceeds the limit of {max}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The value read.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A field held a value outside its allowed set.
    #[error("invalid {what}: {value}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The value read.
        value: u64,
    },
    /// A string was not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A broadcast path broke the path rules.
    #[error("invalid path: {0}")]
    InvalidPath(#[from] crate::PathError),
    /// A parameter ID appeared twice.
    #[error("duplicate parameter {0}")]
    DuplicateParameter(u64),
    /// The message does not exist in this version.
    #[error("{what} is not defined in {version}")]
    Unsupported {
        /// The message.
        what: &'static str,
        /// The negotiated version.
        version: super::Version,
    },
}
