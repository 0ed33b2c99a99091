//! WebCodecs codec strings: built from MP4 configuration records on import, parsed back on export.
//!
//! Formats: `avc1.PPCCLL` / `avc3.PPCCLL` (RFC 6381), `hvc1|hev1.[A-C]P.C.TL.B0...` (ISO/IEC 14496-15
//! Annex E), `vp8`, `vp09.PP.LL.DD[.CC.cp.tc.mc.FF]` (VP9 ISOBMFF), `av01.P.LLT.DD[...]` (AV1
//! ISOBMFF), `mp4a.40.N`, `opus`.

use mp4_atom::{Av1c, Hvcc, VpcC};

/// `avc1.64001f`-style string.
pub(crate) fn h264(prefix: &str, profile: u8, constraints: u8, level: u8) -> String {
    format!("{prefix}.{profile:02x}{constraints:02x}{level:02x}")
}

/// `hvc1.1.6.L93.B0`-style string.
pub(crate) fn h265(prefix: &str, hvcc: &Hvcc) -> String {
    let space = ["", "A", "B", "C"][usize::from(hvcc.general_profile_space & 3)];
    let compatibility = u32::from_be_bytes(hvcc.general_profile_compatibility_flags).reverse_bits();
    let tier = if hvcc.general_tier_flag { 'H' } else { 'L' };
    let mut codec = format!(
        "{prefix}.{space}{}.{compatibility:X}.{tier}{}",
        hvcc.general_profile_idc, hvcc.general_level_idc
    );
    let constraints = &hvcc.general_constraint_indicator_flags;
    let used = constraints
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |i| i + 1);
    for byte in &constraints[..used] {
        codec.push_str(&format!(".{byte:X}"));
    }
    codec
}

/// `vp09.00.10.08` (short form when the colour fields are the defaults).
pub(crate) fn vp9(vpcc: &VpcC) -> String {
    let mut codec = format!(
        "vp09.{:02}.{:02}.{:02}",
        vpcc.profile, vpcc.level, vpcc.bit_depth
    );
    let default_colour = vpcc.chroma_subsampling == 1
        && vpcc.color_primaries == 1
        && vpcc.transfer_characteristics == 1
        && vpcc.matrix_coefficients == 1
        && !vpcc.video_full_range_flag;
    if !default_colour {
        codec.push_str(&format!(
            ".{:02}.{:02}.{:02}.{:02}.{:02}",
            vpcc.chroma_subsampling,
            vpcc.color_primaries,
            vpcc.transfer_characteristics,
            vpcc.matrix_coefficients,
            u8::from(vpcc.video_full_range_flag)
        ));
    }
    codec
}

/// The vpcC record a `vp09`/`vp8` string describes.
pub(crate) fn parse_vp9(codec: &str) -> Option<VpcC> {
    if codec == "vp8" {
        return Some(VpcC {
            bit_depth: 8,
            ..VpcC::default()
        });
    }
    let fields: Vec<u8> = codec
        .strip_prefix("vp09.")?
        .split('.')
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let mut vpcc = VpcC {
        profile: *fields.first()?,
        level: *fields.get(1)?,
        bit_depth: *fields.get(2)?,
        chroma_subsampling: 1,
        color_primaries: 1,
        transfer_characteristics: 1,
        matrix_coefficients: 1,
        video_full_range_flag: false,
        codec_initialization_data: Vec::new(),
    };
    if let [_, _, _, cs, cp, tc, mc, fr] = fields[..] {
        vpcc.chroma_subsampling = cs;
        vpcc.color_primaries = cp;
        vpcc.transfer_characteristics = tc;
        vpcc.matrix_coefficients = mc;
        vpcc.video_full_range_flag = fr == 1;
    }
    Some(vpcc)
}

fn av1_bit_depth(av1c: &Av1c) -> u8 {
    match (av1c.high_bitdepth, av1c.twelve_bit) {
        (false, _) => 8,
        (true, false) => 10,
        (true, true) => 12,
    }
}

/// `av01.0.04M.08` (with the monochrome/chroma fields appended when not 4:2:0 colour).
pub(crate) fn av1(av1c: &Av1c) -> String {
    let tier = if av1c.seq_tier_0 { 'H' } else { 'M' };
    let mut codec = format!(
        "av01.{}.{:02}{tier}.{:02}",
        av1c.seq_profile,
        av1c.seq_level_idx_0,
        av1_bit_depth(av1c)
    );
    let default_chroma = !av1c.monochrome
        && av1c.chroma_subsampling_x
        && av1c.chroma_subsampling_y
        && av1c.chroma_sample_position == 0;
    if !default_chroma {
        codec.push_str(&format!(
            ".{}.{}{}{}.01.01.01.0",
            u8::from(av1c.monochrome),
            u8::from(av1c.chroma_subsampling_x),
            u8::from(av1c.chroma_subsampling_y),
            av1c.chroma_sample_position
        ));
    }
    codec
}

/// The av1C record an `av01` string describes (without config OBUs: the sequence header travels
/// in band with every keyframe).
pub(crate) fn parse_av1(codec: &str) -> Option<Av1c> {
    let mut fields = codec.strip_prefix("av01.")?.split('.');
    let seq_profile = fields.next()?.parse().ok()?;
    let level_tier = fields.next()?;
    let (level, tier) = level_tier.split_at_checked(2)?;
    let bit_depth: u8 = fields.next()?.parse().ok()?;
    let mut av1c = Av1c {
        seq_profile,
        seq_level_idx_0: level.parse().ok()?,
        seq_tier_0: tier == "H",
        high_bitdepth: bit_depth > 8,
        twelve_bit: bit_depth == 12,
        monochrome: false,
        chroma_subsampling_x: true,
        chroma_subsampling_y: true,
        chroma_sample_position: 0,
        initial_presentation_delay: None,
        config_obus: Vec::new(),
    };
    if let (Some(mono), Some(chroma)) = (fields.next(), fields.next()) {
        av1c.monochrome = mono == "1";
        let chroma = chroma.as_bytes();
        if let [x, y, position] = chroma[..] {
            av1c.chroma_subsampling_x = x == b'1';
            av1c.chroma_subsampling_y = y == b'1';
            av1c.chroma_sample_position = position.saturating_sub(b'0') & 3;
        }
    }
    Some(av1c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_strings() {
        assert_eq!(h264("avc1", 0x64, 0x00, 0x1f), "avc1.64001f");
    }

    #[test]
    fn h265_strings() {
        let hvcc = Hvcc {
            general_profile_idc: 1,
            general_profile_compatibility_flags: [0x60, 0, 0, 0],
            general_level_idc: 93,
            general_constraint_indicator_flags: [0xb0, 0, 0, 0, 0, 0],
            ..Default::default()
        };
        assert_eq!(h265("hev1", &hvcc), "hev1.1.6.L93.B0");
        let hvcc = Hvcc {
            general_profile_space: 0,
            general_tier_flag: true,
            general_profile_idc: 2,
            general_profile_compatibility_flags: [0x20, 0, 0, 0],
            general_level_idc: 120,
            general_constraint_indicator_flags: [0, 0, 0, 0, 0, 0],
            ..Default::default()
        };
        assert_eq!(h265("hvc1", &hvcc), "hvc1.2.4.H120");
    }

    #[test]
    fn vp9_and_av1_strings_round_trip() {
        for codec in ["vp09.00.10.08", "vp09.02.10.10.01.09.16.09.01"] {
            assert_eq!(vp9(&parse_vp9(codec).unwrap()), codec);
        }
        for codec in [
            "av01.0.04M.08",
            "av01.0.08M.10",
            "av01.1.13H.12.0.000.01.01.01.0",
        ] {
            assert_eq!(av1(&parse_av1(codec).unwrap()), codec);
        }
        assert_eq!(parse_vp9("vp09.x"), None);
        assert_eq!(parse_av1("av01.0"), None);
    }
}
