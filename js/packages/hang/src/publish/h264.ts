/** H.264 helpers for the publisher: codec strings from SPS and level selection. */

import { annexBNalUnits } from "../annexb.ts";

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
