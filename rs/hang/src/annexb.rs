//! H.264/H.265 Annex-B byte streams: NAL units separated by start codes.
//!
//! A start code is `00 00 01`, or `00 00 00 01` (the 4-byte form, whose extra zero the standard
//! lets an encoder put before any NAL unit). NAL units never end with a zero byte
//! (`rbsp_trailing_bits`), so the zeros before a start code are padding (`trailing_zero_8bits`)
//! or the first zero of a 4-byte start code, and are not part of the unit.
//!
//! ```
//! let stream = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88, 0];
//! let nals: Vec<&[u8]> = hang::annexb::nal_units(&stream).collect();
//! assert_eq!(nals, [&[0x67, 0x42][..], &[0x68, 0xce], &[0x65, 0x88]]);
//! ```

/// The NAL units of an Annex-B buffer, in order, without their start codes and trailing zero
/// bytes. Bytes before the first start code are not a NAL unit and are skipped, as are empty
/// units (back-to-back start codes, zero padding); a buffer without a start code has none.
pub fn nal_units(buf: &[u8]) -> NalUnits<'_> {
    let rest = find_001(buf, 0).map(|at| &buf[at + 3..]);
    NalUnits { rest }
}

/// Iterator over the NAL units of an Annex-B buffer: see [`nal_units`].
#[derive(Debug, Clone)]
pub struct NalUnits<'a> {
    /// What follows the last start code found; `None` once the last unit was returned.
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = self.rest?;
            let nal = match find_001(rest, 0) {
                Some(at) => {
                    self.rest = Some(&rest[at + 3..]);
                    &rest[..at]
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            let nal = trim_trailing_zeros(nal);
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    }
}

/// The position of the next start code whose `00 00 01` starts at or after `from`: of its first
/// zero, counting the extra zero of a 4-byte start code (which may be the byte before `from`).
/// `None` if there is none (yet: a start code may begin in the last two bytes and end in bytes
/// still to come).
pub fn find_start_code(buf: &[u8], from: usize) -> Option<usize> {
    let at = find_001(buf, from)?;
    Some(if at > 0 && buf[at - 1] == 0 {
        at - 1
    } else {
        at
    })
}

/// `nal` without its trailing zero bytes (padding, or the first zero of a 4-byte start code).
pub fn trim_trailing_zeros(nal: &[u8]) -> &[u8] {
    let end = nal.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    &nal[..end]
}

/// The position of the next `00 00 01` at or after `from`.
fn find_001(buf: &[u8], from: usize) -> Option<usize> {
    Some(buf.get(from..)?.windows(3).position(|w| w == [0, 0, 1])? + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nals(buf: &[u8]) -> Vec<Vec<u8>> {
        nal_units(buf).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn three_and_four_byte_start_codes() {
        assert_eq!(nals(&[0, 0, 1, 9, 0x10]), [vec![9, 0x10]]);
        assert_eq!(nals(&[0, 0, 0, 1, 9, 0x10]), [vec![9, 0x10]]);
        assert_eq!(
            nals(&[0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3]),
            [vec![0x67, 1], vec![0x68, 2], vec![0x65, 3]]
        );
    }

    #[test]
    fn trailing_zeros_are_not_part_of_a_unit() {
        assert_eq!(
            nals(&[0, 0, 1, 0x67, 1, 0, 0, 0, 0, 0, 1, 0x68, 0, 0]),
            [vec![0x67, 1], vec![0x68]]
        );
        // Zeros inside a unit (emulation prevention keeps them from forming a start code) stay.
        assert_eq!(
            nals(&[0, 0, 1, 0x65, 0, 0, 3, 1, 7]),
            [vec![0x65, 0, 0, 3, 1, 7]]
        );
    }

    #[test]
    fn empty_input_and_no_start_code_have_no_units() {
        assert!(nals(&[]).is_empty());
        assert!(nals(&[0x65, 1, 2, 3]).is_empty());
        assert!(nals(&[0, 0]).is_empty());
        assert!(nals(&[0, 1, 0x65]).is_empty(), "00 01 is not a start code");
        assert!(nals(&[0, 0, 0, 0]).is_empty());
    }

    #[test]
    fn back_to_back_start_codes_give_no_empty_units() {
        assert_eq!(nals(&[0, 0, 1, 0, 0, 1, 9, 1]), [vec![9, 1]]);
        assert_eq!(nals(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 9]), [vec![9]]);
        assert!(nals(&[0, 0, 1]).is_empty());
        assert!(nals(&[0, 0, 1, 0, 0, 1]).is_empty());
        assert_eq!(nals(&[0, 0, 1, 9, 0, 0, 1]), [vec![9]]);
    }

    #[test]
    fn bytes_before_the_first_start_code_are_skipped() {
        assert_eq!(nals(&[0x42, 0x43, 0, 0, 1, 9]), [vec![9]]);
    }

    #[test]
    fn start_code_positions() {
        assert_eq!(find_start_code(&[0, 0, 1, 9, 0, 0, 0, 1, 5], 3), Some(4));
        assert_eq!(find_start_code(&[0, 0, 1, 9, 7, 0, 0, 1, 5], 3), Some(5));
        assert_eq!(find_start_code(&[0, 0, 1, 9], 3), None);
        assert_eq!(find_start_code(&[0, 0, 0, 1], 0), Some(0));
        // The fourth zero counts even before `from`.
        assert_eq!(find_start_code(&[0, 0, 0, 1], 1), Some(0));
        assert_eq!(find_start_code(&[0, 0], 0), None);
        assert_eq!(find_start_code(&[], 5), None);
    }
}
