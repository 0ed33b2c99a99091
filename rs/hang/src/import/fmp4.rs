//! fMP4/CMAF import: `moov` → catalog and tracks, each `moof`+`mdat` → frames.
//!
//! Top-level boxes are framed here (so a size is checked against [`MAX_BOX_SIZE`] before a byte of
//! its body is buffered, and a box that extends "to the end of the file" is refused in a stream);
//! the boxes themselves are decoded with mp4-atom. Sample payloads are shared with the `mdat`, never
//! copied, and published as they are: length-prefixed NAL units for H.264/H.265 (the catalog carries
//! the avcC/hvcC as `description`), raw frames for AV1 (av1C as `description`), VP8, VP9, AAC
//! (AudioSpecificConfig as `description`) and Opus.
//!
//! # Timestamps and ffmpeg's repeated `tfdt`
//! Each sample's decode time is its fragment's `tfdt` plus the durations of the samples before it;
//! presentation time adds the `trun` composition offset; both are converted to microseconds.
//! With audio and video muxed together and `-movflags frag_every_frame`, ffmpeg 5.1 sometimes
//! flushes an audio fragment before it knows the sample's duration: that fragment has one sample
//! of duration 0 and a `tfdt` one frame too late, and the next fragment repeats the same `tfdt`
//! (e.g. 12480, **14400** (duration 0), 14400, 15360 for 960-sample Opus frames). The reference
//! importer rejects such a stream. This one repairs it:
//! - a fragment whose `tfdt` is not after the previous sample's decode time (a repeated or
//!   backwards `tfdt`) continues where the previous fragment ended;
//! - a one-sample fragment of duration 0 whose `tfdt` jumps past where the previous fragment ended
//!   is the mis-stamped one, and is placed where the previous fragment ended;
//! - a sample of duration 0 is taken to last as long as the track's previous non-zero sample
//!   (ffmpeg can emit two such fragments in a row: 139200, 141120 (0), 142080 (0), 142080, ...).
//!
//! So the streams above import as 12480, 13440, 14400, 15360 and 139200, 140160, 141120, 142080:
//! timestamps never go backwards and none is repeated. Gaps with real durations are kept.

use std::collections::{HashMap, HashSet};

use bytes::{Buf, Bytes, BytesMut};
use mp4_atom::{Atom, Codec, Decode, Moof, Moov, Trak};

use super::ImportError;
use crate::catalog::{AudioConfig, VideoConfig};
use crate::{codec, container, BroadcastProducer, Frame, Kind, TrackProducer};

/// Largest top-level box accepted (a whole-GoP fragment of high-bitrate video fits).
pub const MAX_BOX_SIZE: u64 = 128 * 1024 * 1024;

/// Most samples accepted in one track fragment.
pub const MAX_SAMPLES_PER_FRAGMENT: usize = 1 << 16;

/// Imports a fragmented MP4 stream into a hang broadcast.
///
/// The catalog is published once the init segment (`moov`) has been parsed, with one rendition
/// per audio or video track (other tracks are ignored).
#[derive(Debug)]
pub struct Fmp4Importer {
    broadcast: BroadcastProducer,
    tracks: HashMap<u32, Input>,
    ignored: HashSet<u32>,
    /// The raw `moov`, to recognise a repeated init segment.
    init: Option<Bytes>,
    /// The `moof` waiting for its `mdat`, and its size in bytes.
    moof: Option<(Moof, u64)>,
}

#[derive(Debug)]
struct Input {
    producer: TrackProducer,
    timescale: u64,
    /// `trex` defaults: duration, size, flags.
    defaults: (u32, u32, u32),
    /// Decode time of the last sample written, and where the next one is expected.
    last_dts: Option<u64>,
    next_dts: u64,
    /// The last non-zero sample duration, assumed for samples of duration 0.
    usual_duration: u64,
    /// Video: a keyframe has been written (leading non-keyframes are dropped).
    started: bool,
}

struct Sample {
    dts: u64,
    cts: i64,
    data: Bytes,
    flags: u32,
}

impl Fmp4Importer {
    /// An importer publishing into `broadcast`.
    pub fn new(broadcast: BroadcastProducer) -> Self {
        Self {
            broadcast,
            tracks: HashMap::new(),
            ignored: HashSet::new(),
            init: None,
            moof: None,
        }
    }

    /// The broadcast being produced (e.g. to publish it on an origin).
    pub fn broadcast(&self) -> &BroadcastProducer {
        &self.broadcast
    }

    /// The broadcast being filled, to adjust its catalog (call `publish_catalog` after).
    pub fn broadcast_mut(&mut self) -> &mut BroadcastProducer {
        &mut self.broadcast
    }

    /// True once the init segment has been parsed and the catalog published.
    pub fn is_initialized(&self) -> bool {
        self.init.is_some()
    }

    /// Consume every complete top-level box at the front of `buf`; an incomplete box stays in
    /// `buf` for the next call.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<(), ImportError> {
        while let Some((kind, header, size)) = self.next_box(buf)? {
            let data = buf.split_to(size).freeze();
            match &kind {
                b"moov" => self.init(data)?,
                b"moof" => {
                    if self.init.is_none() {
                        return Err(ImportError::MissingInit);
                    }
                    if self.moof.is_some() {
                        return Err(ImportError::malformed("a moof without its mdat"));
                    }
                    let moof = Moof::decode(&mut &data[..])?;
                    self.moof = Some((moof, size as u64));
                }
                b"mdat" => {
                    if self.init.is_none() {
                        return Err(ImportError::MissingInit);
                    }
                    let (moof, moof_size) = self
                        .moof
                        .take()
                        .ok_or_else(|| ImportError::malformed("an mdat without a moof"))?;
                    self.extract(&moof, moof_size, header as u64, data.slice(header..))?;
                }
                _ => tracing::trace!(kind = %String::from_utf8_lossy(&kind), "skipping box"),
            }
        }
        Ok(())
    }

    /// End of input: finish every track and the broadcast. `remaining` is what is left of the
    /// buffer; anything there is a truncated box, reported as an error (after finishing).
    pub fn finish(&mut self, remaining: &[u8]) -> Result<(), ImportError> {
        for input in self.tracks.values_mut() {
            input.producer.finish();
        }
        self.broadcast.finish();
        if !remaining.is_empty() {
            return Err(ImportError::malformed(format!(
                "input ends inside a box ({} bytes left over)",
                remaining.len()
            )));
        }
        if self.init.is_none() {
            return Err(ImportError::malformed(
                "input ended before an init segment (moov)",
            ));
        }
        if self.moof.is_some() {
            return Err(ImportError::malformed(
                "input ends between a moof and its mdat",
            ));
        }
        Ok(())
    }

    /// The next complete box's kind, header length and total length, if it is all in `buf`.
    fn next_box(&self, buf: &BytesMut) -> Result<Option<([u8; 4], usize, usize)>, ImportError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let mut header = &buf[..];
        let size = header.get_u32();
        let mut kind = [0u8; 4];
        header.copy_to_slice(&mut kind);
        if !kind.iter().all(|b| b.is_ascii_alphanumeric() || *b == b' ') {
            return Err(ImportError::malformed(format!(
                "not an MP4 box header: {:02x?}",
                &buf[..8]
            )));
        }
        let name = String::from_utf8_lossy(&kind).into_owned();
        if self.init.is_none() && !PRE_INIT_BOXES.contains(&&kind) {
            return match &kind {
                b"moof" | b"mdat" => Err(ImportError::MissingInit),
                _ => Err(ImportError::malformed(format!(
                    "unexpected box '{name}' before the init segment"
                ))),
            };
        }
        let (size, header_len) = match size {
            0 => {
                return Err(ImportError::Unsupported(format!(
                "box '{name}' extends to the end of the file (size 0), which a stream cannot have"
            )))
            }
            1 if buf.len() < 16 => return Ok(None),
            1 => (header.get_u64(), 16),
            size => (u64::from(size), 8),
        };
        if size < header_len as u64 {
            return Err(ImportError::malformed(format!(
                "box '{name}' has size {size}, smaller than its header"
            )));
        }
        if size > MAX_BOX_SIZE {
            return Err(ImportError::malformed(format!(
                "box '{name}' of {size} bytes exceeds the {MAX_BOX_SIZE}-byte limit"
            )));
        }
        // Fits in usize: at most MAX_BOX_SIZE.
        let size = size as usize;
        if buf.len() < size {
            return Ok(None);
        }
        Ok(Some((kind, header_len, size)))
    }

    fn init(&mut self, data: Bytes) -> Result<(), ImportError> {
        if let Some(init) = &self.init {
            if *init == data {
                return Ok(());
            }
            return Err(ImportError::Unsupported(
                "a second, different init segment (moov) mid-stream".into(),
            ));
        }
        let moov = Moov::decode(&mut &data[..])?;
        for trak in &moov.trak {
            let track_id = trak.tkhd.track_id;
            let timescale = u64::from(trak.mdia.mdhd.timescale);
            if timescale == 0 {
                return Err(ImportError::malformed(format!(
                    "track {track_id} has timescale 0"
                )));
            }
            let codec = match &trak.mdia.minf.stbl.stsd.codecs[..] {
                [codec] => codec,
                [] => {
                    return Err(ImportError::malformed(format!(
                        "track {track_id} has no sample entry"
                    )))
                }
                _ => {
                    return Err(ImportError::Unsupported(format!(
                        "track {track_id} has several sample entries"
                    )))
                }
            };
            let producer = match trak.mdia.hdlr.handler.as_ref() {
                b"vide" => self.broadcast.add_video(video_config(codec)?),
                b"soun" => self.broadcast.add_audio(audio_config(codec)?),
                handler => {
                    tracing::warn!(track_id, handler = %String::from_utf8_lossy(handler), "ignoring track");
                    self.ignored.insert(track_id);
                    continue;
                }
            };
            let defaults = trex_defaults(&moov, trak);
            let input = Input {
                producer,
                timescale,
                defaults,
                last_dts: None,
                next_dts: 0,
                usual_duration: 0,
                started: false,
            };
            if self.tracks.insert(track_id, input).is_some() {
                return Err(ImportError::malformed(format!(
                    "track id {track_id} used twice"
                )));
            }
        }
        if self.tracks.is_empty() {
            return Err(ImportError::Unsupported(
                "no audio or video track in the init segment".into(),
            ));
        }
        self.broadcast.publish_catalog()?;
        self.init = Some(data);
        Ok(())
    }

    /// Publish the samples of one fragment. Offsets are relative to the start of the `moof`; the
    /// `mdat` body starts `moof_size + mdat_header` bytes after it.
    fn extract(
        &mut self,
        moof: &Moof,
        moof_size: u64,
        mdat_header: u64,
        mdat: Bytes,
    ) -> Result<(), ImportError> {
        let mdat_start = moof_size + mdat_header;
        // Where the previous track fragment's data ended (the implicit base of the next one).
        let mut previous_end: Option<u64> = None;
        for traf in &moof.traf {
            let track_id = traf.tfhd.track_id;
            if self.ignored.contains(&track_id) {
                continue;
            }
            let input = self.tracks.get_mut(&track_id).ok_or_else(|| {
                ImportError::malformed(format!("fragment for unknown track id {track_id}"))
            })?;
            if traf.tfhd.base_data_offset.is_some() {
                return Err(ImportError::Unsupported(
                    "tfhd base_data_offset (absolute file offsets) in a stream".into(),
                ));
            }
            let base = match previous_end {
                Some(end) if !traf.tfhd.default_base_is_moof => end,
                _ => 0,
            };
            let (default_duration, default_size, default_flags) = input.defaults;
            let default_duration = traf
                .tfhd
                .default_sample_duration
                .unwrap_or(default_duration);
            let default_size = traf.tfhd.default_sample_size.unwrap_or(default_size);
            let default_flags = traf.tfhd.default_sample_flags.unwrap_or(default_flags);

            let count: usize = traf.trun.iter().map(|t| t.samples.len()).sum();
            if count > MAX_SAMPLES_PER_FRAGMENT {
                return Err(ImportError::malformed(format!(
                    "{count} samples in one fragment exceed the limit of {MAX_SAMPLES_PER_FRAGMENT}"
                )));
            }

            let mut samples = Vec::with_capacity(count);
            let mut durations = Vec::with_capacity(count);
            let mut position = base;
            for trun in &traf.trun {
                if let Some(offset) = trun.data_offset {
                    position = base.checked_add_signed(offset.into()).ok_or_else(|| {
                        ImportError::malformed("trun data offset before the moof")
                    })?;
                }
                for entry in trun.samples.iter() {
                    let size = u64::from(entry.size.unwrap_or(default_size));
                    let start = position
                        .checked_sub(mdat_start)
                        .ok_or_else(|| ImportError::malformed("sample data outside the mdat"))?;
                    let end = start + size;
                    if end > mdat.len() as u64 {
                        return Err(ImportError::malformed(format!(
                            "sample data ({start}..{end}) outside the {}-byte mdat",
                            mdat.len()
                        )));
                    }
                    position += size;
                    durations.push(u64::from(entry.duration.unwrap_or(default_duration)));
                    samples.push(Sample {
                        dts: 0,
                        cts: entry.cts.unwrap_or(0),
                        // In bounds: checked above.
                        data: mdat.slice(start as usize..end as usize),
                        flags: entry.flags.unwrap_or(default_flags),
                    });
                }
            }
            previous_end = Some(position);

            let tfdt = match (&traf.tfdt, input.last_dts) {
                (Some(tfdt), _) => tfdt.base_media_decode_time,
                (None, Some(_)) => input.next_dts,
                (None, None) => {
                    return Err(ImportError::malformed("first fragment without a tfdt"))
                }
            };
            let unfinished = durations[..] == [0];
            let mut dts = fragment_start(tfdt, input.last_dts, input.next_dts, unfinished);
            for (sample, duration) in samples.iter_mut().zip(&durations) {
                sample.dts = dts;
                // A duration of 0 is "not known yet": assume the track's usual one.
                if *duration != 0 {
                    input.usual_duration = *duration;
                }
                dts = dts.saturating_add(input.usual_duration.max(*duration));
            }
            for sample in samples {
                input.write(sample)?;
            }
            input.next_dts = dts;
        }
        Ok(())
    }
}

/// Boxes that may come before the `moov`.
const PRE_INIT_BOXES: [&[u8; 4]; 10] = [
    b"ftyp", b"styp", b"moov", b"free", b"skip", b"uuid", b"udta", b"meta", b"pdin", b"sidx",
];

/// Decode time of a fragment's first sample: its `tfdt`, repaired as the module docs explain.
/// `last` is the previous sample's decode time, `expected` where the previous fragment ended.
fn fragment_start(tfdt: u64, last: Option<u64>, expected: u64, unfinished: bool) -> u64 {
    let Some(last) = last else { return tfdt };
    if tfdt <= last {
        return expected.max(last + 1);
    }
    if unfinished && tfdt > expected {
        return expected.max(last + 1);
    }
    tfdt
}

impl Input {
    fn write(&mut self, sample: Sample) -> Result<(), ImportError> {
        let kind = self.producer.kind();
        // ISO/IEC 14496-12 sample flags: sample_is_non_sync_sample (bit 16) and
        // sample_depends_on (bits 24-25; 1 = depends on others).
        let non_sync = (sample.flags >> 16) & 1 == 1;
        let depends = (sample.flags >> 24) & 3 == 1;
        let keyframe = kind == Kind::Audio || (!non_sync && !depends);
        self.last_dts = Some(sample.dts);
        if kind == Kind::Video && !self.started {
            if !keyframe {
                tracing::debug!(
                    track = self.producer.name(),
                    "dropping a frame before the first keyframe"
                );
                return Ok(());
            }
            self.started = true;
        }
        let pts = i128::from(sample.dts) + i128::from(sample.cts);
        let micros = pts.max(0) * i128::from(container::TIMESCALE) / i128::from(self.timescale);
        let timestamp = u64::try_from(micros)
            .ok()
            .filter(|t| *t <= container::MAX_TIMESTAMP)
            .ok_or_else(|| ImportError::malformed(format!("timestamp {pts} out of range")))?;
        self.producer.write(Frame {
            timestamp,
            keyframe,
            payload: sample.data,
        })?;
        Ok(())
    }
}

fn trex_defaults(moov: &Moov, trak: &Trak) -> (u32, u32, u32) {
    moov.mvex
        .iter()
        .flat_map(|mvex| &mvex.trex)
        .find(|trex| trex.track_id == trak.tkhd.track_id)
        .map_or((0, 0, 0), |trex| {
            (
                trex.default_sample_duration,
                trex.default_sample_size,
                trex.default_sample_flags,
            )
        })
}

fn encode_body<T: Atom>(atom: &T) -> Result<Bytes, ImportError> {
    let mut body = BytesMut::new();
    atom.encode_body(&mut body)?;
    Ok(body.freeze())
}

/// The catalog entry of a video sample entry.
fn video_config(codec: &Codec) -> Result<VideoConfig, ImportError> {
    // The sample entry's `btrt` (ffmpeg writes it when it knows the bitrate): the catalog's
    // `bitrate`, which players choose renditions by.
    let btrt = match codec {
        Codec::Avc1(e) => e.btrt.as_ref(),
        Codec::Avc3(e) => e.btrt.as_ref(),
        Codec::Hvc1(e) => e.btrt.as_ref(),
        Codec::Hev1(e) => e.btrt.as_ref(),
        Codec::Av01(e) => e.btrt.as_ref(),
        Codec::Vp08(e) => e.btrt.as_ref(),
        Codec::Vp09(e) => e.btrt.as_ref(),
        _ => None,
    };
    let bitrate = btrt
        .map(|b| {
            if b.avg_bitrate > 0 {
                b.avg_bitrate
            } else {
                b.max_bitrate
            }
        })
        .filter(|b| *b > 0)
        .map(u64::from);
    let (codec, description, visual) = match codec {
        Codec::Avc1(avc1) => {
            let avcc = &avc1.avcc;
            let string = codec::h264(
                "avc1",
                avcc.avc_profile_indication,
                avcc.profile_compatibility,
                avcc.avc_level_indication,
            );
            (string, Some(encode_body(avcc)?), &avc1.visual)
        }
        Codec::Avc3(avc3) => {
            let avcc = &avc3.avcc;
            let string = codec::h264(
                "avc3",
                avcc.avc_profile_indication,
                avcc.profile_compatibility,
                avcc.avc_level_indication,
            );
            (string, Some(encode_body(avcc)?), &avc3.visual)
        }
        Codec::Hvc1(hvc1) => (
            codec::h265("hvc1", &hvc1.hvcc),
            Some(encode_body(&hvc1.hvcc)?),
            &hvc1.visual,
        ),
        Codec::Hev1(hev1) => (
            codec::h265("hev1", &hev1.hvcc),
            Some(encode_body(&hev1.hvcc)?),
            &hev1.visual,
        ),
        Codec::Vp08(vp08) => ("vp8".to_string(), None, &vp08.visual),
        Codec::Vp09(vp09) => (codec::vp9(&vp09.vpcc), None, &vp09.visual),
        Codec::Av01(av01) => (
            codec::av1(&av01.av1c),
            Some(encode_body(&av01.av1c)?),
            &av01.visual,
        ),
        other => {
            return Err(ImportError::Unsupported(format!(
                "video sample entry {}",
                sample_entry_name(other)
            )))
        }
    };
    Ok(VideoConfig {
        codec,
        description,
        coded_width: Some(visual.width.into()),
        coded_height: Some(visual.height.into()),
        bitrate,
        ..Default::default()
    })
}

/// The catalog entry of an audio sample entry.
fn audio_config(codec: &Codec) -> Result<AudioConfig, ImportError> {
    match codec {
        Codec::Mp4a(mp4a) => {
            let config = &mp4a.esds.es_desc.dec_config;
            if config.object_type_indication != 0x40 {
                return Err(ImportError::Unsupported(format!(
                    "mp4a object type 0x{:02x} (only MPEG-4 audio, 0x40)",
                    config.object_type_indication
                )));
            }
            let specific = config
                .dec_specific
                .as_ref()
                .ok_or_else(|| ImportError::malformed("mp4a without an AudioSpecificConfig"))?;
            let bitrate = [config.avg_bitrate, config.max_bitrate]
                .into_iter()
                .find(|b| *b != 0)
                .map(u64::from);
            Ok(AudioConfig {
                codec: format!("mp4a.40.{}", specific.profile),
                sample_rate: mp4a.audio.sample_rate.integer().into(),
                number_of_channels: mp4a.audio.channel_count.into(),
                bitrate,
                description: (!specific.raw.is_empty())
                    .then(|| Bytes::copy_from_slice(&specific.raw)),
                ..Default::default()
            })
        }
        Codec::Opus(opus) => Ok(AudioConfig {
            codec: "opus".to_string(),
            sample_rate: opus.audio.sample_rate.integer().into(),
            number_of_channels: opus.dops.output_channel_count.into(),
            ..Default::default()
        }),
        other => Err(ImportError::Unsupported(format!(
            "audio sample entry {}",
            sample_entry_name(other)
        ))),
    }
}

fn sample_entry_name(codec: &Codec) -> String {
    match codec {
        Codec::Unknown(kind, _) => format!("'{kind}'"),
        other => {
            let debug = format!("{other:?}");
            debug.split('(').next().unwrap_or_default().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_tfdt_is_repaired() {
        // ffmpeg's A+V frag_every_frame pattern for 960-sample Opus frames.
        let (mut last, mut expected) = (Some(12480), 13440);
        let mut starts = Vec::new();
        for (tfdt, duration) in [(14400, 0), (14400, 960), (15360, 960)] {
            let start = fragment_start(tfdt, last, expected, duration == 0);
            starts.push(start);
            last = Some(start);
            expected = start + duration;
        }
        assert_eq!(starts, [13440, 14400, 15360]);
    }

    #[test]
    fn tfdt_policy() {
        assert_eq!(fragment_start(500, None, 0, false), 500);
        // A gap with a real duration is kept.
        assert_eq!(fragment_start(3000, Some(1000), 2000, false), 3000);
        // A repeat or a step backwards continues from the previous fragment's end.
        assert_eq!(fragment_start(1000, Some(1000), 2000, false), 2000);
        assert_eq!(fragment_start(10, Some(1000), 2000, false), 2000);
        // Overlap with an over-long previous duration: the tfdt is trusted.
        assert_eq!(fragment_start(1900, Some(1000), 2000, false), 1900);
    }
}
