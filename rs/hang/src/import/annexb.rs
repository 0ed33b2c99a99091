//! Raw H.264 Annex-B import (`ffmpeg -c:v libx264 -f h264 -` or `-bsf:v h264_mp4toannexb`).
//!
//! The stream is split on 3- and 4-byte start codes ([`crate::annexb`]); NAL units are grouped into access units (a
//! new one starts at an AUD, SPS, PPS or SEI, or at a slice whose `first_mb_in_slice` is 0, once
//! the pending unit holds a slice). Each access unit becomes one frame, re-emitted with 4-byte
//! start codes; it is a keyframe when it holds an IDR slice. The rendition is `avc3.PPCCLL`
//! without a `description` (parameter sets in band), sized from the SPS; a changed SPS republishes
//! the catalog. A NAL unit is complete only when the next start code arrives, so stream input
//! adds one NAL of latency; [`AnnexBImporter::finish`] flushes the last one.
//!
//! Annex-B carries no timestamps: frames are stamped from a fixed frame rate
//! ([`AnnexBImporter::with_frame_rate`]) or else from the wall clock since the first frame.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::ImportError;
use crate::annexb::{self, find_start_code};
use crate::catalog::VideoConfig;
use crate::{codec, BroadcastProducer, Frame, TrackProducer};

/// Largest NAL unit accepted.
pub const MAX_NAL_SIZE: usize = 32 * 1024 * 1024;

const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;

/// Imports an H.264 Annex-B byte stream into one video rendition of a hang broadcast.
#[derive(Debug)]
pub struct AnnexBImporter {
    broadcast: BroadcastProducer,
    track: Option<TrackProducer>,
    /// The SPS the catalog entry was built from.
    sps: Option<Bytes>,
    /// NAL units of the access unit being assembled.
    pending: Vec<Bytes>,
    pending_slice: bool,
    pending_idr: bool,
    /// A keyframe has been written (access units before the first are dropped).
    started: bool,
    /// Microseconds per frame, or `None` for wall-clock timestamps.
    frame_duration: Option<f64>,
    frames: u64,
    epoch: Option<Instant>,
    /// How far `decode` has searched the buffer for the next start code.
    scanned: usize,
}

impl AnnexBImporter {
    /// An importer stamping frames with the wall clock.
    pub fn new(broadcast: BroadcastProducer) -> Self {
        Self {
            broadcast,
            track: None,
            sps: None,
            pending: Vec::new(),
            pending_slice: false,
            pending_idr: false,
            started: false,
            frame_duration: None,
            frames: 0,
            epoch: None,
            scanned: 0,
        }
    }

    /// Stamp frame `n` at `n / fps` seconds instead of the wall clock.
    pub fn with_frame_rate(mut self, fps: f64) -> Self {
        if fps.is_finite() && fps > 0.0 {
            self.frame_duration = Some(1_000_000.0 / fps);
        }
        self
    }

    /// The broadcast being produced.
    pub fn broadcast(&self) -> &BroadcastProducer {
        &self.broadcast
    }

    /// The broadcast being filled, to adjust its catalog (call `publish_catalog` after).
    pub fn broadcast_mut(&mut self) -> &mut BroadcastProducer {
        &mut self.broadcast
    }

    /// True once an SPS has been seen and the catalog published.
    pub fn is_initialized(&self) -> bool {
        self.track.is_some()
    }

    /// Consume every complete NAL unit at the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<(), ImportError> {
        loop {
            let Some(prefix) = start_code_at(buf)? else {
                return Ok(());
            };
            let from = self.scanned.max(prefix);
            let Some(next) = find_start_code(buf, from) else {
                if buf.len() > MAX_NAL_SIZE + prefix {
                    return Err(ImportError::malformed(format!(
                        "NAL unit larger than {MAX_NAL_SIZE} bytes"
                    )));
                }
                // Keep the last bytes: a start code may straddle the next chunk.
                self.scanned = buf.len().saturating_sub(3).max(prefix);
                return Ok(());
            };
            self.scanned = 0;
            let nal = buf.split_to(next).freeze().slice(prefix..);
            self.nal(trim_trailing_zeros(nal))?;
        }
    }

    /// End of input: the rest of `buf` is the last NAL unit; write the last access unit and end
    /// the track and broadcast.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Result<(), ImportError> {
        let result = self.finish_input(buf);
        if let Some(track) = self.track.as_mut() {
            track.finish();
        }
        self.broadcast.finish();
        result
    }

    fn finish_input(&mut self, buf: &mut BytesMut) -> Result<(), ImportError> {
        self.decode(buf)?;
        if let Some(prefix) = start_code_at(buf)? {
            let nal = buf.split().freeze().slice(prefix..);
            self.nal(trim_trailing_zeros(nal))?;
        }
        if !buf.is_empty() {
            return Err(ImportError::malformed("input ends inside a start code"));
        }
        self.flush()?;
        if self.track.is_none() {
            return Err(ImportError::malformed("no SPS in the H.264 stream"));
        }
        Ok(())
    }

    fn nal(&mut self, nal: Bytes) -> Result<(), ImportError> {
        let Some(&header) = nal.first() else {
            return Ok(());
        };
        if header & 0x80 != 0 {
            return Err(ImportError::malformed(format!(
                "NAL unit header {header:#04x} has the forbidden bit set"
            )));
        }
        let kind = header & 0x1f;
        let starts_unit = match kind {
            NAL_SPS | NAL_PPS | NAL_SEI | NAL_AUD => true,
            // first_mb_in_slice is ue(v): 0 is the single bit 1.
            NAL_SLICE | NAL_IDR => nal.get(1).is_some_and(|b| b & 0x80 != 0),
            _ => false,
        };
        if starts_unit && self.pending_slice {
            self.flush()?;
        }
        if kind == NAL_SPS {
            self.sps(&nal)?;
        }
        self.pending_slice |= kind == NAL_SLICE || kind == NAL_IDR;
        self.pending_idr |= kind == NAL_IDR;
        self.pending.push(nal);
        Ok(())
    }

    fn sps(&mut self, nal: &Bytes) -> Result<(), ImportError> {
        if self.sps.as_ref() == Some(nal) {
            return Ok(());
        }
        let rbsp = h264_parser::nal::ebsp_to_rbsp(&nal[1..]);
        let sps = h264_parser::Sps::parse(&rbsp)
            .map_err(|e| ImportError::malformed(format!("invalid SPS: {e}")))?;
        let constraints = nal.get(2).copied().unwrap_or_default();
        let config = VideoConfig {
            codec: codec::h264("avc3", sps.profile_idc, constraints, sps.level_idc),
            coded_width: Some(sps.width),
            coded_height: Some(sps.height),
            ..Default::default()
        };
        match &self.track {
            None => self.track = Some(self.broadcast.add_video(config)),
            Some(track) => {
                let name = track.name().to_string();
                if let Some(video) = self.broadcast.catalog_mut().video.as_mut() {
                    video.renditions.insert(name, config);
                }
            }
        }
        self.broadcast.publish_catalog()?;
        self.sps = Some(nal.clone());
        Ok(())
    }

    /// Write the pending access unit as one frame.
    fn flush(&mut self) -> Result<(), ImportError> {
        let nals = std::mem::take(&mut self.pending);
        let (slice, keyframe) = (self.pending_slice, self.pending_idr);
        self.pending_slice = false;
        self.pending_idr = false;
        let Some(track) = self.track.as_mut() else {
            return Ok(()); // no SPS yet: nothing decodable
        };
        if !slice || (!self.started && !keyframe) {
            return Ok(());
        }
        self.started = true;
        let timestamp = match self.frame_duration {
            Some(duration) => (self.frames as f64 * duration).round() as u64,
            None => {
                let epoch = *self.epoch.get_or_insert_with(Instant::now);
                u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
            }
        };
        self.frames += 1;
        let mut payload = BytesMut::with_capacity(nals.iter().map(|n| n.len() + 4).sum());
        for nal in &nals {
            payload.extend_from_slice(&[0, 0, 0, 1]);
            payload.extend_from_slice(nal);
        }
        track.write(Frame {
            timestamp,
            keyframe,
            payload: payload.freeze(),
        })?;
        Ok(())
    }
}

/// Length of the start code at the front of `buf` (leading zero bytes included), `None` if more
/// bytes are needed to tell; an error if the bytes cannot start an Annex-B stream.
fn start_code_at(buf: &[u8]) -> Result<Option<usize>, ImportError> {
    let zeros = buf.iter().take_while(|b| **b == 0).count();
    match buf.get(zeros) {
        None => Ok(None),
        Some(1) if zeros >= 2 => Ok(Some(zeros + 1)),
        Some(_) => Err(ImportError::malformed(format!(
            "not an Annex-B start code: {:02x?}",
            &buf[..buf.len().min(zeros + 1).min(8)]
        ))),
    }
}

/// `nal` without its trailing zero bytes, sharing its storage.
fn trim_trailing_zeros(nal: Bytes) -> Bytes {
    let len = annexb::trim_trailing_zeros(&nal).len();
    nal.slice(..len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_codes() {
        assert_eq!(start_code_at(&[0, 0]).unwrap(), None);
        assert_eq!(start_code_at(&[0, 0, 1, 9]).unwrap(), Some(3));
        assert_eq!(start_code_at(&[0, 0, 0, 1, 9]).unwrap(), Some(4));
        assert!(start_code_at(&[0, 1, 9]).is_err());
        assert!(start_code_at(b"garbage").is_err());
    }
}
