//! The model's error: what went wrong publishing or reading a hang broadcast.

use crate::catalog::CatalogError;
use crate::container::ContainerError;

/// Errors of [`crate::BroadcastProducer`], [`crate::TrackProducer`] and the consumers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A track's first frame (video) was not a keyframe: a group must start with one (§12.4).
    #[error("the first frame of a track must be a keyframe")]
    MissingKeyframe,
    /// A keyframe (or, for audio, any frame) older than the previous one.
    #[error("timestamp went backwards: {timestamp} µs after {previous} µs")]
    TimestampBackwards {
        /// The earlier timestamp already written.
        previous: u64,
        /// The refused one.
        timestamp: u64,
    },
    /// A frame that is not a legacy container frame.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// A catalog that does not parse or does not fit.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The underlying moq-lite track, group or broadcast failed.
    #[error("moq-lite: {0}")]
    Moq(#[from] moq_lite::Error),
}
