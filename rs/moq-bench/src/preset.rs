//! Built-in workload shapes.

use std::time::Duration;

/// One publisher's workload: how often it writes, how big, and how frames fill groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// Its name on the command line.
    pub name: &'static str,
    /// Frames written per second.
    pub fps: u32,
    /// Payload bytes per frame (at least [`HEADER_LEN`]).
    pub frame_bytes: usize,
    /// Frames per group: a new group (a new QUIC stream) every this many frames.
    pub frames_per_group: u64,
}

/// Bytes at the start of every payload: send time (µs since the Unix epoch) and sequence number,
/// both big-endian u64.
pub const HEADER_LEN: usize = 16;

/// Every built-in preset.
pub const PRESETS: &[Preset] = &[
    // SD video fan-out: 3 Mbps, a group (keyframe interval) per second.
    Preset {
        name: "sd",
        fps: 30,
        frame_bytes: 12_500,
        frames_per_group: 30,
    },
    // Opus-like audio: 20 ms frames, each its own group.
    Preset {
        name: "audio",
        fps: 50,
        frame_bytes: 160,
        frames_per_group: 1,
    },
    // Chat: tiny messages, each its own group.
    Preset {
        name: "chat",
        fps: 10,
        frame_bytes: 100,
        frames_per_group: 1,
    },
];

impl Preset {
    /// The preset called `name`.
    pub fn find(name: &str) -> anyhow::Result<Self> {
        PRESETS
            .iter()
            .find(|p| p.name == name)
            .copied()
            .ok_or_else(|| {
                let names: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
                anyhow::anyhow!("unknown preset {name:?}; built in: {}", names.join(", "))
            })
    }

    /// Time between two frames.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.fps
    }

    /// Payload bitrate of one copy of the stream, in Mbps.
    pub fn mbps(&self) -> f64 {
        (self.fps as f64 * self.frame_bytes as f64 * 8.0) / 1e6
    }
}
