//! Fragmented MP4 export: one init segment for every exported rendition, then fragments.
//!
//! Track IDs are assigned 1, 2, ... in catalog order (video renditions, then audio), across both
//! containers:
//! - **CMAF** renditions contribute the `trak`s (and `trex` defaults) of their own init segment,
//!   renumbered; their fragments are written as published, with the `tfhd` track IDs and the
//!   `mfhd` sequence numbers rewritten in place (same sizes, so `trun` data offsets stay valid).
//!   They keep their own timescales; [`Fragment`] does not apply to them.
//! - **legacy** renditions get a `trak` built from the catalog. They use timescale 1 000 000, so
//!   microsecond timestamps are written unchanged.
//!
//! Legacy frames arrive in decode order with presentation times only; decode times are derived:
//! - [`Fragment::Group`]: one fragment per group; the decode times of a group are its
//!   presentation times sorted (so B-frames get exact, negative composition offsets in a version 1
//!   `trun`, as ffmpeg writes them). Adds a group of latency.
//! - [`Fragment::Frame`]: one fragment per frame, each written when the next frame arrives (its
//!   duration is then known): one frame of latency. The decode time is the presentation time,
//!   raised to stay increasing after a B-frame's reordering.
//!
//! H.264 without a `description` (Annex-B, parameter sets in band) is rewritten to length-prefixed
//! NAL units under an `avc3` sample entry whose avcC is taken from the first keyframe.
//!
//! An [`Fmp4Resume`] carries what was written from one export to the next one writing the same
//! output ([`Fmp4Exporter::resume`]): a subscriber that reconnects exports the broadcast again
//! and its output stays one stream.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
use mp4_atom::{
    Atom, Audio, Av01, Avc1, Avc3, Codec, Dinf, Dops, Dref, DrefEntry, Encode, Esds, FixedPoint,
    FourCC, Ftyp, Hdlr, Hev1, Hvc1, Hvcc, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mp4a, Mvex, Mvhd,
    Opus, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun,
    TrunEntry, TrunSamples, Url, Visual, Vmhd, Vp08, Vp09,
};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::cmaf::{CmafFrame, CmafReader, CmafRendition};
use super::{annexb_to_avcc, avcc_from_annexb, decode_avcc, ExportError};
use crate::catalog::{AudioConfig, Catalog, Container, VideoConfig};
use crate::{codec, container, BroadcastConsumer, Frame, TrackConsumer};

/// How frames are packed into fragments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fragment {
    /// One `moof`+`mdat` per frame (lowest latency).
    #[default]
    Frame,
    /// One `moof`+`mdat` per group (exact decode times with B-frames).
    Group,
}

/// What the exports of one output have written so far, so that the next export of the same
/// broadcast into it (after a reconnect) continues the same stream rather than starting a new one.
///
/// [`Fmp4Exporter::resume`] with it:
/// - writes the init segment (`ftyp`+`moov`) only if the catalog, or the init segment built from
///   it, differs from the last one written: a player reading the output sees one init segment
///   per stream, and a new one only when the stream really changed;
/// - continues the `mfhd` sequence numbers;
/// - when the catalog is the same, carries each legacy-container track on: the frame held back
///   for its duration is written when the next one arrives (it then lasts until the stream
///   resumed, as the picture froze), decode times keep increasing, and the group the track
///   restarts at is left out if the output already holds it, up to the first newer keyframe (a
///   new subscription starts at the track's current group, which can be the one the output was
///   in when the connection was lost). Presentation times are the publisher's, which a
///   publisher that kept running has kept increasing.
///
/// CMAF-container renditions are passed through as published: a fragment sent again after a
/// reconnect is written again.
#[derive(Debug, Default)]
pub struct Fmp4Resume {
    /// The catalog and the init segment last written.
    written: Option<(Catalog, Bytes)>,
    /// The `mfhd` sequence number last written.
    sequence: u32,
    /// Each legacy track's state when its export ended, by track name.
    tracks: HashMap<String, Box<Output>>,
}

impl Fmp4Resume {
    /// Whether an init segment has been written.
    pub fn has_init(&self) -> bool {
        self.written.is_some()
    }
}

/// Writes a hang broadcast as fragmented MP4.
#[derive(Debug)]
#[must_use = "call run() to export"]
pub struct Fmp4Exporter {
    consumer: BroadcastConsumer,
    fragment: Fragment,
    latency: Duration,
    from_oldest: bool,
}

const SAMPLE_SYNC: u32 = 0x0200_0000; // sample_depends_on = 2 (no other)
const SAMPLE_NON_SYNC: u32 = 0x0101_0000; // depends_on = 1, sample_is_non_sync_sample

impl Fmp4Exporter {
    /// Export every legacy- and CMAF-container rendition of `consumer`'s catalog, one fragment
    /// per frame, never skipping (latency target `Duration::MAX`), joining each track at its
    /// latest group.
    pub fn new(consumer: BroadcastConsumer) -> Self {
        Self {
            consumer,
            fragment: Fragment::Frame,
            latency: Duration::MAX,
            from_oldest: false,
        }
    }

    /// Pack one fragment per frame (default) or per group.
    pub fn fragment(mut self, fragment: Fragment) -> Self {
        self.fragment = fragment;
        self
    }

    /// Skip to a newer group when more than `latency` behind (see [`TrackConsumer`]).
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Start each track at the oldest group it still holds instead of the latest.
    pub fn start_at_oldest(mut self) -> Self {
        self.from_oldest = true;
        self
    }

    /// Write the init segment and then fragments to `out` until every track has ended.
    pub async fn run(self, out: impl AsyncWrite + Unpin) -> Result<(), ExportError> {
        self.resume(&mut Fmp4Resume::default(), out).await
    }

    /// Continue the output that `resume` describes (an empty one: like [`Self::run`]) until every
    /// track has ended, and leave in `resume` what was written however this ends: with an error
    /// (a lost connection fails the next read) or by being dropped between writes.
    pub async fn resume(
        self,
        resume: &mut Fmp4Resume,
        mut out: impl AsyncWrite + Unpin,
    ) -> Result<(), ExportError> {
        let catalog = self
            .consumer
            .catalog()
            .next()
            .await?
            .ok_or(ExportError::NoCatalog)?;

        let mut tracks = Vec::new();
        for (name, config) in catalog.video_renditions() {
            let media = Media::Video(config.clone());
            if let Some(track) = Exported::new(name, &config.container, media, self.fragment)? {
                tracks.push(track);
            }
        }
        for (name, config) in catalog.audio_renditions() {
            // Every audio frame is its own group: per-frame packing is the same thing.
            let media = Media::Audio(config.clone());
            if let Some(track) = Exported::new(name, &config.container, media, Fragment::Frame)? {
                tracks.push(track);
            }
        }
        if tracks.is_empty() {
            return Err(ExportError::NothingToExport(
                "no legacy- or CMAF-container rendition in the catalog".into(),
            ));
        }

        // Track IDs 1.. across every exported track, in catalog order.
        let mut next_id = 1u32;
        for track in &mut tracks {
            match track {
                Exported::Legacy(output) => {
                    output.track_id = next_id;
                    next_id += 1;
                }
                Exported::Cmaf(rendition) => {
                    for track in &mut rendition.tracks {
                        track.id = next_id;
                        next_id += 1;
                    }
                }
            }
        }

        let Fmp4Resume {
            written,
            sequence,
            tracks: saved,
        } = resume;
        let same = written.as_ref().is_some_and(|(c, _)| *c == catalog);
        let mut tracks = Resumed::new(tracks, saved, same);

        let mut readers: Vec<Reader> = tracks
            .iter()
            .map(|track| match track {
                Exported::Legacy(output) => {
                    let mut consumer = self.consumer.subscribe(&output.name, self.latency);
                    if self.from_oldest {
                        consumer.start_at_oldest();
                    }
                    Reader::Legacy(consumer)
                }
                Exported::Cmaf(rendition) => Reader::Cmaf(CmafReader::new(
                    &self.consumer,
                    rendition.clone(),
                    self.latency,
                    self.from_oldest,
                )),
            })
            .collect();

        // H.264 without a description needs its parameter sets from the first keyframe.
        let mut first = Vec::new();
        for (index, track) in tracks.iter_mut().enumerate() {
            let (Exported::Legacy(output), Reader::Legacy(consumer)) = (track, &mut readers[index])
            else {
                continue;
            };
            if output.needs_parameter_sets() {
                if let Some(frame) = consumer.read().await? {
                    output.avcc = avcc_from_annexb(&frame.payload);
                    first.push((index, Ok(Read::Legacy(Some(frame)))));
                }
            }
        }
        let init = init_segment(&tracks)?;
        if !same || written.as_ref().is_some_and(|(_, w)| *w != init) {
            out.write_all(&init).await?;
            out.flush().await?;
            *written = Some((catalog, init));
        }

        // Every track's frames as they come, then one end marker when the track ends.
        let streams = readers.drain(..).enumerate().map(|(index, reader)| {
            futures::stream::unfold(Some(reader), move |reader| async move {
                let mut reader = reader?;
                match reader.read().await {
                    Ok(read) if read.is_end() => Some(((index, Ok(read)), None)),
                    Ok(read) => Some(((index, Ok(read)), Some(reader))),
                    Err(err) => Some(((index, Err(err)), None)),
                }
            })
            .boxed()
        });
        let frames = futures::stream::iter(first).chain(futures::stream::select_all(streams));
        futures::pin_mut!(frames);
        while let Some((index, read)) = frames.next().await {
            match (&mut tracks[index], read?) {
                (Exported::Legacy(output), Read::Legacy(frame)) => {
                    for samples in output.push(frame)? {
                        *sequence = sequence.wrapping_add(1);
                        let bytes = fragment(output.track_id, *sequence, &samples)?;
                        out.write_all(&bytes).await?;
                        out.flush().await?;
                    }
                }
                (Exported::Cmaf(rendition), Read::Cmaf(Some(frame))) => {
                    let bytes = rendition.rewrite(&frame.payload, sequence)?;
                    out.write_all(&bytes).await?;
                    out.flush().await?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The tracks of one export, handed back to its [`Fmp4Resume`] when the export ends, however it
/// ends (a lost connection ends it with an error from a read, or by dropping it): the state of
/// the legacy tracks is kept to carry on with.
struct Resumed<'a> {
    tracks: Vec<Exported>,
    saved: &'a mut HashMap<String, Box<Output>>,
}

impl<'a> Resumed<'a> {
    /// `tracks`, the legacy ones carrying on from their `saved` state if the catalog is the `same`
    /// as last time (otherwise the saved state belongs to another stream and is dropped).
    fn new(
        mut tracks: Vec<Exported>,
        saved: &'a mut HashMap<String, Box<Output>>,
        same: bool,
    ) -> Self {
        if same {
            for track in &mut tracks {
                if let Exported::Legacy(output) = track {
                    if let Some(previous) = saved.remove(&output.name) {
                        output.continue_from(*previous);
                    }
                }
            }
        }
        saved.clear();
        Self { tracks, saved }
    }
}

impl Deref for Resumed<'_> {
    type Target = Vec<Exported>;

    fn deref(&self) -> &Vec<Exported> {
        &self.tracks
    }
}

impl DerefMut for Resumed<'_> {
    fn deref_mut(&mut self) -> &mut Vec<Exported> {
        &mut self.tracks
    }
}

impl Drop for Resumed<'_> {
    fn drop(&mut self) {
        for track in self.tracks.drain(..) {
            if let Exported::Legacy(output) = track {
                self.saved.insert(output.name.clone(), output);
            }
        }
    }
}

/// One rendition of the output.
#[derive(Debug)]
enum Exported {
    /// Legacy frames, packed into fragments here.
    Legacy(Box<Output>),
    /// CMAF fragments, passed through with their track IDs renumbered.
    Cmaf(CmafRendition),
}

impl Exported {
    /// The export of a rendition, or `None` (with a warning) for a container not handled here.
    fn new(
        name: &str,
        container: &Container,
        media: Media,
        mode: Fragment,
    ) -> Result<Option<Self>, ExportError> {
        match container {
            Container::Legacy => Ok(Some(Self::Legacy(Box::new(Output::new(name, media, mode))))),
            Container::Cmaf { init } => Ok(Some(Self::Cmaf(CmafRendition::parse(name, init)?))),
            _ => {
                tracing::warn!(
                    track = name,
                    ?container,
                    "skipping a rendition that is neither legacy- nor CMAF-container"
                );
                Ok(None)
            }
        }
    }
}

/// Reads one exported rendition's track.
enum Reader {
    Legacy(TrackConsumer),
    Cmaf(CmafReader),
}

/// What a [`Reader`] returned: a frame, or `None` once its track has ended.
enum Read {
    Legacy(Option<Frame>),
    Cmaf(Option<CmafFrame>),
}

impl Read {
    fn is_end(&self) -> bool {
        matches!(self, Self::Legacy(None) | Self::Cmaf(None))
    }
}

impl Reader {
    async fn read(&mut self) -> Result<Read, ExportError> {
        Ok(match self {
            Self::Legacy(consumer) => Read::Legacy(consumer.read().await?),
            Self::Cmaf(reader) => Read::Cmaf(reader.read().await?),
        })
    }
}

#[derive(Debug)]
enum Media {
    Video(VideoConfig),
    Audio(AudioConfig),
}

/// One exported track: the frames held back until their durations are known.
#[derive(Debug)]
struct Output {
    name: String,
    media: Media,
    track_id: u32,
    mode: Fragment,
    /// For Annex-B H.264: the avcC built from the first keyframe.
    avcc: Option<mp4_atom::Avcc>,
    held: Vec<Frame>,
    last_dts: Option<u64>,
    last_duration: u64,
    /// Presentation time of the newest group start taken (every audio frame starts one).
    last_keyframe: Option<u64>,
    /// After [`Output::continue_from`]: frames are left out until a group start newer than this.
    resume_after: Option<u64>,
}

#[derive(Debug)]
struct Sample {
    dts: u64,
    duration: u64,
    cts: i64,
    keyframe: bool,
    payload: Bytes,
}

impl Output {
    fn new(name: &str, media: Media, mode: Fragment) -> Self {
        Self {
            name: name.to_string(),
            media,
            track_id: 0,
            mode,
            avcc: None,
            held: Vec::new(),
            last_dts: None,
            last_duration: 0,
            last_keyframe: None,
            resume_after: None,
        }
    }

    /// Carry on where `previous`, the same rendition's export into the same output, stopped.
    fn continue_from(&mut self, previous: Output) {
        self.held = previous.held;
        self.last_dts = previous.last_dts;
        self.last_duration = previous.last_duration;
        self.last_keyframe = previous.last_keyframe;
        self.resume_after = previous.last_keyframe;
        self.avcc = previous.avcc;
    }

    fn needs_parameter_sets(&self) -> bool {
        matches!(&self.media, Media::Video(v) if v.description.is_none() && v.codec.starts_with("avc"))
    }

    /// Take the next frame (`None`: the track ended) and return the fragments now complete.
    fn push(&mut self, frame: Option<Frame>) -> Result<Vec<Vec<Sample>>, ExportError> {
        if let Some(frame) = &frame {
            let starts_group = frame.keyframe || matches!(self.media, Media::Audio(_));
            if let Some(after) = self.resume_after {
                if !(starts_group && frame.timestamp > after) {
                    return Ok(Vec::new());
                }
                self.resume_after = None;
            }
            if starts_group {
                self.last_keyframe = Some(frame.timestamp);
            }
        }
        let mut fragments = Vec::new();
        match (self.mode, frame) {
            (Fragment::Frame, Some(frame)) => {
                if let Some(held) = self.held.pop() {
                    fragments.push(self.samples(vec![held], Some(frame.timestamp))?);
                }
                self.held.push(frame);
            }
            (Fragment::Group, Some(frame)) => {
                if frame.keyframe && !self.held.is_empty() {
                    let group = std::mem::take(&mut self.held);
                    fragments.push(self.samples(group, Some(frame.timestamp))?);
                }
                self.held.push(frame);
            }
            (_, None) => {
                if !self.held.is_empty() {
                    let held = std::mem::take(&mut self.held);
                    fragments.push(self.samples(held, None)?);
                }
            }
        }
        Ok(fragments)
    }

    /// Samples for frames in decode order; `next` is the presentation time of the frame after them.
    fn samples(
        &mut self,
        frames: Vec<Frame>,
        next: Option<u64>,
    ) -> Result<Vec<Sample>, ExportError> {
        let mut order: Vec<u64> = frames.iter().map(|f| f.timestamp).collect();
        order.sort_unstable();
        let mut dts: Vec<u64> = Vec::with_capacity(frames.len());
        for (i, frame) in frames.iter().enumerate() {
            let candidate = match self.mode {
                Fragment::Group => order[i],
                Fragment::Frame => frame.timestamp,
            };
            let floor = dts.last().copied().or(self.last_dts).map_or(0, |d| d + 1);
            dts.push(candidate.max(floor));
        }
        let mut samples = Vec::with_capacity(frames.len());
        for (i, frame) in frames.into_iter().enumerate() {
            let end = dts.get(i + 1).copied().or(next);
            let duration = match end {
                Some(end) if end > dts[i] => end - dts[i],
                _ => self.last_duration.max(1),
            };
            self.last_duration = duration;
            let payload = match &self.media {
                Media::Video(v) if v.description.is_none() && v.codec.starts_with("avc") => {
                    annexb_to_avcc(&frame.payload)
                }
                _ => frame.payload,
            };
            samples.push(Sample {
                dts: dts[i],
                duration,
                cts: frame.timestamp as i64 - dts[i] as i64,
                keyframe: frame.keyframe || matches!(self.media, Media::Audio(_)),
                payload,
            });
        }
        self.last_dts = dts.last().copied().or(self.last_dts);
        Ok(samples)
    }

    fn unsupported(&self, reason: impl Into<String>) -> ExportError {
        ExportError::Unsupported {
            track: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The sample entry for this track's stsd.
    fn sample_entry(&self) -> Result<Codec, ExportError> {
        match &self.media {
            Media::Video(config) => self.video_entry(config),
            Media::Audio(config) => self.audio_entry(config),
        }
    }

    fn video_entry(&self, config: &VideoConfig) -> Result<Codec, ExportError> {
        let visual = Visual {
            data_reference_index: 1,
            width: config
                .coded_width
                .unwrap_or(0)
                .try_into()
                .unwrap_or(u16::MAX),
            height: config
                .coded_height
                .unwrap_or(0)
                .try_into()
                .unwrap_or(u16::MAX),
            ..Visual::default()
        };
        let codec = config.codec.as_str();
        let description = config.description.as_deref();
        let entry = if codec.starts_with("avc1") || codec.starts_with("avc3") {
            let avcc = match (description, &self.avcc) {
                (Some(description), _) => {
                    decode_avcc(description).map_err(|e| self.unsupported(e))?
                }
                (None, Some(avcc)) => avcc.clone(),
                (None, None) => {
                    return Err(self.unsupported(
                        "H.264 without description and no SPS/PPS in its first frame",
                    ))
                }
            };
            if codec.starts_with("avc1") && description.is_some() {
                Codec::Avc1(Avc1 {
                    visual,
                    avcc,
                    ..Default::default()
                })
            } else {
                Codec::Avc3(Avc3 {
                    visual,
                    avcc,
                    ..Default::default()
                })
            }
        } else if codec.starts_with("hvc1") || codec.starts_with("hev1") {
            let description =
                description.ok_or_else(|| self.unsupported("H.265 without description (hvcC)"))?;
            let hvcc = Hvcc::decode_body(&mut &description[..])
                .map_err(|e| self.unsupported(format!("invalid hvcC description: {e}")))?;
            if codec.starts_with("hvc1") {
                Codec::Hvc1(Hvc1 {
                    visual,
                    hvcc,
                    ..Default::default()
                })
            } else {
                Codec::Hev1(Hev1 {
                    visual,
                    hvcc,
                    ..Default::default()
                })
            }
        } else if codec == "vp8" || codec.starts_with("vp09") {
            let vpcc = codec::parse_vp9(codec)
                .ok_or_else(|| self.unsupported(format!("codec string {codec}")))?;
            if codec == "vp8" {
                Codec::Vp08(Vp08 {
                    visual,
                    vpcc,
                    ..Default::default()
                })
            } else {
                Codec::Vp09(Vp09 {
                    visual,
                    vpcc,
                    ..Default::default()
                })
            }
        } else if codec.starts_with("av01") {
            let av1c = match description {
                Some(description) => mp4_atom::Av1c::decode_body(&mut &description[..])
                    .map_err(|e| self.unsupported(format!("invalid av1C description: {e}")))?,
                None => codec::parse_av1(codec)
                    .ok_or_else(|| self.unsupported(format!("codec string {codec}")))?,
            };
            Codec::Av01(Av01 {
                visual,
                av1c,
                ..Default::default()
            })
        } else {
            return Err(self.unsupported(format!("video codec {codec}")));
        };
        Ok(entry)
    }

    fn audio_entry(&self, config: &AudioConfig) -> Result<Codec, ExportError> {
        let audio = Audio {
            data_reference_index: 1,
            channel_count: config.number_of_channels.try_into().unwrap_or(2),
            sample_size: 16,
            sample_rate: FixedPoint::new(config.sample_rate.try_into().unwrap_or(0), 0),
        };
        let codec = config.codec.as_str();
        if codec == "opus" {
            let dops = Dops {
                output_channel_count: config.number_of_channels.try_into().unwrap_or(2),
                pre_skip: 0,
                input_sample_rate: config.sample_rate,
                output_gain: 0,
                channel_mapping: None,
            };
            return Ok(Codec::Opus(Opus {
                audio,
                dops,
                btrt: None,
            }));
        }
        let Some(profile) = codec
            .strip_prefix("mp4a.40.")
            .and_then(|p| p.parse::<u8>().ok())
        else {
            return Err(self.unsupported(format!("audio codec {codec}")));
        };
        let raw = match &config.description {
            Some(description) => description.to_vec(),
            None => {
                let index = AAC_RATES
                    .iter()
                    .position(|r| *r == config.sample_rate)
                    .ok_or_else(|| {
                        self.unsupported("AAC without description at a non-standard rate")
                    })?;
                let channels = u8::try_from(config.number_of_channels).unwrap_or(2);
                vec![
                    (profile << 3) | (index as u8 >> 1),
                    ((index as u8) << 7) | (channels << 3),
                ]
            }
        };
        let esds = Esds {
            es_desc: EsDescriptor {
                es_id: 1,
                dec_config: DecoderConfig {
                    object_type_indication: 0x40,
                    stream_type: 5,
                    up_stream: 0,
                    max_bitrate: config.bitrate.unwrap_or(0).try_into().unwrap_or(u32::MAX),
                    avg_bitrate: config.bitrate.unwrap_or(0).try_into().unwrap_or(u32::MAX),
                    dec_specific: Some(DecoderSpecific {
                        profile,
                        raw,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
        };
        Ok(Codec::Mp4a(Mp4a {
            audio,
            esds,
            btrt: None,
            taic: None,
        }))
    }
}

const AAC_RATES: [u32; 13] = crate::bitstream::AAC_SAMPLE_RATES;

/// `ftyp` + `moov` for the exported tracks: a `trak` built from the catalog for each legacy
/// rendition, the renumbered `trak`s of each CMAF rendition's init.
fn init_segment(tracks: &[Exported]) -> Result<Bytes, ExportError> {
    let ftyp = Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: [b"iso6", b"cmfc", b"isom", b"mp41"]
            .into_iter()
            .map(FourCC::new)
            .collect(),
    };
    let mut traks = Vec::new();
    let mut trex = Vec::new();
    for track in tracks {
        match track {
            Exported::Legacy(output) => {
                let (t, x) = legacy_trak(output)?;
                traks.push(t);
                trex.push(x);
            }
            Exported::Cmaf(rendition) => {
                for (t, x) in rendition.traks(MOVIE_TIMESCALE) {
                    traks.push(t);
                    trex.push(x);
                }
            }
        }
    }
    let next_track_id = traks
        .iter()
        .map(|t| t.tkhd.track_id)
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    let moov = Moov {
        mvhd: Mvhd {
            timescale: MOVIE_TIMESCALE as u32,
            next_track_id,
            ..Default::default()
        },
        mvex: Some(Mvex { mehd: None, trex }),
        trak: traks,
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    ftyp.encode(&mut buf)?;
    moov.encode(&mut buf)?;
    Ok(buf.freeze())
}

/// The `mvhd` timescale of the output.
const MOVIE_TIMESCALE: u64 = 1000;

/// The `trak` and `trex` of a legacy rendition, built from its catalog entry.
fn legacy_trak(output: &Output) -> Result<(Trak, Trex), ExportError> {
    let entry = output.sample_entry()?;
    let (handler, width, height, volume, vmhd, smhd) = match &output.media {
        Media::Video(v) => (
            b"vide",
            v.coded_width.unwrap_or(0),
            v.coded_height.unwrap_or(0),
            0,
            Some(Vmhd::default()),
            None,
        ),
        Media::Audio(_) => (b"soun", 0, 0, 1, None, Some(Smhd::default())),
    };
    let trak = Trak {
        tkhd: Tkhd {
            track_id: output.track_id,
            enabled: true,
            in_movie: true,
            volume: FixedPoint::new(volume, 0),
            width: FixedPoint::new(width.try_into().unwrap_or(u16::MAX), 0),
            height: FixedPoint::new(height.try_into().unwrap_or(u16::MAX), 0),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: container::TIMESCALE as u32,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: output.name.clone(),
            },
            minf: Minf {
                vmhd,
                smhd,
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![DrefEntry::Url(Url {
                            location: String::new(),
                        })],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![entry],
                    },
                    stts: Stts::default(),
                    stsc: Stsc::default(),
                    stsz: Stsz::default(),
                    stco: Some(Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    };
    let trex = Trex {
        track_id: output.track_id,
        default_sample_description_index: 1,
        ..Default::default()
    };
    Ok((trak, trex))
}

/// One `moof`+`mdat` holding `samples` of one track.
fn fragment(track_id: u32, sequence: u32, samples: &[Sample]) -> Result<Bytes, ExportError> {
    let entries = samples
        .iter()
        .map(|s| TrunEntry {
            duration: Some(s.duration.try_into().unwrap_or(u32::MAX)),
            size: Some(s.payload.len() as u32),
            flags: Some(if s.keyframe {
                SAMPLE_SYNC
            } else {
                SAMPLE_NON_SYNC
            }),
            cts: Some(s.cts.clamp(i32::MIN.into(), i32::MAX.into())),
        })
        .collect();
    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: samples.first().map_or(0, |s| s.dts),
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: TrunSamples::Explicit(entries),
            }],
            ..Default::default()
        }],
    };
    // The data offset counts from the moof's first byte to the mdat body.
    let mut sized = BytesMut::new();
    moof.encode(&mut sized)?;
    let offset = sized.len() + 8;
    moof.traf[0].trun[0].data_offset = Some(offset.try_into().unwrap_or(i32::MAX));

    let data: usize = samples.iter().map(|s| s.payload.len()).sum();
    let mut buf = BytesMut::with_capacity(offset + data);
    moof.encode(&mut buf)?;
    buf.put_u32((data + 8).try_into().unwrap_or(u32::MAX));
    buf.put_slice(b"mdat");
    for sample in samples {
        buf.put_slice(&sample.payload);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::VideoConfig;
    use crate::BroadcastProducer;
    use mp4_atom::Decode;
    use tokio::io::AsyncReadExt;

    /// A broadcast with one VP8 rendition of `width`, its catalog published.
    fn broadcast(width: u32) -> (BroadcastProducer, crate::TrackProducer) {
        let mut broadcast = BroadcastProducer::new();
        let video = broadcast.add_video(VideoConfig {
            codec: "vp8".into(),
            coded_width: Some(width),
            coded_height: Some(240),
            ..Default::default()
        });
        broadcast.publish_catalog().unwrap();
        (broadcast, video)
    }

    /// Frames at these milliseconds, the `keys` starting groups.
    fn write(video: &mut crate::TrackProducer, ms: &[u64], keys: &[u64]) {
        for &t in ms {
            video
                .write(Frame {
                    timestamp: t * 1000,
                    keyframe: keys.contains(&t),
                    payload: Bytes::from(t.to_be_bytes().to_vec()),
                })
                .unwrap();
        }
    }

    /// Read top-level boxes from `reader` until `moofs` fragments have come.
    async fn read_fragments(
        reader: &mut (impl tokio::io::AsyncRead + Unpin),
        moofs: usize,
    ) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut seen = 0;
        while seen < moofs {
            let mut header = [0u8; 8];
            reader.read_exact(&mut header).await.unwrap();
            let size = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
            let mut body = vec![0u8; size - 8];
            reader.read_exact(&mut body).await.unwrap();
            seen += usize::from(&header[4..] == b"moof");
            bytes.extend_from_slice(&header);
            bytes.extend_from_slice(&body);
        }
        bytes
    }

    /// The output's top-level box types, and each fragment's (sequence number, decode time in ms).
    fn summary(mut bytes: &[u8]) -> (Vec<String>, Vec<(u32, u64)>) {
        let (mut types, mut fragments) = (Vec::new(), Vec::new());
        while !bytes.is_empty() {
            let size = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            let kind = String::from_utf8_lossy(&bytes[4..8]).to_string();
            if kind == "moof" {
                let moof = Moof::decode(&mut &bytes[..size]).unwrap();
                let tfdt = moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time;
                fragments.push((moof.mfhd.sequence_number, tfdt / 1000));
            }
            types.push(kind);
            bytes = &bytes[size..];
        }
        (types, fragments)
    }

    /// Export `broadcast` into `resume`'s output until `moofs` fragments are written, then drop
    /// the export (as a lost connection does) and return what it wrote.
    async fn export(
        broadcast: &BroadcastProducer,
        resume: &mut Fmp4Resume,
        moofs: usize,
    ) -> Vec<u8> {
        let (writer, mut reader) = tokio::io::duplex(1 << 20);
        let export = Fmp4Exporter::new(broadcast.consume())
            .start_at_oldest()
            .resume(resume, writer);
        tokio::select! {
            res = export => panic!("the export ended: {res:?}"),
            bytes = read_fragments(&mut reader, moofs) => bytes,
        }
    }

    #[tokio::test]
    async fn a_resumed_export_continues_the_same_stream() {
        let mut resume = Fmp4Resume::default();

        // The first connection: two groups, then the connection is lost while the newest frame
        // (133 ms) is held back waiting for its duration.
        let (first, mut video) = broadcast(320);
        write(&mut video, &[0, 33, 66, 100, 133], &[0, 100]);
        let mut out = export(&first, &mut resume, 4).await;
        assert!(resume.has_init());

        // The second: the same catalog; the track restarts at its current group (100 ms, which
        // the output holds already) and goes on. 133 ms is written once 200 ms arrives.
        let (second, mut video) = broadcast(320);
        write(&mut video, &[100, 133, 200, 233], &[100, 200]);
        out.extend(export(&second, &mut resume, 2).await);

        let (types, fragments) = summary(&out);
        assert_eq!(
            types.iter().filter(|t| *t == "ftyp").count(),
            1,
            "{types:?}"
        );
        assert_eq!(
            types.iter().filter(|t| *t == "moov").count(),
            1,
            "{types:?}"
        );
        assert_eq!(
            fragments,
            [(1, 0), (2, 33), (3, 66), (4, 100), (5, 133), (6, 200)]
        );

        // A different catalog is a new stream: a new init segment, the sequence still going on.
        let (third, mut video) = broadcast(640);
        write(&mut video, &[0, 33], &[0]);
        let (types, fragments) = summary(&export(&third, &mut resume, 1).await);
        assert_eq!(types[..2], ["ftyp", "moov"]);
        assert_eq!(fragments, [(7, 0)]);
    }
}
