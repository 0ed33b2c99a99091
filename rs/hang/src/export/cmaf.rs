//! CMAF-container renditions (`{"kind":"cmaf","init":...}`): every moq-lite frame is a complete
//! `moof`+`mdat` fragment and the catalog carries the rendition's `ftyp`+`moov`.
//!
//! - [`CmafRendition`] parses a rendition's init segment (with mp4-atom), renumbers its tracks for
//!   a merged init segment, and rewrites each fragment in place: `tfhd` track IDs to the merged
//!   IDs and `mfhd` sequence numbers to the output's, so no box changes size and every `trun`
//!   data offset stays valid. A fragment with absolute offsets (`tfhd` base_data_offset) cannot be
//!   moved and is refused.
//! - [`CmafReader`] reads such a track with the latency rule of [`crate::TrackConsumer`], taking
//!   each fragment's media time from its `tfdt` (and first composition offset).
//! - [`fragment_samples`] cuts a fragment into sample payloads (for the Annex-B export), and
//!   [`fragment_timed_samples`] into samples with their decode time, composition offset and sync
//!   flag (for the per-sample reader).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use moq_lite::Track;
use mp4_atom::{Codec, Decode, Moof, Moov, Trak, Trex};

use super::ExportError;
use crate::reader::{FrameDecoder, SkippingReader};
use crate::{container, BroadcastConsumer};

/// Most samples accepted in one fragment (as the importer).
const MAX_SAMPLES: usize = crate::import::MAX_SAMPLES_PER_FRAGMENT;

/// One track of a CMAF rendition's init segment.
#[derive(Debug, Clone)]
pub(super) struct CmafTrack {
    /// The track ID in the rendition's own init segment and fragments.
    pub source_id: u32,
    /// The track ID in the merged output.
    pub id: u32,
    /// The `mdhd` timescale (fragment times are in it).
    pub timescale: u64,
    pub trak: Trak,
    pub trex: Trex,
}

/// A CMAF rendition: its tracks, renumbered for the output.
#[derive(Debug, Clone)]
pub(super) struct CmafRendition {
    pub name: String,
    pub tracks: Vec<CmafTrack>,
    /// The `mvhd` timescale of the rendition's init (edit list durations are in it).
    movie_timescale: u64,
}

impl CmafRendition {
    /// Parse `init` (`ftyp`+`moov`, other top-level boxes ignored). Track IDs are not assigned.
    pub fn parse(name: &str, init: &[u8]) -> Result<Self, ExportError> {
        let unsupported = |reason: String| ExportError::Unsupported {
            track: name.to_string(),
            reason,
        };
        let boxes = top_level_boxes(init).map_err(|e| unsupported(format!("CMAF init: {e}")))?;
        let moov = boxes
            .iter()
            .find(|b| &b.kind == b"moov")
            .ok_or_else(|| unsupported("CMAF init without a moov".into()))?;
        let moov = Moov::decode(&mut &init[moov.start..moov.end])
            .map_err(|e| unsupported(format!("CMAF init moov: {e}")))?;
        if moov.trak.is_empty() {
            return Err(unsupported("CMAF init without a track".into()));
        }
        let trexes = moov.mvex.map(|m| m.trex).unwrap_or_default();
        let mut tracks: Vec<CmafTrack> = Vec::with_capacity(moov.trak.len());
        for trak in moov.trak {
            let source_id = trak.tkhd.track_id;
            if tracks.iter().any(|t| t.source_id == source_id) {
                return Err(unsupported(format!(
                    "CMAF init declares track {source_id} twice"
                )));
            }
            let timescale = u64::from(trak.mdia.mdhd.timescale);
            if timescale == 0 {
                return Err(unsupported(format!("track {source_id} has timescale 0")));
            }
            let trex = trexes
                .iter()
                .find(|t| t.track_id == source_id)
                .cloned()
                .unwrap_or(Trex {
                    track_id: source_id,
                    default_sample_description_index: 1,
                    ..Default::default()
                });
            tracks.push(CmafTrack {
                source_id,
                id: 0,
                timescale,
                trak,
                trex,
            });
        }
        Ok(Self {
            name: name.to_string(),
            tracks,
            movie_timescale: u64::from(moov.mvhd.timescale).max(1),
        })
    }

    /// The renumbered `trak` and `trex` of every track, for a movie of `movie_timescale`.
    pub fn traks(&self, movie_timescale: u64) -> Vec<(Trak, Trex)> {
        let rescale = |value: u64| {
            let scaled =
                u128::from(value) * u128::from(movie_timescale) / u128::from(self.movie_timescale);
            u64::try_from(scaled).unwrap_or(u64::MAX)
        };
        self.tracks
            .iter()
            .map(|track| {
                let mut trak = track.trak.clone();
                trak.tkhd.track_id = track.id;
                trak.tkhd.duration = 0;
                // Track references would name the rendition's own IDs.
                trak.tref = None;
                if let Some(elst) = trak.edts.as_mut().and_then(|e| e.elst.as_mut()) {
                    for entry in &mut elst.entries {
                        entry.segment_duration = rescale(entry.segment_duration);
                    }
                }
                let trex = Trex {
                    track_id: track.id,
                    ..track.trex.clone()
                };
                (trak, trex)
            })
            .collect()
    }

    fn track(&self, source_id: u32) -> Option<&CmafTrack> {
        self.tracks.iter().find(|t| t.source_id == source_id)
    }

    fn invalid(&self, reason: impl Into<String>) -> ExportError {
        ExportError::InvalidFrame {
            track: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// `fragment` with every `tfhd` track ID mapped to the output's and every `mfhd` sequence
    /// number taken from `sequence` (incremented per `moof`). Other boxes pass unchanged.
    pub fn rewrite(&self, fragment: &[u8], sequence: &mut u32) -> Result<Bytes, ExportError> {
        let boxes = top_level_boxes(fragment).map_err(|e| self.invalid(e))?;
        let mut out = BytesMut::from(fragment);
        let mut moof_pending = false;
        let mut moofs = 0usize;
        for b in &boxes {
            match &b.kind {
                b"moof" => {
                    if moof_pending {
                        return Err(self.invalid("a moof without its mdat"));
                    }
                    let moof = Moof::decode(&mut &fragment[b.start..b.end])
                        .map_err(|e| self.invalid(format!("moof: {e}")))?;
                    if moof.traf.is_empty() {
                        return Err(self.invalid("moof without a traf"));
                    }
                    for traf in &moof.traf {
                        if traf.tfhd.base_data_offset.is_some() {
                            return Err(self.invalid(
                                "tfhd base_data_offset (absolute offsets) cannot be relocated",
                            ));
                        }
                        if self.track(traf.tfhd.track_id).is_none() {
                            return Err(self.invalid(format!(
                                "fragment of track {} which the init does not declare",
                                traf.tfhd.track_id
                            )));
                        }
                    }
                    *sequence = sequence.wrapping_add(1);
                    self.patch_moof(&mut out, b, *sequence)?;
                    moof_pending = true;
                    moofs += 1;
                }
                b"mdat" => moof_pending = false,
                _ => {}
            }
        }
        if moofs == 0 || moof_pending {
            return Err(self.invalid("not a moof+mdat fragment"));
        }
        Ok(out.freeze())
    }

    /// Patch, in `out`, the `mfhd` and `tfhd` boxes of the `moof` at `b` (already decoded once).
    fn patch_moof(&self, out: &mut [u8], b: &BoxRange, sequence: u32) -> Result<(), ExportError> {
        let children = child_boxes(out, b).map_err(|e| self.invalid(e))?;
        for child in children {
            match &child.kind {
                // FullBox: version/flags, then sequence_number.
                b"mfhd" => put_u32(out, child.body + 4, sequence, child.end)
                    .map_err(|e| self.invalid(e))?,
                b"traf" => {
                    let grandchildren = child_boxes(out, &child).map_err(|e| self.invalid(e))?;
                    for tfhd in grandchildren.iter().filter(|g| &g.kind == b"tfhd") {
                        // FullBox: version/flags, then track_ID.
                        let source =
                            get_u32(out, tfhd.body + 4, tfhd.end).map_err(|e| self.invalid(e))?;
                        let track = self.track(source).ok_or_else(|| {
                            self.invalid(format!("fragment of undeclared track {source}"))
                        })?;
                        put_u32(out, tfhd.body + 4, track.id, tfhd.end)
                            .map_err(|e| self.invalid(e))?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Presentation time (µs) of a fragment's first sample, if it can be read.
    pub fn timestamp(&self, fragment: &[u8]) -> Option<u64> {
        let boxes = top_level_boxes(fragment).ok()?;
        let b = boxes.iter().find(|b| &b.kind == b"moof")?;
        let moof = Moof::decode(&mut &fragment[b.start..b.end]).ok()?;
        let traf = moof.traf.first()?;
        let dts = traf.tfdt.as_ref()?.base_media_decode_time;
        let cts = traf
            .trun
            .first()
            .and_then(|t| t.samples.get(0))
            .and_then(|e| e.cts)
            .unwrap_or(0);
        self.micros(traf.tfhd.track_id, dts, cts)
    }

    /// Presentation time in µs of a sample at `dts` + `cts` (units of track `source_id`'s
    /// timescale), as [`Self::timestamp`] scales it: a negative time is 0; `None` if the track is
    /// unknown or the time does not fit.
    pub fn micros(&self, source_id: u32, dts: u64, cts: i64) -> Option<u64> {
        let timescale = self.track(source_id)?.timescale;
        let pts = (i128::from(dts) + i128::from(cts)).max(0);
        let micros = pts * i128::from(container::TIMESCALE) / i128::from(timescale);
        u64::try_from(micros).ok()
    }

    /// The `avcC` of the first H.264 track, if any.
    pub fn avcc(&self) -> Option<(u32, mp4_atom::Avcc)> {
        self.tracks.iter().find_map(|track| {
            track
                .trak
                .mdia
                .minf
                .stbl
                .stsd
                .codecs
                .iter()
                .find_map(|codec| match codec {
                    Codec::Avc1(avc1) => Some(avc1.avcc.clone()),
                    Codec::Avc3(avc3) => Some(avc3.avcc.clone()),
                    _ => None,
                })
                .map(|avcc| (track.source_id, avcc))
        })
    }
}

/// The payloads of the samples of track `source_id` in a `moof`+`mdat` fragment, in order.
pub(super) fn fragment_samples(
    rendition: &CmafRendition,
    fragment: &Bytes,
    source_id: u32,
) -> Result<Vec<Bytes>, ExportError> {
    let samples = fragment_timed_samples(rendition, fragment, source_id, 0)?;
    Ok(samples.into_iter().map(|s| s.payload).collect())
}

/// `sample_is_non_sync_sample` in a sample's flags (ISO/IEC 14496-12 §8.8.3.1).
const NON_SYNC_SAMPLE: u32 = 0x0001_0000;

/// A sample cut from a fragment, with its timing in the track's timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CmafSample {
    /// The sample's bytes (shared with the fragment).
    pub payload: Bytes,
    /// Decode time: the `tfdt` plus the durations of the samples before it in its `traf`.
    pub dts: u64,
    /// Duration (trun entry, else `tfhd`, else `trex` default).
    pub duration: u32,
    /// Composition offset: presentation time minus decode time.
    pub cts: i64,
    /// A sync sample (its flags, else the run's first-sample flags, else the defaults, have
    /// `sample_is_non_sync_sample` clear).
    pub sync: bool,
}

impl CmafSample {
    /// End of the sample in decode time: where a following `traf` without `tfdt` starts.
    pub fn end(&self) -> u64 {
        self.dts.saturating_add(u64::from(self.duration))
    }
}

/// The samples of track `source_id` in a `moof`+`mdat` fragment, in decode order, with their
/// timing. A `traf` without a `tfdt` continues from the previous one of the track, the first from
/// `next_dts` (the end of the previous fragment's last sample).
pub(super) fn fragment_timed_samples(
    rendition: &CmafRendition,
    fragment: &Bytes,
    source_id: u32,
    next_dts: u64,
) -> Result<Vec<CmafSample>, ExportError> {
    let invalid = |reason: String| rendition.invalid(reason);
    let boxes = top_level_boxes(fragment).map_err(invalid)?;
    let mut samples = Vec::new();
    let mut next_dts = next_dts;
    for (index, b) in boxes.iter().enumerate() {
        if &b.kind != b"moof" {
            continue;
        }
        let moof = Moof::decode(&mut &fragment[b.start..b.end])
            .map_err(|e| invalid(format!("moof: {e}")))?;
        let mdat = boxes[index + 1..]
            .iter()
            .find(|m| &m.kind == b"mdat" || &m.kind == b"moof")
            .filter(|m| &m.kind == b"mdat")
            .ok_or_else(|| invalid("a moof without its mdat".into()))?;
        let mut previous_end: Option<usize> = None;
        for traf in &moof.traf {
            if traf.tfhd.base_data_offset.is_some() {
                return Err(invalid("tfhd base_data_offset is not supported".into()));
            }
            let track = rendition
                .track(traf.tfhd.track_id)
                .ok_or_else(|| invalid(format!("undeclared track {}", traf.tfhd.track_id)))?;
            let count: usize = traf.trun.iter().map(|t| t.samples.len()).sum();
            if count > MAX_SAMPLES {
                return Err(invalid(format!("{count} samples in one fragment")));
            }
            let wanted = traf.tfhd.track_id == source_id;
            let default_size = traf
                .tfhd
                .default_sample_size
                .unwrap_or(track.trex.default_sample_size);
            let default_duration = traf
                .tfhd
                .default_sample_duration
                .unwrap_or(track.trex.default_sample_duration);
            let default_flags = traf
                .tfhd
                .default_sample_flags
                .unwrap_or(track.trex.default_sample_flags);
            let mut dts = traf
                .tfdt
                .as_ref()
                .map_or(next_dts, |t| t.base_media_decode_time);
            let base = match previous_end {
                Some(end) if !traf.tfhd.default_base_is_moof => end,
                _ => b.start,
            };
            let mut position = base;
            for trun in &traf.trun {
                if let Some(offset) = trun.data_offset {
                    position = isize::try_from(offset)
                        .ok()
                        .and_then(|o| base.checked_add_signed(o))
                        .ok_or_else(|| invalid("trun data offset out of range".into()))?;
                }
                // The run's first-sample flags are in its first entry's flags.
                for entry in trun.samples.iter() {
                    let size = usize::try_from(entry.size.unwrap_or(default_size))
                        .map_err(|_| invalid("sample size".into()))?;
                    let end = position
                        .checked_add(size)
                        .filter(|end| position >= mdat.body && *end <= mdat.end)
                        .ok_or_else(|| invalid("sample data outside the mdat".into()))?;
                    if wanted {
                        let sample = CmafSample {
                            payload: fragment.slice(position..end),
                            dts,
                            duration: entry.duration.unwrap_or(default_duration),
                            cts: entry.cts.unwrap_or(0),
                            sync: entry.flags.unwrap_or(default_flags) & NON_SYNC_SAMPLE == 0,
                        };
                        dts = sample.end();
                        samples.push(sample);
                    }
                    position = end;
                }
            }
            if wanted {
                next_dts = dts;
            }
            previous_end = Some(position);
        }
    }
    Ok(samples)
}

/// A box: its four-character code, its byte range and where its body starts.
#[derive(Debug, Clone)]
struct BoxRange {
    kind: [u8; 4],
    start: usize,
    body: usize,
    end: usize,
}

/// The boxes laid end to end in `buf[start..end]`.
fn boxes_in(buf: &[u8], start: usize, end: usize) -> Result<Vec<BoxRange>, String> {
    let mut boxes = Vec::new();
    let mut at = start;
    while at < end {
        let rest = &buf[at..end];
        if rest.len() < 8 {
            return Err(format!("{} trailing bytes", rest.len()));
        }
        let size32 = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let kind = [rest[4], rest[5], rest[6], rest[7]];
        let (size, header) = match size32 {
            0 => (rest.len(), 8),
            1 => {
                if rest.len() < 16 {
                    return Err("truncated box size".into());
                }
                let mut large = [0u8; 8];
                large.copy_from_slice(&rest[8..16]);
                let size = usize::try_from(u64::from_be_bytes(large))
                    .map_err(|_| "box too large".to_string())?;
                (size, 16)
            }
            n => (n as usize, 8),
        };
        if size < header || size > rest.len() {
            return Err(format!(
                "box '{}' of {size} bytes with {} available",
                String::from_utf8_lossy(&kind),
                rest.len()
            ));
        }
        boxes.push(BoxRange {
            kind,
            start: at,
            body: at + header,
            end: at + size,
        });
        at += size;
    }
    Ok(boxes)
}

fn top_level_boxes(buf: &[u8]) -> Result<Vec<BoxRange>, String> {
    boxes_in(buf, 0, buf.len())
}

fn child_boxes(buf: &[u8], parent: &BoxRange) -> Result<Vec<BoxRange>, String> {
    boxes_in(buf, parent.body, parent.end)
}

fn get_u32(buf: &[u8], at: usize, end: usize) -> Result<u32, String> {
    match buf.get(at..at + 4) {
        Some(b) if at + 4 <= end => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        _ => Err("truncated box".into()),
    }
}

fn put_u32(buf: &mut [u8], at: usize, value: u32, end: usize) -> Result<(), String> {
    if at + 4 > end {
        return Err("truncated box".into());
    }
    match buf.get_mut(at..at + 4) {
        Some(b) => {
            b.copy_from_slice(&value.to_be_bytes());
            Ok(())
        }
        None => Err("truncated box".into()),
    }
}

/// A fragment read from a CMAF track.
#[derive(Debug)]
pub(super) struct CmafFrame {
    /// The first fragment of a group (starts with a keyframe).
    pub keyframe: bool,
    /// The `moof`+`mdat` bytes as published.
    pub payload: Bytes,
}

/// Reads a CMAF rendition's track in order, skipping to a newer group when more than its latency
/// target behind: the reader of [`crate::TrackConsumer`], with media times taken from each
/// fragment's `tfdt` (plus its first composition offset) instead of a legacy timestamp.
#[derive(Debug)]
pub(super) struct CmafReader {
    inner: SkippingReader<CmafRendition>,
}

impl CmafReader {
    /// Subscribe to `rendition`'s track; `from_oldest` starts at the oldest group still held.
    pub fn new(
        consumer: &BroadcastConsumer,
        rendition: CmafRendition,
        latency: Duration,
        from_oldest: bool,
    ) -> Self {
        let track = consumer
            .inner()
            .subscribe_track(&Track::new(rendition.name.as_str()));
        let mut inner = SkippingReader::new(track, rendition, latency);
        if from_oldest {
            inner.start_at_oldest();
        }
        Self { inner }
    }

    /// The rendition being read.
    pub fn rendition(&self) -> &CmafRendition {
        self.inner.decoder()
    }

    /// Start from the oldest group the track still holds instead of the latest (call before
    /// reading).
    pub fn start_at_oldest(&mut self) {
        self.inner.start_at_oldest();
    }

    /// Groups skipped because this reader fell behind or the group was abandoned.
    pub fn skipped(&self) -> u64 {
        self.inner.skipped()
    }

    /// The next fragment, or `None` once the track has ended.
    pub async fn read(&mut self) -> Result<Option<CmafFrame>, ExportError> {
        Ok(self.inner.read().await?.map(|frame| CmafFrame {
            keyframe: frame.keyframe,
            payload: frame.output,
        }))
    }
}

/// Fragments are returned as published; one without a media time is still returned but neither
/// moves the reader's position nor can be skipped to.
impl FrameDecoder for CmafRendition {
    type Output = Bytes;

    fn decode(&self, payload: Bytes) -> Result<(Option<u64>, Bytes), crate::Error> {
        Ok((self.timestamp(&payload), payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{
        Encode, Mdhd, Mdia, Mfhd, Moov, Mvex, Mvhd, Tfdt, Tfhd, Tkhd, Traf, Trun, TrunEntry,
        TrunSamples,
    };
    use proptest::prelude::*;

    fn init(track_id: u32, timescale: u32) -> Bytes {
        let moov = Moov {
            mvhd: Mvhd {
                timescale: 1000,
                ..Default::default()
            },
            mvex: Some(Mvex {
                mehd: None,
                trex: vec![Trex {
                    track_id,
                    default_sample_description_index: 1,
                    default_sample_size: 3,
                    ..Default::default()
                }],
            }),
            trak: vec![Trak {
                tkhd: Tkhd {
                    track_id,
                    ..Default::default()
                },
                mdia: Mdia {
                    mdhd: Mdhd {
                        timescale,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        moov.encode(&mut buf).unwrap();
        buf.freeze()
    }

    fn fragment(track_id: u32, dts: u64, base_data_offset: Option<u64>) -> Bytes {
        let moof = |offset: i32| Moof {
            mfhd: Mfhd { sequence_number: 7 },
            traf: vec![Traf {
                tfhd: Tfhd {
                    track_id,
                    base_data_offset,
                    default_base_is_moof: base_data_offset.is_none(),
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: dts,
                }),
                trun: vec![Trun {
                    data_offset: Some(offset),
                    samples: TrunSamples::Explicit(vec![
                        TrunEntry {
                            size: Some(2),
                            cts: Some(0),
                            ..Default::default()
                        },
                        TrunEntry {
                            size: Some(3),
                            cts: Some(0),
                            ..Default::default()
                        },
                    ]),
                }],
                ..Default::default()
            }],
        };
        let mut sized = BytesMut::new();
        moof(0).encode(&mut sized).unwrap();
        let mut buf = BytesMut::new();
        moof(sized.len() as i32 + 8).encode(&mut buf).unwrap();
        buf.extend_from_slice(&[0, 0, 0, 13, b'm', b'd', b'a', b't', 1, 2, 3, 4, 5]);
        buf.freeze()
    }

    #[test]
    fn rewrites_track_ids_and_sequence_in_place() {
        let mut rendition = CmafRendition::parse("v", &init(5, 90_000)).unwrap();
        rendition.tracks[0].id = 2;
        let input = fragment(5, 180_000, None);
        assert_eq!(rendition.timestamp(&input), Some(2_000_000));
        let mut sequence = 40;
        let output = rendition.rewrite(&input, &mut sequence).unwrap();
        assert_eq!((output.len(), sequence), (input.len(), 41));
        let moof = Moof::decode(&mut &output[..]).unwrap();
        assert_eq!(moof.mfhd.sequence_number, 41);
        assert_eq!(moof.traf[0].tfhd.track_id, 2);
        let samples = fragment_samples(&rendition, &output, 5).unwrap_err();
        assert!(matches!(samples, ExportError::InvalidFrame { .. }));
        let samples = fragment_samples(&rendition, &input, 5).unwrap();
        assert_eq!(samples, [&[1u8, 2][..], &[3, 4, 5]]);

        let (trak, trex) = rendition.traks(1000).remove(0);
        assert_eq!((trak.tkhd.track_id, trex.track_id), (2, 2));
        assert_eq!(trex.default_sample_size, 3);
    }

    #[test]
    fn refuses_what_cannot_be_relocated() {
        let rendition = CmafRendition::parse("v", &init(1, 1000)).unwrap();
        let mut sequence = 0;
        for bad in [
            fragment(1, 0, Some(100)),
            fragment(9, 0, None),
            Bytes::from_static(b"\0\0\0\x08mdat"),
            Bytes::new(),
        ] {
            assert!(matches!(
                rendition.rewrite(&bad, &mut sequence),
                Err(ExportError::InvalidFrame { .. })
            ));
        }
        let good = fragment(1, 0, None);
        assert!(rendition
            .rewrite(&good[..good.len() - 1], &mut sequence)
            .is_err());
        assert!(CmafRendition::parse("v", b"\0\0\0\x08free").is_err());
        assert!(CmafRendition::parse("v", b"garbage").is_err());
    }

    /// The browser demuxer's fixtures (real ffmpeg CMAF, js/packages/hang/test/fixtures): the
    /// init segment before the first `moof`, then each `moof`+`mdat`.
    fn ffmpeg_fixture(file: &[u8]) -> (Bytes, Vec<Bytes>) {
        let file = Bytes::copy_from_slice(file);
        let boxes = top_level_boxes(&file).unwrap();
        let first = boxes.iter().position(|b| &b.kind == b"moof").unwrap();
        let fragments = boxes[first..]
            .chunks(2)
            .map(|pair| file.slice(pair[0].start..pair[1].end))
            .collect();
        (file.slice(..boxes[first].start), fragments)
    }

    /// The same samples and times as js/packages/hang/test/fmp4.test.ts reads from these files.
    #[test]
    fn ffmpeg_fixtures_agree_with_the_browser_demuxer() {
        /// File, timescale, sample sizes, each fragment's first presentation time (µs).
        type Case = (&'static [u8], u64, &'static [usize], &'static [u64]);
        let cases: [Case; 3] = [
            (
                include_bytes!("../../../../js/packages/hang/test/fixtures/h264.mp4"),
                15360,
                &[3055, 536, 212],
                &[0],
            ),
            (
                include_bytes!("../../../../js/packages/hang/test/fixtures/aac.mp4"),
                48000,
                &[86, 124, 93, 65],
                &[0],
            ),
            (
                include_bytes!("../../../../js/packages/hang/test/fixtures/opus.mp4"),
                48000,
                &[89, 62, 62, 54],
                &[0, 20_000, 40_000, 60_000],
            ),
        ];
        for (file, timescale, sizes, times) in cases {
            let (init, fragments) = ffmpeg_fixture(file);
            let mut rendition = CmafRendition::parse("r", &init).unwrap();
            assert_eq!(rendition.tracks[0].timescale, timescale);
            rendition.tracks[0].id = 7;
            let source = rendition.tracks[0].source_id;
            let mut got = Vec::new();
            let mut sequence = 41;
            for (fragment, time) in fragments.iter().zip(times) {
                assert_eq!(rendition.timestamp(fragment), Some(*time));
                got.extend(fragment_samples(&rendition, fragment, source).unwrap());
                let rewritten = rendition.rewrite(fragment, &mut sequence).unwrap();
                assert_eq!(rewritten.len(), fragment.len());
                let moof = Moof::decode(&mut &rewritten[..]).unwrap();
                assert_eq!(
                    (moof.mfhd.sequence_number, moof.traf[0].tfhd.track_id),
                    (sequence, 7)
                );
            }
            let got: Vec<usize> = got.iter().map(Bytes::len).collect();
            assert_eq!(got, sizes);
            // Every cut of a real fragment is refused or read, never a panic.
            let fragment = &fragments[0];
            for cut in 0..fragment.len() {
                let cut = fragment.slice(..cut);
                assert!(rendition.rewrite(&cut, &mut sequence).is_err());
                let _ = fragment_samples(&rendition, &cut, source);
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_mutated_fragments(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
        ) {
            let mut rendition = CmafRendition::parse("v", &init(1, 1000)).unwrap();
            rendition.tracks[0].id = 3;
            let mut bytes = fragment(1, 5, None).to_vec();
            for (at, value) in edits {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let bytes = Bytes::from(bytes);
            let mut sequence = 0;
            let _ = rendition.rewrite(&bytes, &mut sequence);
            let _ = rendition.timestamp(&bytes);
            let _ = fragment_samples(&rendition, &bytes, 1);
        }

        #[test]
        fn never_panics_on_mutated_inits(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        ) {
            let mut bytes = init(1, 1000).to_vec();
            for (at, value) in edits {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            if let Ok(rendition) = CmafRendition::parse("v", &bytes) {
                let _ = rendition.traks(1000);
            }
        }
    }
}
