//! Raw H.264 Annex-B export of one rendition.
//!
//! Length-prefixed frames (a rendition with an avcC `description`) are rewritten with 4-byte start
//! codes, and the SPS/PPS of the avcC are put in front of every keyframe so a decoder can start at
//! any group; Annex-B frames (no description) are written as they are. A CMAF rendition's
//! fragments are cut into samples and written the same way, with the avcC of its init segment
//! (parameter sets in front of every IDR access unit and of each group's first one).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use mp4_atom::Avcc;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::cmaf::{fragment_samples, CmafReader, CmafRendition};
use super::{decode_avcc, length_prefixed_nals, ExportError, START_CODE};
use crate::abr::AbrConfig;
use crate::catalog::Container;
use crate::{AbrReader, BroadcastConsumer};
use tokio::sync::watch;

/// Writes the first H.264 rendition of a hang broadcast as an Annex-B byte stream.
#[derive(Debug)]
#[must_use = "call run() to export"]
pub struct AnnexBExporter {
    consumer: BroadcastConsumer,
    latency: Duration,
    from_oldest: bool,
    abr: Option<(AbrConfig, Option<watch::Receiver<u64>>)>,
    /// Where adaptive bitrate keeps the end-to-end latency (ms) of the newest frame written.
    latency_gauge: Option<Arc<AtomicI64>>,
}

impl AnnexBExporter {
    /// Export the first `avc1`/`avc3` rendition (legacy or CMAF container), never skipping,
    /// joining at the latest group.
    pub fn new(consumer: BroadcastConsumer) -> Self {
        Self {
            consumer,
            latency: Duration::MAX,
            from_oldest: false,
            abr: None,
            latency_gauge: None,
        }
    }

    /// With [`Self::abr`]: keep the end-to-end latency (ms, from the catalog clock) of the newest
    /// frame written in `gauge`, for statistics (a separate reader would pull a rendition of its
    /// own over the link).
    pub fn latency_gauge(mut self, gauge: Arc<AtomicI64>) -> Self {
        self.latency_gauge = Some(gauge);
        self
    }

    /// Adaptive bitrate: when the catalog has several legacy H.264 renditions, write the one the
    /// link carries ([`AbrReader`]), switching at keyframes (each group carries its parameter
    /// sets, so the stream simply changes size). `probe` brings a peer's estimates of what it
    /// could send (the relay's PROBE reports), which are what lets the choice move up.
    pub fn abr(mut self, config: AbrConfig, probe: Option<watch::Receiver<u64>>) -> Self {
        self.abr = Some((config, probe));
        self
    }

    /// Skip to a newer group when more than `latency` behind.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Start at the oldest group the track still holds instead of the latest.
    pub fn start_at_oldest(mut self) -> Self {
        self.from_oldest = true;
        self
    }

    /// Write access units to `out` until the track ends.
    pub async fn run(self, mut out: impl AsyncWrite + Unpin) -> Result<(), ExportError> {
        let catalog = self
            .consumer
            .catalog()
            .next()
            .await?
            .ok_or(ExportError::NoCatalog)?;
        let (name, config) = catalog
            .video_renditions()
            .find(|(_, c)| {
                (c.codec.starts_with("avc1") || c.codec.starts_with("avc3"))
                    && matches!(c.container, Container::Legacy | Container::Cmaf { .. })
            })
            .ok_or_else(|| ExportError::NothingToExport("no H.264 rendition".into()))?;
        let unsupported = |reason: String| ExportError::Unsupported {
            track: name.clone(),
            reason,
        };
        let invalid = |reason: String| ExportError::InvalidFrame {
            track: name.clone(),
            reason,
        };

        let legacy_h264 = catalog
            .video_renditions()
            .filter(|(_, c)| {
                (c.codec.starts_with("avc1") || c.codec.starts_with("avc3"))
                    && matches!(c.container, Container::Legacy)
            })
            .count();
        if let (Some((abr, probe)), true) = (self.abr.clone(), legacy_h264 > 1) {
            return self.run_abr(&catalog, abr, probe, out).await;
        }

        if let Container::Cmaf { init } = &config.container {
            // The avcC of the init's sample entry gives the NAL length size and parameter sets.
            let rendition = CmafRendition::parse(name, init)?;
            let (source_id, avcc) = rendition
                .avcc()
                .ok_or_else(|| unsupported("no H.264 sample entry in the CMAF init".into()))?;
            let (length_size, parameter_sets) = parameter_sets(&avcc);
            let mut reader =
                CmafReader::new(&self.consumer, rendition, self.latency, self.from_oldest);
            while let Some(frame) = reader.read().await? {
                let samples = fragment_samples(reader.rendition(), &frame.payload, source_id)?;
                let mut buf = BytesMut::with_capacity(frame.payload.len() + parameter_sets.len());
                for (index, sample) in samples.iter().enumerate() {
                    let nals = length_prefixed_nals(sample, length_size).map_err(invalid)?;
                    let idr = nals
                        .iter()
                        .any(|n| n.first().is_some_and(|b| b & 0x1f == 5));
                    if idr || (frame.keyframe && index == 0) {
                        buf.put_slice(&parameter_sets);
                    }
                    put_annexb(&mut buf, &nals);
                }
                out.write_all(&buf).await?;
                out.flush().await?;
            }
            return Ok(());
        }

        // With an avcC: its NAL length size and its parameter sets, as Annex-B.
        let avcc = match &config.description {
            Some(description) => Some(parameter_sets(
                &decode_avcc(description).map_err(unsupported)?,
            )),
            None => None,
        };

        let mut track = self.consumer.subscribe(name, self.latency);
        if self.from_oldest {
            track.start_at_oldest();
        }
        let mut report = OutputReport::new();
        while let Some(frame) = track.read().await? {
            let annexb = legacy_annexb(&frame, avcc.as_ref()).map_err(invalid)?;
            out.write_all(&annexb).await?;
            out.flush().await?;
            report.written(name, track.skipped(), None, 0);
        }
        Ok(())
    }
}

impl AnnexBExporter {
    /// The adaptive-bitrate export: every legacy H.264 rendition is a candidate.
    async fn run_abr(
        self,
        catalog: &crate::catalog::Catalog,
        config: AbrConfig,
        mut probe: Option<watch::Receiver<u64>>,
        mut out: impl AsyncWrite + Unpin,
    ) -> Result<(), ExportError> {
        // Each rendition's NAL length size and parameter sets, when it has an avcC.
        let mut avcc = std::collections::HashMap::new();
        for (name, config) in catalog.video_renditions() {
            if let Some(description) = &config.description {
                let record =
                    decode_avcc(description).map_err(|reason| ExportError::Unsupported {
                        track: name.clone(),
                        reason,
                    })?;
                avcc.insert(name.clone(), parameter_sets(&record));
            }
        }
        let Some(mut reader) =
            AbrReader::new(self.consumer.clone(), catalog, self.latency, config, None)
        else {
            return Err(ExportError::NothingToExport(
                "no legacy H.264 rendition".into(),
            ));
        };
        let mut report = OutputReport::new();
        loop {
            let next = match probe.as_mut() {
                Some(rx) => tokio::select! {
                    biased;
                    changed = rx.changed() => {
                        match changed {
                            Ok(()) => reader.set_probe(*rx.borrow_and_update()),
                            // The reports ended (an older peer, or the session): read on.
                            Err(_) => probe = None,
                        }
                        continue;
                    }
                    next = reader.read() => next,
                },
                None => reader.read().await,
            };
            let Some(abr_frame) = next? else {
                return Ok(());
            };
            if abr_frame.switched {
                tracing::info!(rendition = %abr_frame.rendition, estimate = ?reader.estimate(), "now writing");
            }
            let frame = abr_frame.frame;
            if let (Some(gauge), Some(wall)) = (&self.latency_gauge, catalog.clock()) {
                let behind = crate::catalog::age_us(wall, frame.timestamp);
                gauge.store(behind / 1000, Ordering::Relaxed);
            }
            let annexb =
                legacy_annexb(&frame, avcc.get(&abr_frame.rendition)).map_err(|reason| {
                    ExportError::InvalidFrame {
                        track: abr_frame.rendition.clone(),
                        reason,
                    }
                })?;
            out.write_all(&annexb).await?;
            out.flush().await?;
            report.written(
                &abr_frame.rendition,
                reader.skipped(),
                reader.estimate(),
                reader.switches(),
            );
        }
    }
}

/// Once a second, an `output` log line: what the output got (the rendition, frames written, the
/// longest pause between two, groups skipped) and, with adaptive bitrate, the estimate and the
/// switches. Written as frames go out: a pause shows in the line after it.
struct OutputReport {
    since: tokio::time::Instant,
    last_write: Option<tokio::time::Instant>,
    frames: u64,
    max_gap: Duration,
}

impl OutputReport {
    fn new() -> Self {
        Self {
            since: tokio::time::Instant::now(),
            last_write: None,
            frames: 0,
            max_gap: Duration::ZERO,
        }
    }

    /// A frame of `rendition` was written.
    fn written(&mut self, rendition: &str, skipped: u64, estimate: Option<u64>, switches: u64) {
        let now = tokio::time::Instant::now();
        if let Some(prev) = self.last_write {
            self.max_gap = self.max_gap.max(now - prev);
        }
        self.last_write = Some(now);
        self.frames += 1;
        if now - self.since < Duration::from_secs(1) {
            return;
        }
        tracing::info!(
            rendition = %rendition,
            frames = self.frames,
            max_gap_ms = u64::try_from(self.max_gap.as_millis()).unwrap_or(u64::MAX),
            skipped,
            estimate_kbps = estimate.map(|bps| bps / 1000),
            switches,
            "output"
        );
        (self.since, self.frames, self.max_gap) = (now, 0, Duration::ZERO);
    }
}

/// A legacy frame as Annex-B: with an avcC (its NAL length size and parameter sets), the
/// length-prefixed NAL units rewritten with start codes and the parameter sets before a
/// keyframe; without one, the payload as it is (already Annex-B).
fn legacy_annexb(frame: &crate::Frame, avcc: Option<&(usize, Bytes)>) -> Result<Bytes, String> {
    let Some((length_size, parameter_sets)) = avcc else {
        return Ok(frame.payload.clone());
    };
    let nals = length_prefixed_nals(&frame.payload, *length_size)?;
    let mut buf = BytesMut::with_capacity(frame.payload.len() + parameter_sets.len() + 16);
    if frame.keyframe {
        buf.put_slice(parameter_sets);
    }
    put_annexb(&mut buf, &nals);
    Ok(buf.freeze())
}

/// An avcC's NAL length size and its SPS and PPS as Annex-B.
fn parameter_sets(avcc: &Avcc) -> (usize, Bytes) {
    let mut parameter_sets = BytesMut::new();
    for nal in avcc
        .sequence_parameter_sets
        .iter()
        .chain(&avcc.picture_parameter_sets)
    {
        parameter_sets.put_slice(&START_CODE);
        parameter_sets.put_slice(nal);
    }
    (usize::from(avcc.length_size), parameter_sets.freeze())
}

fn put_annexb(buf: &mut BytesMut, nals: &[&[u8]]) {
    for nal in nals {
        buf.put_slice(&START_CODE);
        buf.put_slice(nal);
    }
}
