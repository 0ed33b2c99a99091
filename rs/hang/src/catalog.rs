//! The catalog (spec §12.2): a JSON document describing a broadcast's renditions, published on the
//! `catalog.json` track as one group per version, one frame per group.
//!
//! Every object keeps the keys it does not know in an `extra` map and writes them back, so a
//! catalog from a newer publisher (or the public reference, with its `user`, `chat`, `preview`,
//! `priority`, ... sections) survives a parse/serialize round trip. A rendition whose container
//! kind is unknown is kept as [`Container::Unknown`]; consumers skip it and use the rest.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Name of the catalog track in a hang broadcast.
pub const TRACK: &str = "catalog.json";

/// Subscriber (and publisher) priority of the catalog track: above every media track.
pub const PRIORITY: u8 = 100;

/// Largest catalog accepted, in bytes of JSON.
pub const MAX_CATALOG_SIZE: usize = 1024 * 1024;

/// What can go wrong reading or writing a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Larger than [`MAX_CATALOG_SIZE`].
    #[error("catalog of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// Not JSON, or JSON that does not follow the schema.
    #[error("invalid catalog: {0}")]
    Json(#[from] serde_json::Error),
}

/// The root of a catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// Video renditions and how to display them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<Video>,
    /// Audio renditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Audio>,
    /// Sections this crate does not interpret (`user`, `chat`, `scte35`, ...), kept as they came.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Seconds from the Unix epoch to 2020-01-01T00:00:00Z, the origin of the catalog `clock`.
const EPOCH_2020: u64 = 1_577_836_800;

/// Microseconds since 2020-01-01T00:00:00Z now (the unit of the catalog's `clock.wall`).
pub fn wall_now_us() -> u64 {
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (since_unix.as_micros() as u64).saturating_sub(EPOCH_2020 * 1_000_000)
}

/// How far (µs) the wall clock is now past media time `timestamp` of a broadcast whose media
/// time 0 was at `wall_at_zero_us` (µs since 2020; negative: not yet). Both come from the
/// publisher, so the arithmetic saturates instead of overflowing.
pub fn age_us(wall_at_zero_us: u64, timestamp: u64) -> i64 {
    let shown = i128::from(wall_at_zero_us) + i128::from(timestamp);
    let age = i128::from(wall_now_us()) - shown;
    age.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl Catalog {
    /// Anchor media time to the wall clock, as the reference does: root section
    /// `"clock": {"wall": <µs since 2020-01-01 at pts 0>, "timescale": 1000000}`. Viewers use it to
    /// measure end-to-end latency.
    pub fn set_clock(&mut self, wall_at_zero_us: u64) {
        let clock = serde_json::json!({ "wall": wall_at_zero_us, "timescale": 1_000_000 });
        self.extra.insert("clock".to_string(), clock);
    }

    /// The wall-clock time of pts 0 in µs since 2020-01-01, if the publisher anchored it.
    pub fn clock(&self) -> Option<u64> {
        let clock = self.extra.get("clock")?;
        let wall = clock.get("wall")?.as_u64()?;
        let timescale = clock
            .get("timescale")
            .and_then(Value::as_u64)
            .unwrap_or(1_000_000);
        (timescale != 0).then(|| (wall as u128 * 1_000_000 / timescale as u128) as u64)
    }

    /// Parse a catalog frame.
    pub fn from_slice(json: &[u8]) -> Result<Self, CatalogError> {
        if json.len() > MAX_CATALOG_SIZE {
            return Err(CatalogError::TooLarge(json.len()));
        }
        Ok(serde_json::from_slice(json)?)
    }

    /// The JSON form of the catalog, as published.
    pub fn to_bytes(&self) -> Result<Bytes, CatalogError> {
        let json = serde_json::to_vec(self)?;
        if json.len() > MAX_CATALOG_SIZE {
            return Err(CatalogError::TooLarge(json.len()));
        }
        Ok(json.into())
    }

    /// Every video rendition a consumer can use: the ones whose container is known.
    pub fn video_renditions(&self) -> impl Iterator<Item = (&String, &VideoConfig)> {
        self.video
            .iter()
            .flat_map(|v| v.renditions.iter())
            .filter(|(_, c)| !matches!(c.container, Container::Unknown(_)))
    }

    /// Every audio rendition a consumer can use: the ones whose container is known.
    pub fn audio_renditions(&self) -> impl Iterator<Item = (&String, &AudioConfig)> {
        self.audio
            .iter()
            .flat_map(|a| a.renditions.iter())
            .filter(|(_, c)| !matches!(c.container, Container::Unknown(_)))
    }
}

/// The `video` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Video {
    /// Renditions by track name (a map, not an array, so JSON Merge Patch can update one).
    #[serde(default)]
    pub renditions: BTreeMap<String, VideoConfig>,
    /// Render size in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<Display>,
    /// Clockwise rotation in degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<f64>,
    /// Mirror horizontally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip: Option<bool>,
    /// Keys this crate does not interpret (e.g. the reference's `priority`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `audio` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Audio {
    /// Renditions by track name.
    #[serde(default)]
    pub renditions: BTreeMap<String, AudioConfig>,
    /// Keys this crate does not interpret.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A render size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Display {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Keys this crate does not interpret.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One video rendition: a WebCodecs `VideoDecoderConfig` subset plus hang extensions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoConfig {
    /// WebCodecs codec string, e.g. `avc1.64001f`, `hvc1.1.6.L93.B0`, `vp09.00.10.08`, `av01.0.04M.08`.
    pub codec: String,
    /// Decoder configuration record (avcC/hvcC body). Present: payloads are length-prefixed (AVCC);
    /// absent: parameter sets are in band and payloads are Annex-B. Lowercase hex on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_bytes")]
    pub description: Option<Bytes>,
    /// Coded width in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coded_width: Option<u32>,
    /// Coded height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coded_height: Option<u32>,
    /// Display aspect ratio, width part (with [`Self::display_aspect_height`]). The Rust reference
    /// writes `displayRatioWidth`, which is accepted too.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "displayRatioWidth"
    )]
    pub display_aspect_width: Option<u32>,
    /// Display aspect ratio, height part.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "displayRatioHeight"
    )]
    pub display_aspect_height: Option<u32>,
    /// Bits per second, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    /// Frames per second, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framerate: Option<f64>,
    /// Ask the decoder to favour latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimize_for_latency: Option<bool>,
    /// The publisher has stopped sending this rendition for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled: Option<bool>,
    /// How frames are framed on the track.
    #[serde(default)]
    pub container: Container,
    /// Largest delay in milliseconds before a frame is flushed (size the jitter buffer above it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u64>,
    /// A timeline track for seeking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// The broadcast holding the track, relative to this one, when it is not this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<String>,
    /// Keys this crate does not interpret.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One audio rendition: a WebCodecs `AudioDecoderConfig` subset plus hang extensions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioConfig {
    /// WebCodecs codec string: `opus`, `mp4a.40.2`, `pcm`, ...
    pub codec: String,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channel count.
    pub number_of_channels: u32,
    /// Bits per second, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u64>,
    /// Decoder configuration (AAC: the AudioSpecificConfig). Lowercase hex on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_bytes")]
    pub description: Option<Bytes>,
    /// How frames are framed on the track.
    #[serde(default)]
    pub container: Container,
    /// Largest delay in milliseconds before a frame is flushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u64>,
    /// A timeline track for seeking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// The broadcast holding the track, relative to this one, when it is not this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<String>,
    /// Keys this crate does not interpret.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A rendition's timeline track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    /// Track name of the timeline.
    pub track: String,
    /// Units per second of `pts` in the timeline records (default 1000).
    #[serde(default = "default_timeline_scale")]
    pub timescale: u32,
    /// Wall-clock anchor of pts 0, in timescale units since 2020-01-01T00:00:00Z.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall: Option<u64>,
    /// Keys this crate does not interpret.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_timeline_scale() -> u32 {
    1000
}

/// How a rendition's frames are framed on its track (`{"kind": ...}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Container {
    /// Varint microsecond timestamp + codec payload (see [`crate::container`]). The default.
    #[default]
    Legacy,
    /// Each frame is a `moof`+`mdat` fragment; `init` is the base64 `ftyp`+`moov`.
    Cmaf {
        /// The init segment.
        init: Bytes,
    },
    /// LOC properties + codec payload.
    Loc,
    /// A kind this crate does not know, kept verbatim; the rendition is to be ignored.
    Unknown(Value),
}

impl Serialize for Container {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        let value = match self {
            Self::Legacy => serde_json::json!({"kind": "legacy"}),
            Self::Loc => serde_json::json!({"kind": "loc"}),
            Self::Cmaf { init } => serde_json::json!({
                "kind": "cmaf",
                "init": base64::engine::general_purpose::STANDARD.encode(init),
            }),
            Self::Unknown(value) => value.clone(),
        };
        value.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Container {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        let value = Value::deserialize(d)?;
        let container = match value.get("kind").and_then(Value::as_str) {
            Some("legacy") => Self::Legacy,
            Some("loc") => Self::Loc,
            Some("cmaf") => {
                let init = value
                    .get("init")
                    .and_then(Value::as_str)
                    .ok_or_else(|| serde::de::Error::missing_field("init"))?;
                let init = base64::engine::general_purpose::STANDARD
                    .decode(init)
                    .map_err(serde::de::Error::custom)?;
                Self::Cmaf { init: init.into() }
            }
            _ => Self::Unknown(value),
        };
        Ok(container)
    }
}

/// `Option<Bytes>` as a hex string: written lowercase, read in either case.
mod hex_bytes {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&hex::encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        Ok(Some(bytes.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's example (§12.2), as the reference publishes Big Buck Bunny.
    const BBB: &str = r#"{"video":{"renditions":{"video0":{"codec":"avc1.64001f","description":"0164001fffe1","codedWidth":1280,
 "codedHeight":720,"container":{"kind":"legacy"}}}},
 "audio":{"renditions":{"audio1":{"codec":"mp4a.40.2","sampleRate":44100,"numberOfChannels":2,
 "bitrate":283637,"container":{"kind":"legacy"}}}}}"#;

    #[test]
    fn age_saturates_on_hostile_clock_values() {
        let now = wall_now_us();
        let age = age_us(now - 2_000_000, 1_000_000);
        assert!((1_000_000..1_500_000).contains(&age), "{age}");
        assert!(age_us(now + 5_000_000, 0) < 0);
        assert_eq!(age_us(u64::MAX, u64::MAX), i64::MIN);
        assert!(age_us(0, 0) >= now as i64);
    }

    #[test]
    fn clock_anchor_round_trips_and_reads_the_reference_form() {
        let mut catalog = Catalog::default();
        assert_eq!(catalog.clock(), None);
        catalog.set_clock(217_972_857_457_756);
        assert_eq!(catalog.clock(), Some(217_972_857_457_756));
        let reference: Catalog =
            serde_json::from_str(r#"{"clock":{"wall":217972857457,"timescale":1000}}"#).unwrap();
        assert_eq!(reference.clock(), Some(217_972_857_457_000));
        assert!(wall_now_us() > 217_972_857_457_756);
    }

    #[test]
    fn parses_the_spec_example() {
        let catalog = Catalog::from_slice(BBB.as_bytes()).unwrap();
        let video = &catalog.video.as_ref().unwrap().renditions["video0"];
        assert_eq!(video.codec, "avc1.64001f");
        assert_eq!(video.coded_width, Some(1280));
        assert_eq!(
            video.description.as_deref(),
            Some(&[0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1][..])
        );
        let audio = &catalog.audio.as_ref().unwrap().renditions["audio1"];
        assert_eq!(
            (audio.sample_rate, audio.number_of_channels, audio.bitrate),
            (44100, 2, Some(283637))
        );
        let again: Value = serde_json::from_slice(&catalog.to_bytes().unwrap()).unwrap();
        assert_eq!(again, serde_json::from_str::<Value>(BBB).unwrap());
    }

    /// What the reference's Rust and JS publishers add around the spec's fields survives.
    #[test]
    fn unknown_keys_round_trip() {
        let json = serde_json::json!({
            "video": {
                "renditions": {"v": {"codec": "vp8", "container": {"kind": "legacy"},
                    "futureField": [1, 2], "timeline": {"track": "v.timeline.z", "timescale": 1000, "x": 1}}},
                "priority": 1,
                "display": {"width": 640, "height": 360},
                "rotation": 90.0, "flip": true
            },
            "audio": {"renditions": {}, "priority": 2},
            "user": {"id": "", "name": "alice", "avatar": "a.png", "color": ""},
            "chat": {"message": {"name": "chat.md", "priority": 0}},
            "preview": {"name": "preview.json", "priority": 10},
        });
        let catalog: Catalog = serde_json::from_value(json.clone()).unwrap();
        assert!(catalog.extra.contains_key("user"));
        let again: Value = serde_json::from_slice(&catalog.to_bytes().unwrap()).unwrap();
        assert_eq!(again, json);
    }

    #[test]
    fn unknown_container_kind_is_kept_and_skipped() {
        let json = serde_json::json!({"video": {"renditions": {
            "a": {"codec": "vp8", "container": {"kind": "future", "param": 3}},
            "b": {"codec": "vp8"},
            "c": {"codec": "vp8", "container": {"kind": "cmaf", "init": "AAAACGZyZWU="}},
        }}});
        let catalog: Catalog = serde_json::from_value(json).unwrap();
        let usable: Vec<_> = catalog
            .video_renditions()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(usable, ["b", "c"]);
        let renditions = &catalog.video.as_ref().unwrap().renditions;
        assert_eq!(renditions["b"].container, Container::Legacy);
        assert_eq!(
            renditions["c"].container,
            Container::Cmaf {
                init: Bytes::from_static(b"\0\0\0\x08free")
            }
        );
        let again: Value = serde_json::from_slice(&catalog.to_bytes().unwrap()).unwrap();
        assert_eq!(again["video"]["renditions"]["a"]["container"]["param"], 3);
        assert_eq!(
            again["video"]["renditions"]["b"]["container"]["kind"],
            "legacy"
        );
    }

    #[test]
    fn description_accepts_uppercase_and_the_reference_aspect_keys() {
        let json = r#"{"video":{"renditions":{"v":{"codec":"avc1.64001f","description":"01AB",
            "displayRatioWidth":16,"displayRatioHeight":9}}}}"#;
        let catalog = Catalog::from_slice(json.as_bytes()).unwrap();
        let v = &catalog.video.as_ref().unwrap().renditions["v"];
        assert_eq!(v.description.as_deref(), Some(&[0x01, 0xab][..]));
        assert_eq!(
            (v.display_aspect_width, v.display_aspect_height),
            (Some(16), Some(9))
        );
        let text = String::from_utf8(catalog.to_bytes().unwrap().to_vec()).unwrap();
        assert!(text.contains(r#""description":"01ab""#), "{text}");
        assert!(text.contains(r#""displayAspectWidth":16"#), "{text}");
    }

    #[test]
    fn rejects_garbage_and_oversize() {
        assert!(Catalog::from_slice(b"{").is_err());
        assert!(Catalog::from_slice(br#"{"video":{"renditions":{"v":{}}}}"#).is_err());
        assert!(matches!(
            Catalog::from_slice(&vec![b' '; MAX_CATALOG_SIZE + 1]),
            Err(CatalogError::TooLarge(_))
        ));
        assert_eq!(Catalog::from_slice(b"{}").unwrap(), Catalog::default());
    }
}
