//! Turn a hang broadcast back into a media stream.
//!
//! - [`Fmp4Exporter`]: every legacy- and CMAF-container rendition of the catalog as one
//!   fragmented MP4 stream: one init segment (a `trak` built from the catalog for each legacy
//!   rendition, the `trak`s of each CMAF rendition's own init, all renumbered), then one
//!   `moof`+`mdat` per frame or per group (legacy) or each published fragment (CMAF).
//! - [`AnnexBExporter`]: the first H.264 rendition (legacy or CMAF) as a raw Annex-B byte stream.
//! - [`SampleReader`]: one rendition (legacy or CMAF) sample by sample with its codec string and
//!   configuration record, for a player that feeds a decoder directly.
//!
//! The two exporters read the catalog once (a later catalog change is not followed) and end when
//! every exported track has ended.

mod annexb;
mod cmaf;
mod fmp4;
mod samples;

pub use annexb::*;
pub use fmp4::*;
pub use samples::*;

use bytes::{BufMut, Bytes, BytesMut};
use mp4_atom::{Atom, Avcc};

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The catalog track ended before publishing a catalog.
    #[error("the broadcast has no catalog")]
    NoCatalog,
    /// Nothing in the catalog can be exported this way.
    #[error("nothing to export: {0}")]
    NothingToExport(String),
    /// A rendition this exporter cannot write (codec, missing configuration).
    #[error("unsupported rendition '{track}': {reason}")]
    Unsupported {
        /// The rendition's track name.
        track: String,
        /// What is missing or unknown.
        reason: String,
    },
    /// A frame whose payload does not match its declared format (e.g. bad NAL lengths).
    #[error("invalid frame on '{track}': {reason}")]
    InvalidFrame {
        /// The rendition's track name.
        track: String,
        /// What is wrong.
        reason: String,
    },
    /// Building an MP4 box failed.
    #[error("MP4 encoding: {0}")]
    Mp4(#[from] mp4_atom::Error),
    /// Reading the broadcast failed.
    #[error(transparent)]
    Model(#[from] crate::Error),
    /// Writing the output failed.
    #[error("write: {0}")]
    Io(#[from] std::io::Error),
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Split a length-prefixed (AVCC/HVCC) access unit into NAL units.
fn length_prefixed_nals(payload: &[u8], length_size: usize) -> Result<Vec<&[u8]>, String> {
    if !(1..=4).contains(&length_size) {
        return Err(format!("NAL length size {length_size}"));
    }
    let mut nals = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        if rest.len() < length_size {
            return Err("truncated NAL length".into());
        }
        let (len, tail) = rest.split_at(length_size);
        let len = len
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len > tail.len() {
            return Err(format!("NAL of {len} bytes with {} bytes left", tail.len()));
        }
        let (nal, tail) = tail.split_at(len);
        nals.push(nal);
        rest = tail;
    }
    Ok(nals)
}

/// An Annex-B access unit as 4-byte length-prefixed NAL units.
fn annexb_to_avcc(payload: &[u8]) -> Bytes {
    let nals: Vec<&[u8]> = crate::annexb::nal_units(payload).collect();
    let mut out = BytesMut::with_capacity(payload.len() + 4 * nals.len());
    for nal in nals {
        out.put_u32(nal.len() as u32);
        out.put_slice(nal);
    }
    out.freeze()
}

/// An avcC record holding the SPS and PPS found in an Annex-B access unit.
fn avcc_from_annexb(payload: &[u8]) -> Option<Avcc> {
    let nals: Vec<&[u8]> = crate::annexb::nal_units(payload).collect();
    let sps: Vec<Vec<u8>> = nals
        .iter()
        .filter(|n| n[0] & 0x1f == 7)
        .map(|n| n.to_vec())
        .collect();
    let pps: Vec<Vec<u8>> = nals
        .iter()
        .filter(|n| n[0] & 0x1f == 8)
        .map(|n| n.to_vec())
        .collect();
    let first = sps.first()?;
    if first.len() < 4 || pps.is_empty() {
        return None;
    }
    Some(Avcc {
        configuration_version: 1,
        avc_profile_indication: first[1],
        profile_compatibility: first[2],
        avc_level_indication: first[3],
        length_size: 4,
        sequence_parameter_sets: sps,
        picture_parameter_sets: pps,
        ext: None,
    })
}

fn decode_avcc(description: &[u8]) -> Result<Avcc, String> {
    Avcc::decode_body(&mut &description[..]).map_err(|e| format!("invalid avcC description: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nal_framing() {
        let annexb = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0,
        ];
        let nals: Vec<&[u8]> = crate::annexb::nal_units(&annexb).collect();
        assert_eq!(nals, [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]);
        let avcc = annexb_to_avcc(&annexb);
        assert_eq!(
            length_prefixed_nals(&avcc, 4).unwrap(),
            [&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4]]
        );
        assert!(length_prefixed_nals(&[0, 0, 0, 9, 1], 4).is_err());
        assert!(length_prefixed_nals(&[0, 0], 4).is_err());
        let record = avcc_from_annexb(&[0, 0, 1, 0x67, 0x64, 0, 0x1f, 0, 0, 1, 0x68, 1]).unwrap();
        assert_eq!(
            (record.avc_profile_indication, record.avc_level_indication),
            (0x64, 0x1f)
        );
    }
}
