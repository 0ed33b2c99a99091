/**
 * Simulcast renditions of the browser publisher: the `renditions` attribute of `<hang-publish>`,
 * in the syntax of `hang publish --renditions`: `WIDTHxHEIGHT@KBPS`, comma-separated, e.g.
 * `640x360@1200,320x180@300` (`@KBPS` may be left out: the default bitrate for the size).
 */

/** One video rendition to publish: a coded size and a target bitrate. */
export interface PublishRendition {
	/** Coded width in pixels (even). */
	width: number;
	/** Coded height in pixels (even). */
	height: number;
	/** Target bitrate in bit/s; undefined: the default for the size and frame rate. */
	bitrate: number | undefined;
}

/** Most renditions one publisher encodes (each is a `VideoEncoder` fed every captured frame). */
export const MAX_RENDITIONS = 8;
/** Smallest rendition side, in pixels. */
export const MIN_RENDITION_SIDE = 16;
/** Largest rendition side, in pixels. */
export const MAX_RENDITION_SIDE = 4096;
/** Smallest rendition bitrate, in kbit/s. */
export const MIN_RENDITION_KBPS = 1;
/** Largest rendition bitrate, in kbit/s. */
export const MAX_RENDITION_KBPS = 100_000;

/** A `renditions` value (or a {@link PublishRendition} list) that cannot be published. */
export class RenditionError extends Error {
	override name = "RenditionError";
}

const SYNTAX = "expected WIDTHxHEIGHT@KBPS, e.g. 640x360@1200";
const DIGITS = /^[0-9]+$/;

/**
 * Parse a `renditions` value: one {@link PublishRendition} per comma-separated item, in order
 * (they become tracks `video0`, `video1`, ...). Spaces around items are ignored.
 *
 * @throws {RenditionError} naming the offending item: bad syntax, a side outside
 * {@link MIN_RENDITION_SIDE}..{@link MAX_RENDITION_SIDE} or odd, a bitrate outside
 * {@link MIN_RENDITION_KBPS}..{@link MAX_RENDITION_KBPS} kbit/s, none or more than
 * {@link MAX_RENDITIONS} items.
 *
 * @example
 * parseRenditions("640x360@1200,320x180@300");
 * // [{ width: 640, height: 360, bitrate: 1_200_000 }, { width: 320, height: 180, bitrate: 300_000 }]
 */
export function parseRenditions(text: string): PublishRendition[] {
	if (text.trim() === "") throw new RenditionError(`no renditions: ${SYNTAX}`);
	const items = text.split(",").map((item) => item.trim());
	if (items.length > MAX_RENDITIONS) {
		throw new RenditionError(`at most ${MAX_RENDITIONS} renditions, got ${items.length}`);
	}
	const renditions = items.map((item) => {
		const [size = "", kbps, extra] = item.split("@");
		const [width = "", height = "", more] = size.split("x");
		if (extra !== undefined || more !== undefined || !DIGITS.test(width) || !DIGITS.test(height)) {
			throw new RenditionError(`${JSON.stringify(item)}: ${SYNTAX}`);
		}
		if (kbps !== undefined && !DIGITS.test(kbps)) throw new RenditionError(`${JSON.stringify(item)}: ${SYNTAX}`);
		return {
			width: Number(width),
			height: Number(height),
			bitrate: kbps === undefined ? undefined : Number(kbps) * 1000,
		};
	});
	checkRenditions(renditions, items);
	return renditions;
}

/**
 * Check a rendition list against the limits {@link parseRenditions} enforces (for lists built in
 * code). `labels` name the items in error messages (default `WIDTHxHEIGHT`).
 *
 * @throws {RenditionError} on the first rendition out of bounds, or a list empty or too long
 */
export function checkRenditions(renditions: readonly PublishRendition[], labels?: readonly string[]): void {
	if (renditions.length === 0) throw new RenditionError("no renditions");
	if (renditions.length > MAX_RENDITIONS) {
		throw new RenditionError(`at most ${MAX_RENDITIONS} renditions, got ${renditions.length}`);
	}
	renditions.forEach(({ width, height, bitrate }, i) => {
		const label = JSON.stringify(labels?.[i] ?? `${width}x${height}`);
		const side = (n: number) => Number.isInteger(n) && n >= MIN_RENDITION_SIDE && n <= MAX_RENDITION_SIDE;
		if (!side(width) || !side(height)) {
			throw new RenditionError(`${label}: sides must be ${MIN_RENDITION_SIDE} to ${MAX_RENDITION_SIDE} pixels`);
		}
		if (width % 2 !== 0 || height % 2 !== 0) throw new RenditionError(`${label}: sides must be even (4:2:0)`);
		const kbps = bitrate === undefined ? undefined : bitrate / 1000;
		if (kbps !== undefined && !(Number.isFinite(kbps) && kbps >= MIN_RENDITION_KBPS && kbps <= MAX_RENDITION_KBPS)) {
			throw new RenditionError(`${label}: bitrate must be ${MIN_RENDITION_KBPS} to ${MAX_RENDITION_KBPS} kbit/s`);
		}
	});
}
