/**
 * From a catalog rendition to what the decoders need, whatever its container (spec §12.3):
 * the WebCodecs configuration and a function cutting each moq-lite frame into timed samples.
 *
 * - **legacy**: one sample per frame, its varint µs timestamp stripped; the catalog's config as is.
 * - **cmaf**: the init segment (catalog `init`, base64 `ftyp`+`moov`) is parsed once; its codec box
 *   is the `description` (it describes the samples, so it wins over the catalog's), its sample
 *   entry fills a missing coded size; each frame (`moof`+`mdat`) gives its samples with
 *   presentation times from `tfdt`/`trun` in the init's timescale.
 */

import type { AudioConfig, VideoConfig } from "../catalog.ts";
import { bytesToHex, containerKind } from "../catalog.ts";
import { decodeFrame } from "../container.ts";
import type { InitTrack, Sample } from "../fmp4.ts";
import { base64ToBytes, Fmp4Error, parseFragment, parseInit, pickTrack } from "../fmp4.ts";

export type { Sample } from "../fmp4.ts";

/** Cut one moq-lite frame into samples (decode order). Throws on a malformed frame. */
export type Unpack = (frame: Uint8Array) => Sample[];

/** A rendition ready to play: its decoder configuration and its frame unpacker. */
export interface Playable<C> {
	/** The rendition's config, with what the init segment says (CMAF). */
	config: C;
	/** Frame to samples. */
	unpack: Unpack;
}

/** The legacy container: one sample, the µs timestamp in front. */
export const unpackLegacy: Unpack = (frame) => {
	const { timestamp, payload } = decodeFrame(frame);
	return [{ timestamp, duration: 0, keyframe: true, payload }];
};

function cmafTrack(container: unknown, handler: string): InitTrack {
	const init = (container as { init?: unknown } | undefined)?.init;
	if (typeof init !== "string") throw new Fmp4Error("cmaf container without an init");
	return pickTrack(parseInit(base64ToBytes(init)), handler);
}

/** How to play a video rendition. Throws {@link Fmp4Error} for a CMAF rendition with a bad init. */
export function playableVideo(config: VideoConfig): Playable<VideoConfig> {
	if (containerKind(config) !== "cmaf") return { config, unpack: unpackLegacy };
	const track = cmafTrack(config.container, "vide");
	const out: VideoConfig = { ...config };
	if (track.description) out.description = bytesToHex(track.description);
	else if (track.entry === "vp08" || track.entry === "vp09") delete out.description;
	out.codedWidth ??= track.codedWidth;
	out.codedHeight ??= track.codedHeight;
	return { config: out, unpack: (frame) => parseFragment(frame, track) };
}

/** How to play an audio rendition. Throws {@link Fmp4Error} for a CMAF rendition with a bad init. */
export function playableAudio(config: AudioConfig): Playable<AudioConfig> {
	if (containerKind(config) !== "cmaf") return { config, unpack: unpackLegacy };
	const track = cmafTrack(config.container, "soun");
	const out: AudioConfig = { ...config };
	if (track.description) out.description = bytesToHex(track.description);
	return { config: out, unpack: (frame) => parseFragment(frame, track) };
}
