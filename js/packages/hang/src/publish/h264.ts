/** H.264 helpers for the publisher: codec strings from SPS and level selection. */

/** The NAL units of an Annex-B access unit (without start codes). */
export function annexBNalUnits(data: Uint8Array): Uint8Array[] {
	const units: Uint8Array[] = [];
	let start = -1;
	let i = 0;
	while (i + 2 < data.length) {
		if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
			if (start >= 0) {
				let end = i;
				while (end > start && data[end - 1] === 0) end--;
				units.push(data.subarray(start, end));
			}
			i += 3;
			start = i;
		} else {
			i++;
		}
	}
	if (start >= 0 && start < data.length) units.push(data.subarray(start));
	return units;
}

/**
 * The catalog codec string of an Annex-B access unit holding an SPS: `avc3.PPCCLL` (in-band
 * parameter sets), as the Rust test pattern writes it. Undefined without an SPS.
 */
export function avc3CodecFromAnnexB(data: Uint8Array): string | undefined {
	for (const nal of annexBNalUnits(data)) {
		if (((nal[0] ?? 0) & 0x1f) !== 7 || nal.length < 4) continue;
		const hex = (b: number | undefined) => (b ?? 0).toString(16).padStart(2, "0");
		return `avc3.${hex(nal[1])}${hex(nal[2])}${hex(nal[3])}`;
	}
	return undefined;
}

/** A constrained-baseline `avc1` codec string whose level fits `width`×`height` at 30 fps. */
export function baselineCodecFor(width: number, height: number): string {
	const macroblocks = Math.ceil(width / 16) * Math.ceil(height / 16);
	if (macroblocks <= 1620) return "avc1.42e01e"; // 3.0: 720x576
	if (macroblocks <= 3600) return "avc1.42e01f"; // 3.1: 1280x720
	if (macroblocks <= 8192) return "avc1.42e028"; // 4.0: 1920x1080
	return "avc1.42e033"; // 5.1: 4096x2304
}

/** A reasonable default bitrate (bit/s) for a resolution and frame rate. */
export function defaultBitrate(width: number, height: number, framerate: number): number {
	return Math.round(Math.min(6_000_000, Math.max(200_000, width * height * framerate * 0.08)));
}
