/** Data (spec §5.12, §5.13, §5.16): GROUP header, FRAME, DATAGRAM. */
import { DecodeError, ErrorCode, MoqError } from "../error.ts";
import {
	type Cursor,
	type Encoder,
	getMessage,
	MAX_FRAME_SIZE,
	putMessage,
	zigzagDecode,
	zigzagEncode,
} from "./primitives.ts";
import { requireEncodable, requireVersion } from "./setup.ts";
import type { LiteVersion } from "./version.ts";

/** GROUP: the header of a Group uni stream. */
export interface GroupHeader {
	/** The SUBSCRIBE id this group answers. */
	subscribeId: number;
	/** Group sequence number. */
	sequence: number;
	/** lite-06: index of the first frame on the stream (0 = whole group); absent before lite-06. */
	frameStart?: number;
}

/** FRAME header: lite-05 carries a zigzag timestamp delta before the size. */
export interface FrameHeader {
	/** Delta vs the previous frame of the group (first frame: vs 0). 0 before lite-05. */
	timestampDelta: number;
	/** Payload bytes that follow (≤ {@link MAX_FRAME_SIZE}). */
	size: number;
}

/** A whole FRAME: header fields plus payload. */
export interface FrameMessage {
	/** Delta vs the previous frame (lite-05); 0 before. */
	timestampDelta: number;
	/** The payload. */
	payload: Uint8Array;
}

/** DATAGRAM (lite-05): a single-frame group outside any stream. */
export interface Datagram {
	/** The SUBSCRIBE id. */
	subscribeId: number;
	/** Group sequence. */
	sequence: number;
	/** Absolute timestamp in the track timescale. */
	timestamp: number;
	/** Payload (to the end of the datagram). */
	payload: Uint8Array;
}

/** Largest DATAGRAM accepted or sent. */
export const MAX_DATAGRAM_SIZE = 1200;

/** Encode GROUP. */
export function encodeGroup(e: Encoder, m: GroupHeader, version: LiteVersion): void {
	const frameStart = m.frameStart ?? 0;
	if (version < 6 && frameStart !== 0)
		throw new MoqError(ErrorCode.Unsupported, `frame start does not exist in moq-lite-0${version}`);
	putMessage(e, (b) => {
		b.varint(m.subscribeId).varint(m.sequence);
		if (version >= 6) b.varint(frameStart);
	});
}

/** Decode GROUP. */
export function decodeGroup(c: Cursor, version: LiteVersion): GroupHeader {
	return getMessage(c, (b): GroupHeader => {
		const subscribeId = b.varint();
		const sequence = b.varint();
		if (version < 6) return { subscribeId, sequence };
		return { subscribeId, sequence, frameStart: b.varint() };
	});
}

/** Encode a FRAME header (payload written separately). */
export function encodeFrameHeader(e: Encoder, m: FrameHeader, version: LiteVersion): void {
	if (m.size > MAX_FRAME_SIZE) throw new MoqError(ErrorCode.FrameTooLarge, `frame of ${m.size} bytes`);
	if (version >= 5) e.varint(zigzagEncode(m.timestampDelta));
	e.varint(m.size);
}

/** Decode a FRAME header; the size is checked against {@link MAX_FRAME_SIZE} before any payload is buffered. */
export function decodeFrameHeader(c: Cursor, version: LiteVersion): FrameHeader {
	const timestampDelta = version >= 5 ? zigzagDecode(c.varint()) : 0;
	const size = c.varint();
	if (size > MAX_FRAME_SIZE) throw new DecodeError(`frame of ${size} bytes`, { code: ErrorCode.FrameTooLarge });
	return { timestampDelta, size };
}

/** Encode a whole FRAME. */
export function encodeFrame(e: Encoder, m: FrameMessage, version: LiteVersion): void {
	encodeFrameHeader(e, { timestampDelta: m.timestampDelta, size: m.payload.length }, version);
	e.bytes(m.payload);
}

/** Decode a whole FRAME ("need more" until the payload is complete). */
export function decodeFrame(c: Cursor, version: LiteVersion): FrameMessage {
	const header = decodeFrameHeader(c, version);
	return { timestampDelta: header.timestampDelta, payload: c.bytes(header.size) };
}

/** Encode DATAGRAM (lite-05). */
export function encodeDatagram(e: Encoder, m: Datagram, version: LiteVersion): void {
	requireEncodable(version >= 5, "DATAGRAM", version);
	const start = e.length;
	e.varint(m.subscribeId).varint(m.sequence).varint(m.timestamp).bytes(m.payload);
	if (e.length - start > MAX_DATAGRAM_SIZE) throw new MoqError(ErrorCode.Encode, "datagram too large");
}

/** Decode DATAGRAM (lite-05): the whole of `c` is the datagram. */
export function decodeDatagram(c: Cursor, version: LiteVersion): Datagram {
	requireVersion(version >= 5, "DATAGRAM", version);
	if (c.remaining > MAX_DATAGRAM_SIZE) throw new DecodeError("datagram too large");
	try {
		return {
			subscribeId: c.varint(),
			sequence: c.varint(),
			timestamp: c.varint(),
			payload: c.bytes(c.remaining),
		};
	} catch (err) {
		// A datagram is complete by definition: running short means invalid.
		if (err instanceof DecodeError && err.short) throw new DecodeError("datagram truncated");
		throw err;
	}
}
