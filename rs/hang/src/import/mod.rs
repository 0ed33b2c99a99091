//! Turn media streams into a hang broadcast.
//!
//! Importers are push parsers: feed them bytes in chunks of any size (e.g. as read from stdin)
//! with `decode`, and they consume what they can, leaving an incomplete tail in the buffer for the
//! next call. Malformed input is an [`ImportError`], never a panic; every size read from the input
//! is checked against a `MAX_*` constant before anything is buffered for it.
//!
//! - [`Fmp4Importer`]: fragmented MP4 / CMAF as ffmpeg writes it (H.264 avc1/avc3, H.265
//!   hvc1/hev1, AV1, VP8, VP9, AAC, Opus; any number of tracks in one stream).
//! - [`AnnexBImporter`]: raw H.264 Annex-B byte stream.

mod annexb;
mod fmp4;

pub use annexb::*;
pub use fmp4::*;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bytes are not what the format allows (bad box sizes, offsets outside the data, ...).
    #[error("malformed input: {0}")]
    Malformed(String),
    /// Valid input using something this importer does not handle (a codec, a box layout).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Media data before the init segment (`moov`): e.g. a stream joined mid-fragment.
    #[error("media data before the init segment (moov); the stream must start at its beginning")]
    MissingInit,
    /// An MP4 box that the box parser rejected.
    #[error("invalid MP4 box: {0}")]
    Mp4(#[from] mp4_atom::Error),
    /// The broadcast refused a frame (group rules) or failed.
    #[error(transparent)]
    Model(#[from] crate::Error),
}

impl ImportError {
    fn malformed(reason: impl Into<String>) -> Self {
        Self::Malformed(reason.into())
    }
}
