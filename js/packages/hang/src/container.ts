/**
 * The legacy frame container (spec §12.3): every moq-lite frame of a media track is
 * `Timestamp (QUIC varint, presentation time in µs)` followed by the codec payload. The keyframe
 * flag is not on the wire: the first frame of every group is a keyframe (§12.4).
 */

/** Largest value a QUIC varint can carry (2^62 − 1). JS numbers are exact only up to 2^53 − 1. */
export const MAX_VARINT = 2 ** 62 - 1;

/** A frame shorter than its timestamp varint, or a timestamp that cannot be encoded. */
export class ContainerError extends Error {
	/** @param message what is wrong */
	constructor(message: string) {
		super(message);
		this.name = "ContainerError";
	}
}

/** Number of bytes of the QUIC varint encoding of `value`. */
export function varintLength(value: number): 1 | 2 | 4 | 8 {
	if (value < 0x40) return 1;
	if (value < 0x4000) return 2;
	if (value < 0x4000_0000) return 4;
	return 8;
}

/** Write `value` as a QUIC varint at `offset` of `buf`; returns the offset after it. */
export function writeVarint(buf: Uint8Array, offset: number, value: number): number {
	if (!Number.isInteger(value) || value < 0 || value > MAX_VARINT) {
		throw new ContainerError(`${value} does not fit a QUIC varint`);
	}
	const len = varintLength(value);
	if (len === 1) {
		buf[offset] = value;
	} else if (len === 2) {
		buf[offset] = 0x40 | (value >> 8);
		buf[offset + 1] = value & 0xff;
	} else if (len === 4) {
		new DataView(buf.buffer, buf.byteOffset + offset, 4).setUint32(0, value + 0x8000_0000);
	} else {
		const view = new DataView(buf.buffer, buf.byteOffset + offset, 8);
		const hi = Math.floor(value / 2 ** 32);
		view.setUint32(0, (hi | 0xc000_0000) >>> 0);
		view.setUint32(4, value % 2 ** 32);
	}
	return offset + len;
}

/** Read a QUIC varint at `offset`: `[value, offset after it]`. Throws {@link ContainerError} if truncated. */
export function readVarint(buf: Uint8Array, offset = 0): [number, number] {
	const first = buf[offset];
	if (first === undefined) throw new ContainerError("truncated varint");
	const len = 1 << (first >> 6);
	if (offset + len > buf.byteLength) throw new ContainerError("truncated varint");
	const view = new DataView(buf.buffer, buf.byteOffset + offset, len);
	let value: number;
	if (len === 1) value = first & 0x3f;
	else if (len === 2) value = view.getUint16(0) & 0x3fff;
	else if (len === 4) value = view.getUint32(0) & 0x3fff_ffff;
	else value = (view.getUint32(0) & 0x3fff_ffff) * 2 ** 32 + view.getUint32(4);
	return [value, offset + len];
}

/** A decoded legacy frame. */
export interface LegacyFrame {
	/** Presentation time in microseconds. */
	timestamp: number;
	/** The codec bitstream (a view into the input). */
	payload: Uint8Array;
}

/** The wire form of a frame: varint `timestamp` (µs), then `payload`. */
export function encodeFrame(timestamp: number, payload: Uint8Array): Uint8Array {
	const out = new Uint8Array(varintLength(timestamp) + payload.byteLength);
	const offset = writeVarint(out, 0, timestamp);
	out.set(payload, offset);
	return out;
}

/** Split a moq-lite frame into its timestamp (µs) and codec payload. Throws {@link ContainerError}. */
export function decodeFrame(frame: Uint8Array): LegacyFrame {
	const [timestamp, offset] = readVarint(frame, 0);
	return { timestamp, payload: frame.subarray(offset) };
}
