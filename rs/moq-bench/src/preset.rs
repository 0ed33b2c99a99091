//! Workload shapes, as TOML: the built-in ones (`presets.toml`, embedded) and user files.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// The built-in presets, in the same format as a `--preset-file`.
pub const BUILTIN: &str = include_str!("../presets.toml");

/// Bytes at the start of every payload: send time (µs since the Unix epoch) and sequence number,
/// both big-endian u64.
pub const HEADER_LEN: usize = 16;

/// One publisher's workload: how often it writes, how big, how frames fill groups, and how
/// often broadcasts come and go.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Its name on the command line.
    pub name: String,
    /// Free text for `moq-bench presets`.
    #[serde(default)]
    pub description: String,
    /// Frames written per second; 0 = no frames (announce-only).
    #[serde(default)]
    pub fps: u32,
    /// Payload bytes per frame (raised to [`HEADER_LEN`] if smaller).
    #[serde(default)]
    pub frame_bytes: usize,
    /// Frames per group: a new group (a new QUIC stream) every this many frames.
    #[serde(default = "one")]
    pub frames_per_group: u64,
    /// Broadcasts started per second (announce churn); 0 = none.
    #[serde(default)]
    pub announce_rate: f64,
    /// Seconds each churn broadcast lives before it ends.
    #[serde(default = "default_lifetime")]
    pub announce_lifetime: f64,
}

fn one() -> u64 {
    1
}

fn default_lifetime() -> f64 {
    2.0
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    preset: Vec<Preset>,
}

/// Parse presets from TOML text (`[[preset]]` tables) and check each one.
pub fn parse(text: &str) -> anyhow::Result<Vec<Preset>> {
    let file: File = toml::from_str(text)?;
    for preset in &file.preset {
        preset
            .validate()
            .with_context(|| format!("preset {:?}", preset.name))?;
    }
    Ok(file.preset)
}

/// The built-in presets, then those of `file` (which replace built-in ones of the same name).
pub fn load(file: Option<&Path>) -> anyhow::Result<Vec<Preset>> {
    let mut all = parse(BUILTIN).context("built-in presets")?;
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for preset in parse(&text).with_context(|| format!("in {}", file.display()))? {
            match all.iter_mut().find(|p| p.name == preset.name) {
                Some(old) => *old = preset,
                None => all.push(preset),
            }
        }
    }
    Ok(all)
}

/// The preset called `name` among `presets`.
pub fn find(presets: &[Preset], name: &str) -> anyhow::Result<Preset> {
    presets
        .iter()
        .find(|p| p.name == name)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<_> = presets.iter().map(|p| p.name.as_str()).collect();
            anyhow::anyhow!("unknown preset {name:?}; known: {}", names.join(", "))
        })
}

/// A table of `presets`, for `moq-bench presets`.
pub fn table(presets: &[Preset]) -> String {
    let mut out = format!(
        "{:<8} {:>4} {:>8} {:>6} {:>8} {:>8} {:>8}  description\n",
        "name", "fps", "bytes", "f/grp", "Mbps", "ann/s", "life s"
    );
    for p in presets {
        out += &format!(
            "{:<8} {:>4} {:>8} {:>6} {:>8.3} {:>8} {:>8}  {}\n",
            p.name,
            p.fps,
            p.frame_bytes,
            p.frames_per_group,
            p.mbps(),
            p.announce_rate,
            p.announce_lifetime,
            p.description
        );
    }
    out
}

impl Preset {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.name.is_empty(), "empty name");
        anyhow::ensure!(
            self.frames_per_group >= 1,
            "frames_per_group must be at least 1"
        );
        anyhow::ensure!(
            self.announce_rate >= 0.0 && self.announce_rate.is_finite(),
            "announce_rate must be >= 0"
        );
        anyhow::ensure!(
            self.announce_rate == 0.0 || self.announce_lifetime > 0.0,
            "announce_lifetime must be > 0"
        );
        anyhow::ensure!(
            self.fps > 0 || self.announce_rate > 0.0,
            "neither frames (fps) nor announce churn (announce_rate): nothing to measure"
        );
        anyhow::ensure!(
            self.fps == 0 || self.announce_rate == 0.0,
            "fps and announce_rate are exclusive (frames or announce churn, not both)"
        );
        Ok(())
    }

    /// True when the workload is announce churn only (no frames).
    pub fn churn_only(&self) -> bool {
        self.fps == 0
    }

    /// Payload bytes actually written per frame.
    pub fn payload_bytes(&self) -> usize {
        self.frame_bytes.max(HEADER_LEN)
    }

    /// Time between two frames.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(1) / self.fps.max(1)
    }

    /// Payload bitrate of one copy of the stream, in Mbps.
    pub fn mbps(&self) -> f64 {
        match self.fps {
            0 => 0.0,
            fps => (fps as f64 * self.payload_bytes() as f64 * 8.0) / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_are_complete() {
        let all = load(None).unwrap();
        let names: Vec<_> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["sd", "hd", "audio", "chat", "churn"]);
        let hd = find(&all, "hd").unwrap();
        assert!((hd.mbps() - 6.0).abs() < 0.01);
        assert!((find(&all, "sd").unwrap().mbps() - 3.0).abs() < 0.01);
        assert!(find(&all, "churn").unwrap().churn_only());
        assert!(find(&all, "nope").is_err());
    }

    #[test]
    fn user_file_adds_and_replaces() {
        let dir = std::env::temp_dir().join(format!("moq-bench-preset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("p.toml");
        std::fs::write(
            &file,
            "[[preset]]\nname = \"sd\"\nfps = 10\nframe_bytes = 1000\nframes_per_group = 5\n\
             [[preset]]\nname = \"mine\"\nfps = 1\n",
        )
        .unwrap();
        let all = load(Some(&file)).unwrap();
        assert_eq!(all.len(), 6);
        let sd = find(&all, "sd").unwrap();
        assert_eq!((sd.fps, sd.frames_per_group), (10, 5));
        assert_eq!(find(&all, "mine").unwrap().payload_bytes(), HEADER_LEN);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_presets_are_refused() {
        assert!(parse("[[preset]]\nname = \"x\"\n").is_err());
        assert!(parse("[[preset]]\nname = \"x\"\nfps = 1\nframes_per_group = 0\n").is_err());
        assert!(parse("[[preset]]\nname = \"x\"\nfps = 1\ntypo = 3\n").is_err());
        assert!(parse("[[preset]]\nname = \"x\"\nfps = 1\nannounce_rate = 1.0\n").is_err());
    }
}
