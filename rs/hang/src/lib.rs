//! hang: live media over moq-lite.
//!
//! A hang broadcast is a moq-lite broadcast with a JSON [`catalog`] track describing its
//! renditions, and one track per rendition whose frames use the legacy [`container`]
//! (varint microsecond timestamp + codec payload). [`import`] turns fMP4/CMAF or Annex-B H.264
//! into such a broadcast; [`export`] turns one back into fMP4 or Annex-B, or reads a rendition
//! sample by sample. [`bitstream`] derives codec strings from raw elementary streams.
//!
//! ```text
//!  ffmpeg ─fMP4─▶ import::Fmp4Importer ─▶ BroadcastProducer ─┬─ "catalog.json"  one JSON frame per group
//!                 import::AnnexBImporter      │              ├─ "video0"  group = GoP, frame = [ts µs][AVCC/Annex-B]
//!                                             │              └─ "audio1"  group = one frame
//!                                             ▼ (moq-lite origin / session / relay)
//!  ffplay ◀─fMP4─ export::Fmp4Exporter ◀─ BroadcastConsumer ─ CatalogConsumer, TrackConsumer (latency target)
//! ```
//!
//! # Example
//! Publish one H.264 rendition and read it back:
//! ```
//! use std::time::Duration;
//! use hang::{catalog::VideoConfig, BroadcastProducer, Frame};
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let mut broadcast = BroadcastProducer::new();
//! let mut video = broadcast.add_video(VideoConfig { codec: "avc3.42c01e".into(), ..Default::default() });
//! broadcast.publish_catalog()?;
//!
//! // Publish on an origin under a `.hang` path so sessions can serve it.
//! let origin = moq_lite::OriginProducer::new();
//! origin.publish_broadcast(&moq_lite::Path::new("demo/alice.hang")?, broadcast.inner().consume())?;
//!
//! let consumer = broadcast.consume();
//! let catalog = consumer.catalog().next().await?.expect("a catalog");
//! let (name, _config) = catalog.video_renditions().next().expect("a rendition");
//! let mut track = consumer.subscribe(name, Duration::from_millis(500));
//!
//! video.write(Frame { timestamp: 0, keyframe: true, payload: vec![0, 0, 0, 1, 0x65].into() })?;
//! let frame = track.read().await?.expect("a frame");
//! assert!(frame.keyframe);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod abr;
mod abr_reader;
pub mod annexb;
pub mod bitstream;
mod broadcast;
pub mod catalog;
mod codec;
pub mod container;
mod error;
pub mod export;
pub mod import;
mod reader;

pub use abr_reader::*;
pub use broadcast::*;
pub use error::Error;
