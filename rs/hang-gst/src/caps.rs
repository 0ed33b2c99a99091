//! Caps ↔ catalog: what `hangsink` accepts and how each elementary stream becomes a hang
//! rendition ([`Stream`]), and the caps `hangsrc` gives a rendition ([`video_caps`],
//! [`audio_caps`]). Pure functions over caps and bytes, tested without a pipeline.

use bytes::{BufMut, Bytes, BytesMut};
use hang::catalog::{AudioConfig, VideoConfig};

/// The caps a `hangsink` pad accepts.
pub fn sink_caps() -> gst::Caps {
    let mut caps = gst::Caps::new_empty();
    {
        let caps = caps.get_mut().expect("a new caps is writable");
        caps.append(
            gst::Caps::builder("video/x-h264")
                .field("stream-format", gst::List::new(["byte-stream", "avc"]))
                .field("alignment", "au")
                .build(),
        );
        caps.append(
            gst::Caps::builder("video/x-h265")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        );
        caps.append(
            gst::Caps::builder("video/x-av1")
                .field("stream-format", "obu-stream")
                .field("alignment", "tu")
                .build(),
        );
        caps.append(gst::Caps::builder("video/x-vp8").build());
        caps.append(gst::Caps::builder("video/x-vp9").build());
        caps.append(gst::Caps::builder("audio/x-opus").build());
        caps.append(
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .build(),
        );
    }
    caps
}

/// The elementary stream formats `hangsink` publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// H.264 Annex-B access units: published as `avc3` with parameter sets in band.
    H264AnnexB,
    /// H.264 length-prefixed access units with an avcC: published as `avc1` with a description.
    H264Avc,
    /// H.265 Annex-B access units: `hev1` with parameter sets in band.
    H265AnnexB,
    /// AV1 temporal units (low-overhead OBUs).
    Av1,
    /// VP8 frames.
    Vp8,
    /// VP9 frames.
    Vp9,
    /// Opus packets.
    Opus,
    /// Raw AAC frames with an AudioSpecificConfig.
    Aac,
}

impl Format {
    /// Audio formats are published as audio renditions (a group per frame).
    pub fn is_audio(self) -> bool {
        matches!(self, Format::Opus | Format::Aac)
    }
}

/// A rendition's catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Config {
    /// A video rendition.
    Video(VideoConfig),
    /// An audio rendition.
    Audio(AudioConfig),
}

/// One `hangsink` pad's stream: its format from the caps, the catalog entry once the bitstream
/// has told the codec string, and the parameter sets to repeat in front of keyframes.
#[derive(Debug)]
pub struct Stream {
    format: Format,
    width: Option<u32>,
    height: Option<u32>,
    framerate: Option<f64>,
    rate: u32,
    channels: u32,
    codec_data: Option<Bytes>,
    config: Option<Config>,
    /// The newest VPS/SPS/PPS seen (Annex-B formats), by NAL type.
    params: Vec<(u8, Bytes)>,
}

impl Stream {
    /// Read the format from negotiated caps; an error says what is missing or unsupported.
    pub fn from_caps(caps: &gst::CapsRef) -> Result<Self, String> {
        let s = caps.structure(0).ok_or("empty caps")?;
        let string = |field: &str| s.get::<String>(field).ok();
        let format = match s.name().as_str() {
            "video/x-h264" => match string("stream-format").as_deref() {
                Some("avc") => Format::H264Avc,
                Some("byte-stream") | None => Format::H264AnnexB,
                Some(other) => return Err(format!("H.264 stream-format {other} is not supported")),
            },
            "video/x-h265" => Format::H265AnnexB,
            "video/x-av1" => Format::Av1,
            "video/x-vp8" => Format::Vp8,
            "video/x-vp9" => Format::Vp9,
            "audio/x-opus" => Format::Opus,
            "audio/mpeg" => Format::Aac,
            other => return Err(format!("{other} is not supported")),
        };
        let codec_data = s
            .get::<gst::Buffer>("codec_data")
            .ok()
            .and_then(|b| b.map_readable().ok().map(|m| Bytes::copy_from_slice(&m)));
        let framerate = s
            .get::<gst::Fraction>("framerate")
            .ok()
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map(|f| f.numer() as f64 / f.denom() as f64);
        let positive = |field: &str| {
            s.get::<i32>(field)
                .ok()
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
        };
        let mut stream = Self {
            format,
            width: positive("width"),
            height: positive("height"),
            framerate,
            rate: positive("rate").unwrap_or(48_000),
            channels: positive("channels").unwrap_or(2),
            codec_data,
            config: None,
            params: Vec::new(),
        };
        stream.config = stream.config_from_caps()?;
        Ok(stream)
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The catalog entry, once known (some formats need their first keyframe).
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// The entry the caps alone decide; `None` when it waits for the bitstream.
    fn config_from_caps(&self) -> Result<Option<Config>, String> {
        let config = match self.format {
            Format::H264Avc => {
                let avcc = self
                    .codec_data
                    .as_ref()
                    .ok_or("H.264 avc caps without codec_data")?;
                if avcc.len() < 4 {
                    return Err("H.264 codec_data too short".into());
                }
                let codec = format!("avc1.{:02x}{:02x}{:02x}", avcc[1], avcc[2], avcc[3]);
                Some(self.video(codec, Some(avcc.clone())))
            }
            Format::Vp8 => Some(self.video("vp8".into(), None)),
            Format::Av1 => self
                .codec_data
                .as_deref()
                .and_then(hang::bitstream::av1_codec_from_av1c)
                .map(|codec| self.video(codec, None)),
            Format::Opus => Some(Config::Audio(AudioConfig {
                codec: "opus".into(),
                sample_rate: self.rate,
                number_of_channels: self.channels,
                ..Default::default()
            })),
            Format::Aac => {
                let asc = match &self.codec_data {
                    Some(asc) => asc.clone(),
                    None => hang::bitstream::aac_config(self.rate, self.channels)
                        .ok_or("AAC caps without codec_data")?,
                };
                let codec = hang::bitstream::aac_codec(&asc).ok_or("invalid AAC codec_data")?;
                Some(Config::Audio(AudioConfig {
                    codec,
                    sample_rate: self.rate,
                    number_of_channels: self.channels,
                    description: Some(asc),
                    ..Default::default()
                }))
            }
            Format::H264AnnexB | Format::H265AnnexB | Format::Vp9 => None,
        };
        Ok(config)
    }

    fn video(&self, codec: String, description: Option<Bytes>) -> Config {
        Config::Video(VideoConfig {
            codec,
            description,
            coded_width: self.width,
            coded_height: self.height,
            framerate: self.framerate,
            optimize_for_latency: Some(true),
            ..Default::default()
        })
    }

    /// Turn one buffer into a hang frame at `timestamp` (µs). `delta_unit` is the buffer's
    /// DELTA_UNIT flag, used where the bitstream does not say (AV1, VP8, VP9 frames are read
    /// from it when possible). Returns `None` for a buffer to drop: video before the first
    /// keyframe, or before the codec is known.
    pub fn frame(
        &mut self,
        payload: Bytes,
        timestamp: u64,
        delta_unit: bool,
    ) -> Option<hang::Frame> {
        let keyframe = match self.format {
            Format::H264AnnexB | Format::H265AnnexB => self.remember_params(&payload),
            Format::H264Avc => {
                avcc_has_idr(&payload, self.codec_data.as_deref()).unwrap_or(!delta_unit)
            }
            Format::Vp8 => payload.first().map_or(!delta_unit, |b| b & 1 == 0),
            Format::Vp9 | Format::Av1 => !delta_unit,
            Format::Opus | Format::Aac => true,
        };
        if self.config.is_none() {
            if !keyframe {
                return None;
            }
            let codec = match self.format {
                Format::H264AnnexB => self
                    .param(7)
                    .and_then(|sps| hang::bitstream::h264_codec(&sps)),
                Format::H265AnnexB => self
                    .param(33)
                    .and_then(|sps| hang::bitstream::h265_codec(&sps)),
                Format::Vp9 => hang::bitstream::vp9_codec(&payload),
                Format::Av1 => hang::bitstream::av1_codec(&payload),
                _ => None,
            }?;
            self.config = Some(self.video(codec, None));
        }
        let payload = match self.format {
            Format::H264AnnexB | Format::H265AnnexB if keyframe => self.with_params(payload),
            _ => payload,
        };
        Some(hang::Frame {
            timestamp,
            keyframe,
            payload,
        })
    }

    /// Remember the parameter sets of an Annex-B access unit; whether it is a keyframe (IDR for
    /// H.264, IRAP for H.265).
    fn remember_params(&mut self, au: &[u8]) -> bool {
        let h265 = self.format == Format::H265AnnexB;
        let mut keyframe = false;
        for nal in hang::annexb::nal_units(au) {
            let kind = if h265 {
                (nal[0] >> 1) & 0x3f
            } else {
                nal[0] & 0x1f
            };
            let is_param = if h265 {
                (32..=34).contains(&kind)
            } else {
                kind == 7 || kind == 8
            };
            keyframe |= if h265 {
                (16..=21).contains(&kind)
            } else {
                kind == 5
            };
            if is_param {
                let nal = Bytes::copy_from_slice(nal);
                match self.params.iter_mut().find(|(k, _)| *k == kind) {
                    Some(slot) => slot.1 = nal,
                    None => self.params.push((kind, nal)),
                }
            }
        }
        keyframe
    }

    fn param(&self, kind: u8) -> Option<Bytes> {
        self.params
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, nal)| nal.clone())
    }

    /// A keyframe access unit with the remembered parameter sets in front, unless it has its own:
    /// every group must be decodable on its own (a viewer joins at any group).
    fn with_params(&self, au: Bytes) -> Bytes {
        let h265 = self.format == Format::H265AnnexB;
        let has_sps = hang::annexb::nal_units(&au).any(|nal| {
            if h265 {
                (nal[0] >> 1) & 0x3f == 33
            } else {
                nal[0] & 0x1f == 7
            }
        });
        if has_sps || self.params.is_empty() {
            return au;
        }
        let mut out = BytesMut::with_capacity(au.len() + 128);
        let mut params = self.params.clone();
        params.sort_by_key(|(kind, _)| *kind); // VPS, SPS, PPS (H.265: 32..34; H.264: 7, 8)
        for (_, nal) in params {
            out.put_slice(&[0, 0, 0, 1]);
            out.put_slice(&nal);
        }
        out.put_slice(&au);
        out.freeze()
    }
}

/// Whether a length-prefixed H.264 access unit holds an IDR slice (`None` if it cannot be
/// parsed). The length size comes from the avcC (default 4).
fn avcc_has_idr(au: &[u8], avcc: Option<&[u8]>) -> Option<bool> {
    let size = avcc
        .and_then(|a| a.get(4))
        .map_or(4, |b| usize::from(b & 3) + 1);
    let mut rest = au;
    while !rest.is_empty() {
        let (len, body) = (rest.get(..size)?, &rest[size..]);
        let len = len.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
        let nal = body.get(..len)?;
        if nal.first().is_some_and(|b| b & 0x1f == 5) {
            return Some(true);
        }
        rest = &body[len..];
    }
    Some(false)
}

/// The caps of a video rendition for `hangsrc` (`None`: a codec GStreamer has no caps for here).
pub fn video_caps(
    codec: &str,
    description: Option<&Bytes>,
    config: &VideoConfig,
) -> Option<gst::Caps> {
    let prefix = codec.split('.').next().unwrap_or_default();
    let mut builder = match prefix {
        "avc1" | "avc3" => {
            let b = gst::Caps::builder("video/x-h264").field("alignment", "au");
            match description {
                Some(avcc) => b
                    .field("stream-format", "avc")
                    .field("codec_data", gst::Buffer::from_slice(avcc.clone())),
                None => b.field("stream-format", "byte-stream"),
            }
        }
        "hvc1" | "hev1" => {
            let b = gst::Caps::builder("video/x-h265").field("alignment", "au");
            match description {
                Some(hvcc) => b
                    .field("stream-format", prefix)
                    .field("codec_data", gst::Buffer::from_slice(hvcc.clone())),
                None => b.field("stream-format", "byte-stream"),
            }
        }
        "vp8" => gst::Caps::builder("video/x-vp8"),
        "vp09" => gst::Caps::builder("video/x-vp9"),
        "av01" => gst::Caps::builder("video/x-av1")
            .field("stream-format", "obu-stream")
            .field("alignment", "tu"),
        _ => return None,
    };
    let dimension = |v: Option<u32>| v.and_then(|v| i32::try_from(v).ok()).filter(|v| *v > 0);
    if let (Some(w), Some(h)) = (
        dimension(config.coded_width),
        dimension(config.coded_height),
    ) {
        builder = builder.field("width", w).field("height", h);
    }
    if let Some(fps) = config
        .framerate
        .filter(|f| f.is_finite() && *f > 0.0 && *f < 1000.0)
    {
        let fraction = gst::Fraction::approximate_f64(fps).unwrap_or(gst::Fraction::new(30, 1));
        builder = builder.field("framerate", fraction);
    }
    Some(builder.build())
}

/// The caps of an audio rendition for `hangsrc` (`None`: unsupported codec or an invalid config).
pub fn audio_caps(
    codec: &str,
    description: Option<&Bytes>,
    config: &AudioConfig,
) -> Option<gst::Caps> {
    let rate = i32::try_from(config.sample_rate).ok().filter(|r| *r > 0)?;
    let channels = i32::try_from(config.number_of_channels)
        .ok()
        .filter(|c| (1..=8).contains(c))?;
    if codec == "opus" {
        // Mapping family 0 covers mono and stereo; more channels need the publisher's mapping.
        if channels > 2 {
            return None;
        }
        return Some(
            gst::Caps::builder("audio/x-opus")
                .field("channel-mapping-family", 0i32)
                .field("rate", rate)
                .field("channels", channels)
                .build(),
        );
    }
    if codec.starts_with("mp4a.40.") {
        let asc = match description {
            Some(asc) => asc.clone(),
            None => hang::bitstream::aac_config(config.sample_rate, config.number_of_channels)?,
        };
        return Some(
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .field("codec_data", gst::Buffer::from_slice(asc))
                .field("rate", rate)
                .field("channels", channels)
                .build(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().unwrap();
    }

    /// An x264 Baseline SPS/PPS and an IDR slice, Annex-B.
    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8];
    const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

    fn annexb(nals: &[&[u8]]) -> Bytes {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        out.into()
    }

    #[test]
    fn h264_byte_stream_waits_for_a_keyframe_and_repeats_parameter_sets() {
        init();
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .field("width", 640i32)
            .field("height", 360i32)
            .field("framerate", gst::Fraction::new(30, 1))
            .build();
        let mut stream = Stream::from_caps(&caps).unwrap();
        assert!(stream.config().is_none());
        assert!(
            stream.frame(annexb(&[&[0x41, 0x9a]]), 0, true).is_none(),
            "a P frame before any keyframe"
        );
        let key = stream
            .frame(annexb(&[SPS, PPS, &[0x65, 0x88]]), 33_333, false)
            .unwrap();
        assert!(key.keyframe);
        let Some(Config::Video(video)) = stream.config() else {
            panic!("no video config")
        };
        assert_eq!(video.codec, "avc3.42c01e");
        assert_eq!(
            (video.coded_width, video.coded_height, video.framerate),
            (Some(640), Some(360), Some(30.0))
        );
        let delta = stream
            .frame(annexb(&[&[0x41, 0x9a]]), 66_666, false)
            .unwrap();
        assert!(
            !delta.keyframe,
            "the bitstream decides, not a missing DELTA_UNIT flag"
        );
        // A later IDR without its parameter sets gets them in front.
        let key = stream
            .frame(annexb(&[&[0x65, 0x88]]), 100_000, false)
            .unwrap();
        assert_eq!(key.payload, annexb(&[SPS, PPS, &[0x65, 0x88]]));
    }

    #[test]
    fn h264_avc_uses_codec_data() {
        init();
        let avcc = [1u8, 0x64, 0x00, 0x1f, 0xff, 0xe1];
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .field("alignment", "au")
            .field("codec_data", gst::Buffer::from_slice(avcc))
            .build();
        let mut stream = Stream::from_caps(&caps).unwrap();
        let Some(Config::Video(video)) = stream.config() else {
            panic!("no config")
        };
        assert_eq!(video.codec, "avc1.64001f");
        assert_eq!(video.description.as_deref(), Some(&avcc[..]));
        let idr = stream
            .frame(Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]), 0, true)
            .unwrap();
        assert!(idr.keyframe);
        let p = stream
            .frame(Bytes::from_static(&[0, 0, 0, 2, 0x41, 0x88]), 1, false)
            .unwrap();
        assert!(!p.keyframe);
    }

    #[test]
    fn audio_and_refusals() {
        init();
        let opus = gst::Caps::builder("audio/x-opus")
            .field("rate", 48000i32)
            .field("channels", 1i32)
            .build();
        let mut stream = Stream::from_caps(&opus).unwrap();
        let Some(Config::Audio(audio)) = stream.config().cloned() else {
            panic!("no config")
        };
        assert_eq!(
            (
                audio.codec.as_str(),
                audio.sample_rate,
                audio.number_of_channels
            ),
            ("opus", 48000, 1)
        );
        assert!(
            stream
                .frame(Bytes::from_static(b"x"), 20_000, true)
                .unwrap()
                .keyframe
        );

        let aac = gst::Caps::builder("audio/mpeg")
            .field("mpegversion", 4i32)
            .field("stream-format", "raw")
            .field("codec_data", gst::Buffer::from_slice([0x12u8, 0x10]))
            .field("rate", 44100i32)
            .field("channels", 2i32)
            .build();
        let Some(Config::Audio(audio)) = Stream::from_caps(&aac).unwrap().config().cloned() else {
            panic!()
        };
        assert_eq!(audio.codec, "mp4a.40.2");
        assert_eq!(audio.description.as_deref(), Some(&[0x12, 0x10][..]));

        let raw = gst::Caps::builder("video/x-raw").build();
        assert!(Stream::from_caps(&raw).is_err());
        let avc_without_data = gst::Caps::builder("video/x-h264")
            .field("stream-format", "avc")
            .build();
        assert!(Stream::from_caps(&avc_without_data).is_err());
    }

    #[test]
    fn src_caps_follow_the_catalog() {
        init();
        let config = VideoConfig {
            codec: "avc1.64001f".into(),
            coded_width: Some(1280),
            coded_height: Some(720),
            framerate: Some(30.0),
            ..Default::default()
        };
        let avcc = Bytes::from_static(&[1, 0x64, 0, 0x1f]);
        let caps = video_caps(&config.codec, Some(&avcc), &config).unwrap();
        let s = caps.structure(0).unwrap();
        assert_eq!(s.get::<&str>("stream-format").unwrap(), "avc");
        assert_eq!(s.get::<i32>("width").unwrap(), 1280);
        let caps = video_caps("avc3.42c01e", None, &config).unwrap();
        assert_eq!(
            caps.structure(0)
                .unwrap()
                .get::<&str>("stream-format")
                .unwrap(),
            "byte-stream"
        );
        assert!(video_caps("unknown", None, &config).is_none());
        for codec in ["vp8", "vp09.00.10.08", "av01.0.08M.08", "hev1.1.6.L93.B0"] {
            assert!(video_caps(codec, None, &config).is_some(), "{codec}");
        }

        let audio = AudioConfig {
            codec: "opus".into(),
            sample_rate: 48000,
            number_of_channels: 2,
            ..Default::default()
        };
        assert!(audio_caps("opus", None, &audio)
            .unwrap()
            .structure(0)
            .unwrap()
            .has_name("audio/x-opus"));
        let aac = audio_caps(
            "mp4a.40.2",
            None,
            &AudioConfig {
                sample_rate: 44100,
                number_of_channels: 2,
                ..audio.clone()
            },
        )
        .unwrap();
        assert!(aac
            .structure(0)
            .unwrap()
            .get::<gst::Buffer>("codec_data")
            .is_ok());
        assert!(audio_caps(
            "opus",
            None,
            &AudioConfig {
                number_of_channels: 0,
                ..audio
            }
        )
        .is_none());
    }

    #[test]
    fn sink_caps_parse() {
        init();
        assert_eq!(sink_caps().size(), 7);
    }
}
