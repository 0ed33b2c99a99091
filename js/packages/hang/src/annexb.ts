/**
 * H.264/H.265 Annex-B byte streams: NAL units separated by start codes, `00 00 01` or the
 * 4-byte `00 00 00 01`. NAL units never end with a zero byte (`rbsp_trailing_bits`), so zeros
 * before a start code are padding or the first zero of a 4-byte start code, not part of the unit.
 * The same rules as the Rust `hang::annexb` module.
 */

/**
 * The NAL units of an Annex-B buffer, in order, without their start codes and trailing zero bytes
 * (views into `data`, not copies). Bytes before the first start code are not a NAL unit and are
 * skipped, as are empty units (back-to-back start codes, zero padding); a buffer without a start
 * code has none.
 */
export function annexBNalUnits(data: Uint8Array): Uint8Array[] {
	const units: Uint8Array[] = [];
	const push = (start: number, end: number) => {
		let trimmed = end;
		while (trimmed > start && data[trimmed - 1] === 0) trimmed--;
		if (trimmed > start) units.push(data.subarray(start, trimmed));
	};
	let start = -1;
	let i = 0;
	while (i + 2 < data.length) {
		if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
			if (start >= 0) push(start, i);
			i += 3;
			start = i;
		} else {
			i++;
		}
	}
	if (start >= 0) push(start, data.length);
	return units;
}
