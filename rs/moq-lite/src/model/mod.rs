//! Producer/consumer handles for origins, broadcasts, tracks, groups and frames.
//!
//! ```text
//! Origin ──(path)──▶ Broadcast ──(name)──▶ Track ──(sequence)──▶ Group ──▶ Frame ──▶ chunks
//! ```
//! Every level is split into a producer (writes) and consumers (read, cheap to make, each with its
//! own position). Nothing here knows about the wire.

mod broadcast;
mod frame;
mod group;
mod origin;
mod track;

#[doc(hidden)]
pub mod fuzz;

pub use broadcast::*;
pub use frame::*;
pub use group::*;
pub use origin::*;
pub use track::*;
