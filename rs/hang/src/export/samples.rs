//! A per-sample reader over any known container, for a player that feeds a decoder one sample at
//! a time.
//!
//! - Legacy container: every frame is a sample; the configuration comes from the catalog.
//! - CMAF container: every fragment is cut into its samples, each with its own presentation time
//!   (`tfdt` + the durations before it + its composition offset, in µs) and sync flag; the
//!   configuration record comes from the init segment's sample entry. Edit lists are ignored:
//!   times are the track's media times as the fragments state them.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mp4_atom::{Atom, Codec, FourCC, Trak};

use super::cmaf::{fragment_timed_samples, CmafReader, CmafRendition};
use super::ExportError;
use crate::catalog::{AudioConfig, Container, VideoConfig};
use crate::{BroadcastConsumer, Frame, TrackConsumer};

/// What a decoder needs besides the samples: the codec string and the configuration record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleConfig {
    /// The WebCodecs codec string of the catalog (`avc1.64001f`, `mp4a.40.2`, ...).
    pub codec: String,
    /// The configuration record: for a legacy rendition the catalog's `description`; for a CMAF
    /// rendition the avcC/hvcC body (the bytes after the box header, as a legacy `description`)
    /// for H.264/H.265, the esds AudioSpecificConfig for AAC, `None` for other codecs.
    pub description: Option<Bytes>,
}

/// Reads one rendition (legacy or CMAF container) sample by sample in decode order, skipping to
/// a newer group when more than its latency target behind (as [`crate::TrackConsumer`]).
#[derive(Debug)]
pub struct SampleReader {
    config: SampleConfig,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Legacy(TrackConsumer),
    Cmaf(CmafSamples),
}

impl SampleReader {
    /// Subscribe to video rendition `name` (legacy or CMAF container; `config`'s container
    /// decides). For CMAF, `description` comes from the init segment's sample entry (see
    /// [`SampleConfig`]).
    ///
    /// `latency` is how far behind the newest group the reader may fall before it skips ahead
    /// (`Duration::MAX`: never skip). A LOC or unknown container is [`ExportError::Unsupported`],
    /// as is a CMAF init that does not parse.
    pub fn video(
        consumer: &BroadcastConsumer,
        name: &str,
        config: &VideoConfig,
        latency: Duration,
    ) -> Result<Self, ExportError> {
        Self::new(
            consumer,
            name,
            &config.container,
            SampleConfig {
                codec: config.codec.clone(),
                description: config.description.clone(),
            },
            b"vide",
            latency,
        )
    }

    /// Subscribe to audio rendition `name`; as [`Self::video`].
    pub fn audio(
        consumer: &BroadcastConsumer,
        name: &str,
        config: &AudioConfig,
        latency: Duration,
    ) -> Result<Self, ExportError> {
        Self::new(
            consumer,
            name,
            &config.container,
            SampleConfig {
                codec: config.codec.clone(),
                description: config.description.clone(),
            },
            b"soun",
            latency,
        )
    }

    fn new(
        consumer: &BroadcastConsumer,
        name: &str,
        container: &Container,
        catalog: SampleConfig,
        handler: &[u8; 4],
        latency: Duration,
    ) -> Result<Self, ExportError> {
        match container {
            Container::Legacy => Ok(Self {
                config: catalog,
                source: Source::Legacy(consumer.subscribe(name, latency)),
            }),
            Container::Cmaf { init } => {
                let rendition = CmafRendition::parse(name, init)?;
                // The track of the rendition's kind (an init normally holds just that one).
                let track = rendition
                    .tracks
                    .iter()
                    .find(|t| t.trak.mdia.hdlr.handler == FourCC::new(handler))
                    .or_else(|| rendition.tracks.first())
                    .ok_or_else(|| ExportError::Unsupported {
                        track: name.to_string(),
                        reason: "CMAF init without a track".into(),
                    })?;
                let config = SampleConfig {
                    codec: catalog.codec,
                    description: description(&track.trak)?,
                };
                let source_id = track.source_id;
                Ok(Self {
                    config,
                    source: Source::Cmaf(CmafSamples {
                        reader: CmafReader::new(consumer, rendition, latency, false),
                        source_id,
                        queue: VecDeque::new(),
                        next_dts: 0,
                    }),
                })
            }
            Container::Loc | Container::Unknown(_) => Err(ExportError::Unsupported {
                track: name.to_string(),
                reason: "only legacy and CMAF containers can be read sample by sample".into(),
            }),
        }
    }

    /// The codec string and configuration record for the decoder.
    pub fn config(&self) -> &SampleConfig {
        &self.config
    }

    /// Start at the oldest group still held instead of the latest (call before reading).
    pub fn start_at_oldest(&mut self) {
        match &mut self.source {
            Source::Legacy(track) => track.start_at_oldest(),
            Source::Cmaf(cmaf) => cmaf.reader.start_at_oldest(),
        }
    }

    /// The next sample in decode order, or `None` when the track ends. Cancel-safe between
    /// samples.
    ///
    /// `timestamp` is the presentation time in µs (for CMAF, the media time from the fragment's
    /// `tfdt`, durations and composition offsets; the init's edit list is not applied);
    /// `keyframe` is set on the first sample of each group and, for CMAF, on every sync sample.
    /// A frame or fragment that does not parse is an error; the reader stays usable and continues
    /// with the next one.
    pub async fn read(&mut self) -> Result<Option<Frame>, ExportError> {
        match &mut self.source {
            Source::Legacy(track) => Ok(track.read().await?),
            Source::Cmaf(cmaf) => cmaf.read().await,
        }
    }

    /// Groups skipped because the reader fell behind its latency target (or the group was
    /// abandoned upstream).
    pub fn skipped(&self) -> u64 {
        match &self.source {
            Source::Legacy(track) => track.skipped(),
            Source::Cmaf(cmaf) => cmaf.reader.skipped(),
        }
    }
}

/// The decoder configuration record in a CMAF track's first sample entry.
fn description(trak: &Trak) -> Result<Option<Bytes>, ExportError> {
    fn body(atom: &impl Atom) -> Result<Option<Bytes>, ExportError> {
        let mut buf = BytesMut::new();
        atom.encode_body(&mut buf)?;
        Ok(Some(buf.freeze()))
    }
    match trak.mdia.minf.stbl.stsd.codecs.first() {
        Some(Codec::Avc1(avc1)) => body(&avc1.avcc),
        Some(Codec::Avc3(avc3)) => body(&avc3.avcc),
        Some(Codec::Hvc1(hvc1)) => body(&hvc1.hvcc),
        Some(Codec::Hev1(hev1)) => body(&hev1.hvcc),
        Some(Codec::Mp4a(mp4a)) => Ok(mp4a
            .esds
            .es_desc
            .dec_config
            .dec_specific
            .as_ref()
            .filter(|specific| !specific.raw.is_empty())
            .map(|specific| Bytes::copy_from_slice(&specific.raw))),
        _ => Ok(None),
    }
}

/// A CMAF track read fragment by fragment, handed out sample by sample.
#[derive(Debug)]
struct CmafSamples {
    reader: CmafReader,
    /// The track of the rendition's init being read.
    source_id: u32,
    /// The samples of the last fragment not yet returned.
    queue: VecDeque<Frame>,
    /// Decode time after the last sample cut: where a fragment without `tfdt` starts.
    next_dts: u64,
}

impl CmafSamples {
    async fn read(&mut self) -> Result<Option<Frame>, ExportError> {
        loop {
            if let Some(frame) = self.queue.pop_front() {
                return Ok(Some(frame));
            }
            // The only wait; once a fragment is here the rest is synchronous, so a cancelled
            // call loses nothing.
            let Some(fragment) = self.reader.read().await? else {
                return Ok(None);
            };
            let rendition = self.reader.rendition();
            let samples = fragment_timed_samples(
                rendition,
                &fragment.payload,
                self.source_id,
                self.next_dts,
            )?;
            let frames = samples
                .iter()
                .enumerate()
                .map(|(index, sample)| {
                    let timestamp = rendition
                        .micros(self.source_id, sample.dts, sample.cts)
                        .ok_or_else(|| ExportError::InvalidFrame {
                            track: rendition.name.clone(),
                            reason: format!("sample time {} out of range", sample.dts),
                        })?;
                    Ok(Frame {
                        timestamp,
                        // A group starts with a keyframe whatever its flags say.
                        keyframe: sample.sync || (fragment.keyframe && index == 0),
                        payload: sample.payload.clone(),
                    })
                })
                .collect::<Result<Vec<_>, ExportError>>()?;
            if let Some(last) = samples.last() {
                self.next_dts = last.end();
            }
            self.queue.extend(frames);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BroadcastProducer;
    use mp4_atom::{
        Decode, Encode, Hdlr, Mdhd, Mdia, Mfhd, Moof, Moov, Mvex, Mvhd, Tfdt, Tfhd, Tkhd, Traf,
        Trex, Trun, TrunEntry, TrunSamples,
    };

    const NON_SYNC: u32 = 0x0101_0000;
    const SYNC: u32 = 0x0200_0000;

    #[tokio::test]
    async fn legacy_samples_and_catalog_description() {
        let mut broadcast = BroadcastProducer::new();
        let video_config = VideoConfig {
            codec: "avc1.64001f".into(),
            description: Some(Bytes::from_static(&[1, 0x64, 0, 0x1f])),
            ..Default::default()
        };
        let mut video = broadcast.add_video(video_config.clone());
        let audio_config = AudioConfig {
            codec: "opus".into(),
            sample_rate: 48000,
            number_of_channels: 2,
            ..Default::default()
        };
        let mut audio = broadcast.add_audio(audio_config.clone());
        let consumer = broadcast.consume();

        let mut reader =
            SampleReader::video(&consumer, "video0", &video_config, Duration::MAX).unwrap();
        reader.start_at_oldest();
        assert_eq!(
            reader.config(),
            &SampleConfig {
                codec: "avc1.64001f".into(),
                description: video_config.description.clone(),
            }
        );
        let mut audio_reader =
            SampleReader::audio(&consumer, "audio1", &audio_config, Duration::MAX).unwrap();
        audio_reader.start_at_oldest();
        assert_eq!(audio_reader.config().description, None);

        let frames = [(0, true), (66, false), (33, false), (100, true)].map(|(ts, key)| Frame {
            timestamp: ts,
            keyframe: key,
            payload: Bytes::from(vec![ts as u8; 3]),
        });
        for frame in &frames {
            video.write(frame.clone()).unwrap();
        }
        for timestamp in [0, 20, 40, 60] {
            let payload = Bytes::from_static(b"opus");
            audio
                .write(Frame {
                    timestamp,
                    keyframe: false,
                    payload,
                })
                .unwrap();
        }
        video.finish();
        audio.finish();

        let mut got = Vec::new();
        while let Some(frame) = reader.read().await.unwrap() {
            got.push(frame);
        }
        assert_eq!(got, frames);
        assert_eq!(reader.skipped(), 0);
        let mut got = Vec::new();
        while let Some(frame) = audio_reader.read().await.unwrap() {
            got.push((frame.timestamp, frame.keyframe));
        }
        // Every audio frame is its own group: all keyframes.
        assert_eq!(got, [(0, true), (20, true), (40, true), (60, true)]);
    }

    #[tokio::test]
    async fn other_containers_are_unsupported() {
        let broadcast = BroadcastProducer::new();
        for container in [
            Container::Loc,
            Container::Unknown(serde_json::json!({"kind": "future"})),
            Container::Cmaf {
                init: Bytes::from_static(b"garbage"),
            },
        ] {
            let config = VideoConfig {
                codec: "vp8".into(),
                container,
                ..Default::default()
            };
            assert!(matches!(
                SampleReader::video(&broadcast.consume(), "v", &config, Duration::MAX),
                Err(ExportError::Unsupported { .. })
            ));
        }
    }

    /// An init of one video track (ID 1, 90 kHz) whose defaults are 3000-tick, 4-byte,
    /// non-sync samples.
    fn init() -> Bytes {
        let moov = Moov {
            mvhd: Mvhd {
                timescale: 1000,
                ..Default::default()
            },
            mvex: Some(Mvex {
                mehd: None,
                trex: vec![Trex {
                    track_id: 1,
                    default_sample_description_index: 1,
                    default_sample_duration: 3000,
                    default_sample_size: 4,
                    default_sample_flags: NON_SYNC,
                }],
            }),
            trak: vec![Trak {
                tkhd: Tkhd {
                    track_id: 1,
                    ..Default::default()
                },
                mdia: Mdia {
                    mdhd: Mdhd {
                        timescale: 90_000,
                        ..Default::default()
                    },
                    hdlr: Hdlr {
                        handler: FourCC::new(b"vide"),
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

    /// A `moof`+`mdat` of track 1 whose samples are `sizes` bytes of their index + `tag`.
    fn fragment(
        tfhd: Tfhd,
        tfdt: Option<u64>,
        samples: TrunSamples,
        sizes: &[usize],
        tag: u8,
    ) -> Bytes {
        let moof = |offset: i32| Moof {
            mfhd: Mfhd { sequence_number: 1 },
            traf: vec![Traf {
                tfhd: Tfhd {
                    track_id: 1,
                    default_base_is_moof: true,
                    ..tfhd.clone()
                },
                tfdt: tfdt.map(|base_media_decode_time| Tfdt {
                    base_media_decode_time,
                }),
                trun: vec![Trun {
                    data_offset: Some(offset),
                    samples: samples.clone(),
                }],
                ..Default::default()
            }],
        };
        let mut sized = BytesMut::new();
        moof(0).encode(&mut sized).unwrap();
        let mut buf = BytesMut::new();
        moof(sized.len() as i32 + 8).encode(&mut buf).unwrap();
        let data: Vec<u8> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, size)| std::iter::repeat_n(tag + i as u8, *size))
            .collect();
        buf.extend_from_slice(&(data.len() as u32 + 8).to_be_bytes());
        buf.extend_from_slice(b"mdat");
        buf.extend_from_slice(&data);
        buf.freeze()
    }

    fn entry(size: u32, duration: Option<u32>, flags: Option<u32>, cts: i64) -> TrunEntry {
        TrunEntry {
            duration,
            size: Some(size),
            flags,
            cts: Some(cts),
        }
    }

    /// Publish `groups` of fragments on `name` of `broadcast`; the track is to be finished once
    /// the reader has subscribed.
    fn publish(
        broadcast: &BroadcastProducer,
        name: &str,
        groups: &[&[Bytes]],
    ) -> moq_lite::TrackProducer {
        let track = broadcast
            .inner()
            .create_track(moq_lite::Track::new(name), crate::media_track_info());
        for (index, fragments) in groups.iter().enumerate() {
            let mut group = track.append_group().unwrap();
            for fragment in *fragments {
                group.write_frame(index as u64, fragment.clone()).unwrap();
            }
            group.finish();
        }
        track
    }

    async fn read_all(reader: &mut SampleReader) -> Vec<(u64, bool, Bytes)> {
        let mut got = Vec::new();
        while let Some(frame) = reader.read().await.unwrap() {
            got.push((frame.timestamp, frame.keyframe, frame.payload));
        }
        got
    }

    #[tokio::test]
    async fn cmaf_samples_carry_their_own_times_and_sync_flags() {
        // Group 1, fragment 1: I P B with the tfhd's 3000-tick duration, the run's first-sample
        // flags (sync) and the trex's non-sync default for the rest.
        let first = fragment(
            Tfhd {
                default_sample_duration: Some(3000),
                ..Default::default()
            },
            Some(0),
            TrunSamples::Explicit(vec![
                entry(5, None, Some(SYNC), 3000),
                entry(3, None, None, 9000),
                entry(2, None, None, 0),
            ]),
            &[5, 3, 2],
            10,
        );
        // Group 1, fragment 2: per-entry durations and flags (a sync sample mid-fragment) and a
        // negative composition offset.
        let second = fragment(
            Tfhd::default(),
            Some(9000),
            TrunSamples::Explicit(vec![
                entry(1, Some(3000), Some(NON_SYNC), 3000),
                entry(2, Some(3000), Some(SYNC), 3000),
                entry(3, Some(1500), Some(NON_SYNC), -1500),
            ]),
            &[1, 2, 3],
            20,
        );
        // Group 2: no tfdt (continues at 16500), every field from the trex: non-sync, yet the
        // first sample of a group is a keyframe.
        let third = fragment(
            Tfhd::default(),
            None,
            TrunSamples::Inherited {
                count: 2,
                first_flags: None,
            },
            &[4, 4],
            30,
        );

        let broadcast = BroadcastProducer::new();
        let config = VideoConfig {
            codec: "avc1.64001f".into(),
            container: Container::Cmaf { init: init() },
            ..Default::default()
        };
        let track = publish(&broadcast, "v", &[&[first, second], &[third]]);
        let mut reader =
            SampleReader::video(&broadcast.consume(), "v", &config, Duration::MAX).unwrap();
        reader.start_at_oldest();
        track.finish();
        assert_eq!(
            reader.config(),
            &SampleConfig {
                codec: "avc1.64001f".into(),
                description: None
            }
        );

        let us = |ticks: u64| ticks * 1_000_000 / 90_000;
        let bytes = |value: u8, size: usize| Bytes::from(vec![value; size]);
        assert_eq!(
            read_all(&mut reader).await,
            [
                (us(3000), true, bytes(10, 5)),
                (us(12000), false, bytes(11, 3)),
                (us(6000), false, bytes(12, 2)),
                (us(12000), false, bytes(20, 1)),
                (us(15000), true, bytes(21, 2)),
                (us(13500), false, bytes(22, 3)),
                (us(16500), true, bytes(30, 4)),
                (us(19500), false, bytes(31, 4)),
            ]
        );
        assert_eq!(reader.skipped(), 0);
    }

    /// The init before the first `moof` of an ffmpeg CMAF fixture (js/packages/hang/test/fixtures),
    /// then each `moof`+`mdat`.
    fn fixture(file: &[u8]) -> (Bytes, Vec<Bytes>) {
        let file = Bytes::copy_from_slice(file);
        let mut boxes = Vec::new();
        let mut at = 0;
        while at < file.len() {
            let size = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            boxes.push((file.slice(at + 4..at + 8), at, at + size));
            at += size;
        }
        let first = boxes.iter().position(|b| &b.0[..] == b"moof").unwrap();
        let fragments = boxes[first..]
            .chunks(2)
            .map(|pair| file.slice(pair[0].1..pair[1].2))
            .collect();
        (file.slice(..boxes[first].1), fragments)
    }

    #[tokio::test]
    async fn cmaf_fixtures_give_the_sample_entry_description_and_sample_times() {
        // H.264 with a B-frame: one fragment of three samples (as the browser demuxer reads it,
        // js/packages/hang/test/fmp4.test.ts, with times rounded down).
        let (init, fragments) = fixture(include_bytes!(
            "../../../../js/packages/hang/test/fixtures/h264.mp4"
        ));
        let mut moov_bytes = &init[..];
        mp4_atom::Ftyp::decode(&mut moov_bytes).unwrap();
        let moov = Moov::decode(&mut moov_bytes).unwrap();
        let Codec::Avc1(avc1) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not avc1");
        };
        let mut avcc = BytesMut::new();
        avc1.avcc.encode_body(&mut avcc).unwrap();

        let broadcast = BroadcastProducer::new();
        let config = VideoConfig {
            codec: "avc1.64000b".into(),
            container: Container::Cmaf { init },
            ..Default::default()
        };
        let track = publish(&broadcast, "v", &[&fragments]);
        let mut reader =
            SampleReader::video(&broadcast.consume(), "v", &config, Duration::MAX).unwrap();
        reader.start_at_oldest();
        track.finish();
        assert_eq!(reader.config().description, Some(avcc.freeze()));
        assert_eq!(reader.config().codec, "avc1.64000b");
        let got: Vec<_> = read_all(&mut reader)
            .await
            .into_iter()
            .map(|(timestamp, keyframe, payload)| (timestamp, keyframe, payload.len()))
            .collect();
        assert_eq!(
            got,
            [(0, true, 3055), (66_666, false, 536), (33_333, false, 212)]
        );

        // AAC: the esds AudioSpecificConfig; four 1024-sample frames in one fragment.
        let (init, fragments) = fixture(include_bytes!(
            "../../../../js/packages/hang/test/fixtures/aac.mp4"
        ));
        let config = AudioConfig {
            codec: "mp4a.40.2".into(),
            sample_rate: 48000,
            number_of_channels: 2,
            container: Container::Cmaf { init },
            ..Default::default()
        };
        let track = publish(&broadcast, "a", &[&fragments]);
        let mut reader =
            SampleReader::audio(&broadcast.consume(), "a", &config, Duration::MAX).unwrap();
        reader.start_at_oldest();
        track.finish();
        assert_eq!(
            reader.config().description.as_deref(),
            Some(&[0x11, 0x90, 0x56, 0xe5, 0x00][..])
        );
        let got: Vec<_> = read_all(&mut reader)
            .await
            .into_iter()
            .map(|(timestamp, keyframe, payload)| (timestamp, keyframe, payload.len()))
            .collect();
        assert_eq!(
            got,
            [
                (0, true, 86),
                (21_333, true, 124),
                (42_666, true, 93),
                (64_000, true, 65)
            ]
        );
    }
}
