//! WebCodecs codec strings derived from elementary-stream bitstreams, for a publisher that has no
//! MP4 configuration record (an encoder's raw output, an RTP depayloader, a GStreamer pipeline).
//!
//! Each function takes bytes as they come from the network or a pipeline and returns `None` when
//! they are not what it expects; none panics on any input. The strings have the same form as
//! the ones the fMP4 importer builds from configuration records:
//!
//! | codec | from                                   | string                   |
//! |-------|----------------------------------------|--------------------------|
//! | H.264 | SPS NAL unit                           | `avc3.PPCCLL`            |
//! | H.265 | SPS NAL unit                           | `hev1.[A-C]P.C.TL.B0...` |
//! | AV1   | temporal unit (sequence header OBU)    | `av01.P.LLT.DD[...]`     |
//! | AV1   | av1C record                            | `av01.P.LLT.DD[...]`     |
//! | VP9   | frame (uncompressed header)            | `vp09.PP.31.DD`          |
//! | AAC   | AudioSpecificConfig                    | `mp4a.40.N`              |
//!
//! The H.264 and H.265 strings use the `avc3`/`hev1` sample entry names: a publisher without a
//! configuration record sends its parameter sets in band.

use bytes::Bytes;
use mp4_atom::{Av1c, Hvcc, VpcC};

use crate::codec;

/// The AAC sampling frequencies, by `samplingFrequencyIndex` (ISO/IEC 14496-3 §1.6.3.4).
pub(crate) const AAC_SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The VP9 level put in every `vp09` string: a frame header does not carry the level, and 3.1
/// (up to 1280x720 at 30 fps) is the conservative value browsers and decoders accept for the
/// streams this is used for; a decoder does not reject a stream for exceeding it.
pub const VP9_DEFAULT_LEVEL: u8 = 31;

/// `avc3.PPCCLL` from one H.264 SPS NAL unit (NAL header byte first, type 7, no start code):
/// profile_idc, the constraint flags byte and level_idc, in lowercase hex.
pub fn h264_codec(sps: &[u8]) -> Option<String> {
    let (&header, body) = sps.split_first()?;
    // forbidden_zero_bit clear, nal_unit_type 7.
    if header & 0x80 != 0 || header & 0x1f != 7 {
        return None;
    }
    let rbsp = unescape(body, 3);
    let [profile, constraints, level] = rbsp[..] else {
        return None;
    };
    Some(codec::h264("avc3", profile, constraints, level))
}

/// `hev1.1.6.L93.B0`-style string from one H.265 SPS NAL unit (2-byte NAL header first, type 33,
/// no start code): its general profile_tier_level, formatted as for an hvcC record.
pub fn h265_codec(sps: &[u8]) -> Option<String> {
    let [first, _, body @ ..] = sps else {
        return None;
    };
    // forbidden_zero_bit clear, nal_unit_type 33.
    if first & 0x80 != 0 || (first >> 1) & 0x3f != 33 {
        return None;
    }
    // sps_video_parameter_set_id (4), sps_max_sub_layers_minus1 (3),
    // sps_temporal_id_nesting_flag (1), then profile_tier_level: profile_space (2), tier (1),
    // profile_idc (5), 32 compatibility flags, 48 constraint bits, level_idc (8).
    let rbsp = unescape(body, 13);
    if rbsp.len() < 13 {
        return None;
    }
    // spec: H.265 §7.4.3.2.1, sps_max_sub_layers_minus1 is 0..=6.
    if (rbsp[0] >> 1) & 0x07 == 7 {
        return None;
    }
    let mut hvcc = Hvcc {
        configuration_version: 1,
        general_profile_space: rbsp[1] >> 6,
        general_tier_flag: rbsp[1] & 0x20 != 0,
        general_profile_idc: rbsp[1] & 0x1f,
        general_level_idc: rbsp[12],
        ..Default::default()
    };
    hvcc.general_profile_compatibility_flags
        .copy_from_slice(&rbsp[2..6]);
    hvcc.general_constraint_indicator_flags
        .copy_from_slice(&rbsp[6..12]);
    Some(codec::h265("hev1", &hvcc))
}

/// `av01.P.LLT.DD` (plus the chroma fields when not 4:2:0) from the first sequence header OBU
/// of `temporal_unit`, a run of low-overhead-format OBUs (every OBU with its size field), such as
/// a keyframe's temporal unit or an av1C's configOBUs.
///
/// The sequence header is parsed up to its color_config; the level and tier are operating
/// point 0's.
pub fn av1_codec(temporal_unit: &[u8]) -> Option<String> {
    let mut rest = temporal_unit;
    while !rest.is_empty() {
        let (obu_type, payload, tail) = next_obu(rest)?;
        if obu_type == OBU_SEQUENCE_HEADER {
            return Some(codec::av1(&av1_sequence_header(payload)?));
        }
        rest = tail;
    }
    None
}

/// `av01.P.LLT.DD` (plus the chroma fields when not 4:2:0) from an av1C record body (the bytes
/// after the box header; only its first four bytes are read).
pub fn av1_codec_from_av1c(av1c: &[u8]) -> Option<String> {
    let [marker, profile_level, flags, _, ..] = av1c[..] else {
        return None;
    };
    // marker (1) = 1, version (7) = 1.
    if marker != 0x81 {
        return None;
    }
    let seq_profile = profile_level >> 5;
    if seq_profile > 2 {
        return None;
    }
    let record = Av1c {
        seq_profile,
        seq_level_idx_0: profile_level & 0x1f,
        seq_tier_0: flags & 0x80 != 0,
        high_bitdepth: flags & 0x40 != 0,
        twelve_bit: flags & 0x20 != 0,
        monochrome: flags & 0x10 != 0,
        chroma_subsampling_x: flags & 0x08 != 0,
        chroma_subsampling_y: flags & 0x04 != 0,
        chroma_sample_position: flags & 0x03,
        initial_presentation_delay: None,
        config_obus: Vec::new(),
    };
    Some(codec::av1(&record))
}

/// `vp09.PP.31.DD` from a VP9 frame (its uncompressed header): the profile from the header, the
/// bit depth 8 for profiles 0 and 1, and for profiles 2 and 3 the keyframe's `ten_or_twelve_bit`
/// (10 when the frame is not a keyframe). The level is always [`VP9_DEFAULT_LEVEL`], which the
/// header does not carry.
pub fn vp9_codec(frame: &[u8]) -> Option<String> {
    let mut bits = Bits::new(frame);
    // spec: VP9 §6.2, frame_marker is 2.
    if bits.read(2)? != 2 {
        return None;
    }
    let low = bits.read(1)?;
    let high = bits.read(1)?;
    let profile = (high << 1) | low;
    if profile == 3 && bits.read(1)? != 0 {
        // reserved_zero
        return None;
    }
    let bit_depth = if profile < 2 {
        8
    } else {
        vp9_high_bit_depth(&mut bits).unwrap_or(10)
    };
    let vpcc = VpcC {
        profile: profile as u8,
        level: VP9_DEFAULT_LEVEL,
        bit_depth,
        chroma_subsampling: 1,
        video_full_range_flag: false,
        color_primaries: 1,
        transfer_characteristics: 1,
        matrix_coefficients: 1,
        codec_initialization_data: Vec::new(),
    };
    Some(codec::vp9(&vpcc))
}

/// `mp4a.40.N` from an AudioSpecificConfig: N is its audioObjectType (5 bits; 31 escapes to
/// 32 + the next 6 bits).
pub fn aac_codec(audio_specific_config: &[u8]) -> Option<String> {
    let mut bits = Bits::new(audio_specific_config);
    let object_type = match bits.read(5)? {
        // 0 is the null object.
        0 => return None,
        31 => 32 + bits.read(6)?,
        n => n,
    };
    Some(format!("mp4a.40.{object_type}"))
}

/// A 2-byte AAC-LC AudioSpecificConfig (object type 2) for `sample_rate` and `channels`
/// (channel configuration 1..=7); `None` for a rate outside the standard frequency table.
pub fn aac_config(sample_rate: u32, channels: u32) -> Option<Bytes> {
    let index = AAC_SAMPLE_RATES.iter().position(|r| *r == sample_rate)? as u8;
    let channels = u8::try_from(channels)
        .ok()
        .filter(|c| (1..=7).contains(c))?;
    Some(Bytes::copy_from_slice(&[
        (2 << 3) | (index >> 1),
        ((index & 1) << 7) | (channels << 3),
    ]))
}

/// The first `limit` RBSP bytes of a NAL unit's payload: every `00 00 03` becomes `00 00`.
fn unescape(payload: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    let mut zeros = 0;
    for &byte in payload {
        if out.len() == limit {
            break;
        }
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

const OBU_SEQUENCE_HEADER: u8 = 1;

/// The type and payload of the OBU at the start of `buf`, and the bytes after it.
fn next_obu(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&header, mut rest) = buf.split_first()?;
    // forbidden bit (1), obu_type (4), extension flag (1), has_size_field (1), reserved (1).
    if header & 0x80 != 0 || header & 0x02 == 0 {
        return None;
    }
    if header & 0x04 != 0 {
        rest = rest.get(1..)?;
    }
    let (size, rest) = leb128(rest)?;
    let size = usize::try_from(size).ok()?;
    if size > rest.len() {
        return None;
    }
    let (payload, tail) = rest.split_at(size);
    Some(((header >> 3) & 0x0f, payload, tail))
}

/// An AV1 leb128 value (at most 8 bytes, at most 2^32 - 1, spec §4.10.5) and the bytes after it.
fn leb128(buf: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (value <= u64::from(u32::MAX)).then(|| (value, &buf[i + 1..]));
        }
    }
    None
}

/// The av1C fields of a sequence header OBU's payload (AV1 spec §5.5).
fn av1_sequence_header(payload: &[u8]) -> Option<Av1c> {
    let mut bits = Bits::new(payload);
    let seq_profile = bits.read(3)? as u8;
    if seq_profile > 2 {
        return None;
    }
    let _still_picture = bits.read(1)?;
    let reduced_still_picture_header = bits.flag()?;
    let (seq_level_idx_0, seq_tier_0) = if reduced_still_picture_header {
        (bits.read(5)? as u8, false)
    } else {
        let mut buffer_delay_length = None;
        if bits.flag()? {
            // timing_info()
            bits.read(32)?; // num_units_in_display_tick
            bits.read(32)?; // time_scale
            if bits.flag()? {
                // equal_picture_interval: num_ticks_per_picture_minus_1
                bits.uvlc()?;
            }
            if bits.flag()? {
                // decoder_model_info()
                buffer_delay_length = Some(bits.read(5)? + 1);
                bits.read(32)?; // num_units_in_decoding_tick
                bits.read(5)?; // buffer_removal_time_length_minus_1
                bits.read(5)?; // frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay_present = bits.flag()?;
        let operating_points = bits.read(5)? + 1;
        let mut first = None;
        for _ in 0..operating_points {
            bits.read(12)?; // operating_point_idc
            let level = bits.read(5)? as u8;
            let tier = level > 7 && bits.flag()?;
            if let Some(n) = buffer_delay_length {
                if bits.flag()? {
                    // operating_parameters_info(): decoder and encoder buffer delays,
                    // low_delay_mode_flag.
                    bits.read(n)?;
                    bits.read(n)?;
                    bits.read(1)?;
                }
            }
            if initial_display_delay_present && bits.flag()? {
                bits.read(4)?; // initial_display_delay_minus_1
            }
            first.get_or_insert((level, tier));
        }
        first?
    };
    let width_bits = bits.read(4)? + 1;
    let height_bits = bits.read(4)? + 1;
    bits.read(width_bits)?; // max_frame_width_minus_1
    bits.read(height_bits)?; // max_frame_height_minus_1
    if !reduced_still_picture_header && bits.flag()? {
        // frame_id_numbers_present_flag: delta and additional frame ID lengths.
        bits.read(4)?;
        bits.read(3)?;
    }
    // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    bits.read(3)?;
    if !reduced_still_picture_header {
        // enable_interintra_compound, enable_masked_compound, enable_warped_motion,
        // enable_dual_filter
        bits.read(4)?;
        let enable_order_hint = bits.flag()?;
        if enable_order_hint {
            bits.read(2)?; // enable_jnt_comp, enable_ref_frame_mvs
        }
        let seq_force_screen_content_tools = if bits.flag()? {
            // seq_choose_screen_content_tools: SELECT_SCREEN_CONTENT_TOOLS
            2
        } else {
            bits.read(1)?
        };
        if seq_force_screen_content_tools > 0 && !bits.flag()? {
            // seq_choose_integer_mv clear: seq_force_integer_mv
            bits.read(1)?;
        }
        if enable_order_hint {
            bits.read(3)?; // order_hint_bits_minus_1
        }
    }
    // enable_superres, enable_cdef, enable_restoration
    bits.read(3)?;

    // color_config() (§5.5.2)
    let high_bitdepth = bits.flag()?;
    let twelve_bit = seq_profile == 2 && high_bitdepth && bits.flag()?;
    let monochrome = seq_profile != 1 && bits.flag()?;
    let (primaries, transfer, matrix) = if bits.flag()? {
        (bits.read(8)?, bits.read(8)?, bits.read(8)?)
    } else {
        (2, 2, 2) // unspecified
    };
    let (subsampling_x, subsampling_y, chroma_sample_position) = if monochrome {
        (true, true, 0)
    } else if (primaries, transfer, matrix) == (1, 13, 0) {
        // BT.709 primaries, sRGB transfer, identity matrix: 4:4:4, full range.
        (false, false, 0)
    } else {
        bits.read(1)?; // color_range
        let (x, y) = match seq_profile {
            0 => (true, true),
            1 => (false, false),
            _ if twelve_bit => {
                let x = bits.flag()?;
                (x, x && bits.flag()?)
            }
            _ => (true, false),
        };
        let position = if x && y { bits.read(2)? as u8 } else { 0 };
        (x, y, position)
    };
    Some(Av1c {
        seq_profile,
        seq_level_idx_0,
        seq_tier_0,
        high_bitdepth,
        twelve_bit,
        monochrome,
        chroma_subsampling_x: subsampling_x,
        chroma_subsampling_y: subsampling_y,
        chroma_sample_position,
        initial_presentation_delay: None,
        config_obus: Vec::new(),
    })
}

/// The bit depth a VP9 profile 2/3 keyframe declares (`bits` just past the profile), or `None`
/// for another frame.
fn vp9_high_bit_depth(bits: &mut Bits) -> Option<u8> {
    // show_existing_frame, frame_type (0: KEY_FRAME), show_frame, error_resilient_mode
    if bits.flag()? || bits.flag()? {
        return None;
    }
    bits.read(2)?;
    // spec: VP9 §6.2, frame_sync_code 0x49 0x83 0x42.
    if bits.read(24)? != 0x49_83_42 {
        return None;
    }
    Some(if bits.flag()? { 12 } else { 10 })
}

/// Reads bits most significant first; every read past the end is `None`.
struct Bits<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, position: 0 }
    }

    fn flag(&mut self) -> Option<bool> {
        let byte = self.data.get(self.position / 8)?;
        let bit = (byte >> (7 - self.position % 8)) & 1;
        self.position += 1;
        Some(bit == 1)
    }

    /// `n` bits (at most 32) as an unsigned number.
    fn read(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        let mut value = 0u64;
        for _ in 0..n {
            value = (value << 1) | u64::from(self.flag()?);
        }
        u32::try_from(value).ok()
    }

    /// An AV1 `uvlc()` (spec §4.10.3).
    fn uvlc(&mut self) -> Option<u32> {
        let mut leading_zeros = 0u32;
        while !self.flag()? {
            leading_zeros += 1;
        }
        if leading_zeros >= 32 {
            return Some(u32::MAX);
        }
        let value = self.read(leading_zeros)?;
        Some(value.saturating_add((1u32 << leading_zeros) - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Atom, Codec, Decode, Ftyp, Moov};
    use proptest::prelude::*;

    /// Writes bits most significant first, for hand-made headers.
    #[derive(Default)]
    struct Writer {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl Writer {
        fn put(&mut self, n: u32, value: u64) -> &mut Self {
            for i in (0..n).rev() {
                if self.bits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                if let Some(last) = self.bytes.last_mut() {
                    *last |= bit << (7 - self.bits % 8);
                }
                self.bits += 1;
            }
            self
        }
    }

    /// The sample entry of a fixture's only track (js/packages/hang/test/fixtures).
    fn sample_entry(file: &[u8]) -> Codec {
        let mut buf = file;
        Ftyp::decode(&mut buf).unwrap();
        let moov = Moov::decode(&mut buf).unwrap();
        moov.trak[0].mdia.minf.stbl.stsd.codecs[0].clone()
    }

    /// The body of a fixture's first `mdat`: its first sample (one sample per fragment).
    fn first_mdat(file: &[u8]) -> &[u8] {
        let mut at = 0;
        loop {
            let size = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            if &file[at + 4..at + 8] == b"mdat" {
                return &file[at + 8..at + size];
            }
            at += size;
        }
    }

    #[test]
    fn h264_sps() {
        // x264 Constrained Baseline 3.0 (truncated after level_idc: only the first bytes count).
        let sps = [0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8];
        assert_eq!(h264_codec(&sps).as_deref(), Some("avc3.42c01e"));
        // Every prefix is refused or read, never a panic.
        for cut in 0..4 {
            assert_eq!(h264_codec(&sps[..cut]), None);
        }
        assert_eq!(h264_codec(&[0x68, 0x42, 0xc0, 0x1e]), None, "a PPS");
        assert_eq!(h264_codec(&[0xe7, 0x42, 0xc0, 0x1e]), None, "forbidden bit");
        // An emulation-prevention byte inside the first bytes is dropped.
        assert_eq!(
            h264_codec(&[0x67, 0x00, 0x00, 0x03, 0x01]).as_deref(),
            Some("avc3.000001")
        );

        let Codec::Avc1(avc1) = sample_entry(include_bytes!(
            "../../../js/packages/hang/test/fixtures/h264.mp4"
        )) else {
            panic!("not avc1");
        };
        let avcc = &avc1.avcc;
        assert_eq!(
            h264_codec(&avcc.sequence_parameter_sets[0]),
            Some(codec::h264(
                "avc3",
                avcc.avc_profile_indication,
                avcc.profile_compatibility,
                avcc.avc_level_indication
            ))
        );
    }

    #[test]
    fn h265_sps() {
        // x265 Main 3.1, with emulation-prevention bytes in the flags.
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x5d, 0xa0, 0x02, 0x80, 0x80, 0x2d,
        ];
        assert_eq!(h265_codec(&sps).as_deref(), Some("hev1.1.6.L93.90"));
        for cut in 0..18 {
            assert_eq!(h265_codec(&sps[..cut]), None, "cut at {cut}");
        }
        let mut vps = sps;
        vps[0] = 0x40;
        assert_eq!(h265_codec(&vps), None, "a VPS");

        // The SPS of the libx265 fixture gives the string of its hvcC.
        let Codec::Hvc1(hvc1) = sample_entry(include_bytes!(
            "../../../js/packages/hang/test/fixtures/h265.mp4"
        )) else {
            panic!("not hvc1");
        };
        let sps = hvc1
            .hvcc
            .arrays
            .iter()
            .find(|a| a.nal_unit_type == 33)
            .map(|a| a.nalus[0].clone())
            .unwrap();
        assert_eq!(h265_codec(&sps), Some(codec::h265("hev1", &hvc1.hvcc)));

        // A high-tier Main 10 SPS, profile space 0, built by hand.
        let mut w = Writer::default();
        w.put(16, 0x4201).put(8, 0x01).put(3, 0b001).put(5, 2);
        w.put(32, 0x2000_0000).put(48, 0).put(8, 120);
        assert_eq!(h265_codec(&w.bytes).as_deref(), Some("hev1.2.4.H120"));
    }

    /// A sequence header OBU (with its size) as libaom writes one, with `timing` info or not.
    fn sequence_header(profile: u64, level: u64, tier: u64, timing: bool) -> Vec<u8> {
        let mut w = Writer::default();
        w.put(3, profile).put(1, 0).put(1, 0); // not still, not reduced
        w.put(1, u64::from(timing));
        if timing {
            w.put(32, 1001).put(32, 60_000).put(1, 1).put(5, 0b00101); // uvlc(3)
            w.put(1, 1); // decoder_model_info_present_flag
            w.put(5, 9).put(32, 1).put(5, 3).put(5, 4);
        }
        w.put(1, 1); // initial_display_delay_present_flag
        w.put(5, 1); // two operating points
        for (level, tier) in [(level, tier), (4, 0)] {
            w.put(12, 0).put(5, level);
            if level > 7 {
                w.put(1, tier);
            }
            if timing {
                w.put(1, 1).put(10, 5).put(10, 6).put(1, 0);
            }
            w.put(1, 1).put(4, 2);
        }
        w.put(4, 10).put(4, 9).put(11, 1279).put(10, 719); // 1280x720
        w.put(1, 0); // frame_id_numbers_present_flag
        w.put(3, 0).put(4, 0).put(1, 1).put(2, 0); // tools; order hint on
        w.put(1, 1); // seq_choose_screen_content_tools
        w.put(1, 1); // seq_choose_integer_mv
        w.put(3, 6).put(3, 0); // order_hint_bits_minus_1; superres, cdef, restoration

        // color_config: 10 bit for profile 2; 4:2:0 unless profile 1.
        w.put(1, u64::from(profile == 2));
        if profile == 2 {
            w.put(1, 0);
        }
        if profile != 1 {
            w.put(1, 0); // mono_chrome
        }
        w.put(1, 0).put(1, 0); // no colour description; color_range
        if profile == 0 {
            w.put(2, 0); // chroma_sample_position: unknown
        }
        w.put(1, 0).put(1, 0); // separate_uv_delta_q, film_grain_params_present
        let mut obu = vec![(OBU_SEQUENCE_HEADER << 3) | 0x02, w.bytes.len() as u8];
        obu.extend_from_slice(&w.bytes);
        obu
    }

    #[test]
    fn av1_sequence_headers() {
        // A temporal delimiter, then the sequence header.
        let mut unit = vec![0x12, 0x00];
        unit.extend(sequence_header(0, 8, 0, false));
        assert_eq!(av1_codec(&unit).as_deref(), Some("av01.0.08M.08"));
        for cut in 0..unit.len() {
            assert_eq!(av1_codec(&unit[..cut]), None, "cut at {cut}");
        }
        let with_timing = sequence_header(0, 13, 1, true);
        assert_eq!(av1_codec(&with_timing).as_deref(), Some("av01.0.13H.08"));
        assert_eq!(
            av1_codec(&sequence_header(2, 5, 0, true)).as_deref(),
            Some("av01.2.05M.10.0.100.01.01.01.0")
        );
        assert_eq!(
            av1_codec(&sequence_header(1, 9, 0, false)).as_deref(),
            Some("av01.1.09M.08.0.000.01.01.01.0")
        );
        // An OBU without its size field is not the low-overhead format.
        let mut unsized_obu = sequence_header(0, 8, 0, false);
        unsized_obu[0] &= !0x02;
        assert_eq!(av1_codec(&unsized_obu), None);
        assert_eq!(av1_codec(&[0x12, 0x00]), None, "no sequence header");

        // The libaom fixture: its av1C, the sequence header in its configOBUs and in band.
        let file = include_bytes!("../../../js/packages/hang/test/fixtures/av1.mp4");
        let Codec::Av01(av01) = sample_entry(file) else {
            panic!("not av01");
        };
        let expected = codec::av1(&av01.av1c);
        assert_eq!(av1_codec(&av01.av1c.config_obus), Some(expected.clone()));
        assert_eq!(av1_codec(first_mdat(file)), Some(expected.clone()));
        let mut body = Vec::new();
        av01.av1c.encode_body(&mut body).unwrap();
        assert_eq!(av1_codec_from_av1c(&body), Some(expected));
    }

    #[test]
    fn av1c_records() {
        assert_eq!(
            av1_codec_from_av1c(&[0x81, 0x08, 0x0c, 0x00]).as_deref(),
            Some("av01.0.08M.08")
        );
        assert_eq!(
            av1_codec_from_av1c(&[0x81, 0x4d, 0xe0, 0x00]).as_deref(),
            Some("av01.2.13H.12.0.000.01.01.01.0")
        );
        assert_eq!(av1_codec_from_av1c(&[0x81, 0x08, 0x0c]), None);
        assert_eq!(av1_codec_from_av1c(&[0x01, 0x08, 0x0c, 0x00]), None);
        assert_eq!(av1_codec_from_av1c(&[0x81, 0xe8, 0x0c, 0x00]), None);
    }

    #[test]
    fn vp9_frames() {
        // Profile 0 keyframe, as libvpx starts every stream.
        assert_eq!(
            vp9_codec(&[0x82, 0x49, 0x83, 0x42, 0x00]).as_deref(),
            Some("vp09.00.31.08")
        );
        // Profile 1 (low bit), an inter frame.
        assert_eq!(vp9_codec(&[0xa4]).as_deref(), Some("vp09.01.31.08"));
        // Profile 2 keyframe: frame marker, low 0, high 1, then key/show flags and the sync
        // code, then ten_or_twelve_bit.
        let mut w = Writer::default();
        w.put(2, 2)
            .put(1, 0)
            .put(1, 1)
            .put(4, 0b0010)
            .put(24, 0x49_83_42);
        w.put(1, 1);
        assert_eq!(vp9_codec(&w.bytes).as_deref(), Some("vp09.02.31.12"));
        // Profile 3: reserved zero; an inter frame defaults to 10 bits; a set reserved bit is
        // refused.
        assert_eq!(vp9_codec(&[0xb2, 0x00]).as_deref(), Some("vp09.03.31.10"));
        assert_eq!(vp9_codec(&[0xb8]), None);
        assert_eq!(vp9_codec(&[0x42]), None, "frame marker 1");
        assert_eq!(vp9_codec(&[]), None);

        // The libvpx fixture's first frame agrees with its vpcC's profile and bit depth (the
        // level and colour fields are not in the frame header).
        let file = include_bytes!("../../../js/packages/hang/test/fixtures/vp9.mp4");
        let Codec::Vp09(vp09) = sample_entry(file) else {
            panic!("not vp09");
        };
        let expected = format!(
            "vp09.{:02}.{VP9_DEFAULT_LEVEL}.{:02}",
            vp09.vpcc.profile, vp09.vpcc.bit_depth
        );
        assert_eq!(vp9_codec(first_mdat(file)), Some(expected));
    }

    #[test]
    fn aac() {
        // AAC-LC 48 kHz stereo with an SBR sync extension (the ffmpeg fixture's esds).
        assert_eq!(
            aac_codec(&[0x11, 0x90, 0x56, 0xe5, 0x00]).as_deref(),
            Some("mp4a.40.2")
        );
        // HE-AAC (5), and an escaped object type: 31, then 6 bits of 10 → 42.
        assert_eq!(aac_codec(&[0x2b, 0x92]).as_deref(), Some("mp4a.40.5"));
        assert_eq!(aac_codec(&[0xf9, 0x40]).as_deref(), Some("mp4a.40.42"));
        assert_eq!(aac_codec(&[0xf9]), None, "escape cut short");
        assert_eq!(aac_codec(&[0x00, 0x00]), None, "null object");
        assert_eq!(aac_codec(&[]), None);

        assert_eq!(aac_config(48000, 2).as_deref(), Some(&[0x11, 0x90][..]));
        assert_eq!(aac_config(44100, 2).as_deref(), Some(&[0x12, 0x10][..]));
        assert_eq!(aac_config(7350, 7).as_deref(), Some(&[0x16, 0x38][..]));
        assert_eq!(aac_config(44000, 2), None);
        assert_eq!(aac_config(48000, 0), None);
        assert_eq!(aac_config(48000, 8), None);
        let config = aac_config(22050, 1).unwrap();
        assert_eq!(aac_codec(&config).as_deref(), Some("mp4a.40.2"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = h264_codec(&bytes);
            let _ = h265_codec(&bytes);
            let _ = av1_codec(&bytes);
            let _ = av1_codec_from_av1c(&bytes);
            let _ = vp9_codec(&bytes);
            let _ = aac_codec(&bytes);
        }

        #[test]
        fn mutated_sequence_headers_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
            timing in any::<bool>(),
        ) {
            let mut bytes = sequence_header(0, 8, 0, timing);
            for (at, value) in edits {
                let len = bytes.len();
                bytes[at % len] = value;
            }
            let _ = av1_codec(&bytes);
        }

        #[test]
        fn aac_configs_read_back(index in 0usize..13, channels in 1u32..=7) {
            let config = aac_config(AAC_SAMPLE_RATES[index], channels).unwrap();
            let rate_index = ((config[0] & 0x07) << 1) | (config[1] >> 7);
            prop_assert_eq!(usize::from(rate_index), index);
            prop_assert_eq!(u32::from((config[1] >> 3) & 0x0f), channels);
            prop_assert_eq!(aac_codec(&config), Some("mp4a.40.2".to_string()));
        }
    }
}
