/**
 * QMux frame codec (draft-ietf-quic-qmux-00/-01 over WebSocket; moq-lite spec §14): pure functions
 * over bytes, no socket.
 *
 * One WebSocket binary message carries one QMux record's frames (qmux-01) or bare frames
 * (qmux-00). Every frame is a QUIC v1 frame (RFC 9000 §19) except the QMux extensions
 * QX_TRANSPORT_PARAMETERS and QX_PING, whose types exceed 2^53 and are read as bigints.
 *
 * The legacy `webtransport` framing (one-byte types, no flow control) is not implemented: the
 * client never offers it, and every relay that speaks it also speaks qmux-00/01.
 */

import { Cursor, Encoder, varintLength } from "../coding/primitives.ts";
import { DecodeError } from "../error.ts";

/** The QMux wire versions we speak, fixed by the WebSocket subprotocol. */
export type QmuxVersion = "qmux-00" | "qmux-01";

/** QX_TRANSPORT_PARAMETERS frame type ("\xffQMX\r\n\r\n" as a varint). */
export const QX_TRANSPORT_PARAMETERS = 0x3f5153300d0a0d0an;
/** QX_PING request frame type (qmux-01). */
export const QX_PING_REQUEST = 0x348c67529ef8c7bdn;
/** QX_PING response frame type (qmux-01). */
export const QX_PING_RESPONSE = 0x348c67529ef8c7ben;
/** The max_record_size transport parameter id (qmux-01). */
export const PARAM_MAX_RECORD_SIZE = 0x0571c59429cd0845n;

/** max_record_size when the peer does not send it, and the least it may advertise (qmux-01). */
export const DEFAULT_MAX_RECORD_SIZE = 16382;
/** qmux-00's max_frame_size: the largest message (= frame) either side sends or accepts. */
export const MAX_FRAME_SIZE_00 = 16384;
/** The largest STREAM payload we put in one frame (released peers reject more on receive). */
export const MAX_STREAM_PAYLOAD = MAX_FRAME_SIZE_00 - 32;
/** The most transport parameters we accept in one QX_TRANSPORT_PARAMETERS frame. */
export const MAX_PARAMS = 64;
/** Stream counts (MAX_STREAMS, STREAMS_BLOCKED) above 2^60 are a frame encoding error (RFC 9000 §19.11). */
export const MAX_STREAM_COUNT = 2 ** 60;

/** QUIC transport error codes (RFC 9000 §20.1) used in CONNECTION_CLOSE 0x1c. */
export const TransportError = {
	/** No error. */
	NoError: 0x0,
	/** Internal error. */
	Internal: 0x1,
	/** The peer exceeded a flow-control limit. */
	FlowControl: 0x3,
	/** The peer opened more streams than allowed. */
	StreamLimit: 0x4,
	/** A frame for a stream in a state that forbids it. */
	StreamState: 0x5,
	/** Data past a stream's final size, or a changed final size. */
	FinalSize: 0x6,
	/** A frame that does not decode. */
	FrameEncoding: 0x7,
	/** Bad transport parameters. */
	TransportParameter: 0x8,
	/** Legal bytes in an illegal order. */
	ProtocolViolation: 0xa,
} as const;

/** A QMux connection error: the session ends with CONNECTION_CLOSE carrying {@link QmuxError.transportCode}. */
export class QmuxError extends DecodeError {
	/** The QUIC transport error code (see {@link TransportError}). */
	readonly transportCode: number;

	/** An error the peer caused, closing the connection with `transportCode`. */
	constructor(transportCode: number, message: string) {
		super(`qmux: ${message}`);
		this.name = "QmuxError";
		this.transportCode = transportCode;
	}
}

/** Transport parameters (RFC 9000 §18.2 plus QMux's max_record_size); absent = 0 (record size: 16382). */
export interface TransportParams {
	/** max_idle_timeout (0x01), ms; 0 = none. */
	maxIdleTimeout: number;
	/** initial_max_data (0x04). */
	initialMaxData: number;
	/** initial_max_stream_data_bidi_local (0x05): bidi streams the sender of these params opened. */
	initialMaxStreamDataBidiLocal: number;
	/** initial_max_stream_data_bidi_remote (0x06): bidi streams the receiver of these params opens. */
	initialMaxStreamDataBidiRemote: number;
	/** initial_max_stream_data_uni (0x07). */
	initialMaxStreamDataUni: number;
	/** initial_max_streams_bidi (0x08). */
	initialMaxStreamsBidi: number;
	/** initial_max_streams_uni (0x09). */
	initialMaxStreamsUni: number;
	/** max_datagram_frame_size (0x20); 0 = no datagrams. */
	maxDatagramFrameSize: number;
	/** max_record_size (qmux-01); {@link DEFAULT_MAX_RECORD_SIZE} when absent. */
	maxRecordSize: number;
}

/** Parameters with every field at its default. */
export function defaultParams(): TransportParams {
	return {
		maxIdleTimeout: 0,
		initialMaxData: 0,
		initialMaxStreamDataBidiLocal: 0,
		initialMaxStreamDataBidiRemote: 0,
		initialMaxStreamDataUni: 0,
		initialMaxStreamsBidi: 0,
		initialMaxStreamsUni: 0,
		maxDatagramFrameSize: 0,
		maxRecordSize: DEFAULT_MAX_RECORD_SIZE,
	};
}

const PARAM_IDS: [bigint, keyof TransportParams][] = [
	[0x01n, "maxIdleTimeout"],
	[0x04n, "initialMaxData"],
	[0x05n, "initialMaxStreamDataBidiLocal"],
	[0x06n, "initialMaxStreamDataBidiRemote"],
	[0x07n, "initialMaxStreamDataUni"],
	[0x08n, "initialMaxStreamsBidi"],
	[0x09n, "initialMaxStreamsUni"],
	[0x20n, "maxDatagramFrameSize"],
	[PARAM_MAX_RECORD_SIZE, "maxRecordSize"],
];

/** QUIC v1 parameters QMux forbids (they only make sense with QUIC's packet layer). */
function forbiddenParam(id: bigint): boolean {
	return id === 0x00n || id === 0x02n || id === 0x03n || (id >= 0x0an && id <= 0x10n);
}

/** A decoded frame. PADDING is skipped by the decoder and never appears. */
export type Frame =
	| { type: "stream"; id: number; offset: number; data: Uint8Array; fin: boolean }
	| { type: "reset_stream"; id: number; code: number; finalSize: number }
	| { type: "stop_sending"; id: number; code: number }
	| { type: "max_data"; max: number }
	| { type: "max_stream_data"; id: number; max: number }
	| { type: "max_streams"; bidi: boolean; max: number }
	| { type: "data_blocked"; limit: number }
	| { type: "stream_data_blocked"; id: number; limit: number }
	| { type: "streams_blocked"; bidi: boolean; limit: number }
	/** CONNECTION_CLOSE: `application` = 0x1d (app code), else 0x1c (transport error, with the offending frame type). */
	| { type: "connection_close"; application: boolean; code: number; frameType?: number; reason: string }
	| { type: "transport_parameters"; params: TransportParams }
	| { type: "ping"; response: boolean; sequence: number }
	| { type: "datagram"; data: Uint8Array };

/**
 * Encode one frame. STREAM frames always carry the OFF and LEN bits (like the reference);
 * `version` decides which transport parameters are written.
 */
export function encodeFrame(e: Encoder, f: Frame, version: QmuxVersion = "qmux-01"): void {
	switch (f.type) {
		case "stream":
			e.varint(0x08 | 0x04 | 0x02 | (f.fin ? 0x01 : 0));
			e.varint(f.id).varint(f.offset).varint(f.data.length).bytes(f.data);
			return;
		case "reset_stream":
			e.varint(0x04).varint(f.id).varint(f.code).varint(f.finalSize);
			return;
		case "stop_sending":
			e.varint(0x05).varint(f.id).varint(f.code);
			return;
		case "max_data":
			e.varint(0x10).varint(f.max);
			return;
		case "max_stream_data":
			e.varint(0x11).varint(f.id).varint(f.max);
			return;
		case "max_streams":
			e.varint(f.bidi ? 0x12 : 0x13).varint(f.max);
			return;
		case "data_blocked":
			e.varint(0x14).varint(f.limit);
			return;
		case "stream_data_blocked":
			e.varint(0x15).varint(f.id).varint(f.limit);
			return;
		case "streams_blocked":
			e.varint(f.bidi ? 0x16 : 0x17).varint(f.limit);
			return;
		case "connection_close": {
			const reason = new TextEncoder().encode(f.reason);
			e.varint(f.application ? 0x1d : 0x1c).varint(f.code);
			if (!f.application) e.varint(f.frameType ?? 0);
			e.varint(reason.length).bytes(reason);
			return;
		}
		case "transport_parameters": {
			const body = encodeParams(f.params, version);
			e.varintBig(QX_TRANSPORT_PARAMETERS).varint(body.length).bytes(body);
			return;
		}
		case "ping":
			e.varintBig(f.response ? QX_PING_RESPONSE : QX_PING_REQUEST).varint(f.sequence);
			return;
		case "datagram":
			e.varint(0x31).varint(f.data.length).bytes(f.data);
			return;
	}
}

/** The bytes of one frame. */
export function frameBytes(f: Frame, version: QmuxVersion = "qmux-01"): Uint8Array {
	const e = new Encoder();
	encodeFrame(e, f, version);
	return e.finish();
}

/** The most bytes a STREAM frame header takes for stream `id` at `offset` (payload length < 2^14). */
export function streamHeaderSize(id: number, offset: number): number {
	return 1 + varintLength(id) + varintLength(offset) + 2;
}

/**
 * Encode transport parameters (zero-valued ones are omitted, as are qmux-01-only ones on
 * qmux-00; max_record_size only when it differs from the default).
 */
export function encodeParams(p: TransportParams, version: QmuxVersion = "qmux-01"): Uint8Array {
	const e = new Encoder();
	for (const [id, key] of PARAM_IDS) {
		const value = p[key];
		if (value === 0) continue;
		if (key === "maxRecordSize" && (version !== "qmux-01" || value === DEFAULT_MAX_RECORD_SIZE)) continue;
		if ((key === "maxDatagramFrameSize" || key === "maxIdleTimeout") && version !== "qmux-01") continue;
		e.varintBig(id).varint(varintLength(value)).varint(value);
	}
	return e.finish();
}

/** Decode a transport parameter list; unknown ids are skipped, duplicates and forbidden ids are errors. */
export function decodeParams(bytes: Uint8Array): TransportParams {
	const params = defaultParams();
	const seen = new Set<bigint>();
	const c = new Cursor(bytes);
	try {
		while (c.remaining > 0) {
			if (seen.size >= MAX_PARAMS) throw new QmuxError(TransportError.TransportParameter, "too many parameters");
			const id = c.varintBig();
			const len = c.varint();
			if (len > c.remaining) throw new QmuxError(TransportError.TransportParameter, "parameter runs past its frame");
			const value = c.sub(len);
			if (seen.has(id))
				throw new QmuxError(TransportError.TransportParameter, `duplicate parameter 0x${id.toString(16)}`);
			seen.add(id);
			if (forbiddenParam(id))
				throw new QmuxError(TransportError.TransportParameter, `forbidden parameter 0x${id.toString(16)}`);
			const known = PARAM_IDS.find(([k]) => k === id);
			if (!known) continue;
			const v = value.varint();
			if (value.remaining !== 0)
				throw new QmuxError(TransportError.TransportParameter, `parameter 0x${id.toString(16)} has trailing bytes`);
			params[known[1]] = v;
		}
	} catch (err) {
		throw asQmuxError(err, TransportError.TransportParameter);
	}
	return params;
}

/** A decode failure as a QmuxError (short reads and bad varints are frame encoding errors). */
function asQmuxError(err: unknown, code: number): QmuxError {
	if (err instanceof QmuxError) return err;
	const message = err instanceof Error ? err.message : String(err);
	return new QmuxError(code, message === "need more bytes" ? "truncated frame" : message);
}

/** A stream count: above 2^60 is an error (RFC 9000 §19.11); above 2^53 it is as good as unlimited. */
function count(c: Cursor, what: string): number {
	const v = c.varintBig();
	if (v > BigInt(MAX_STREAM_COUNT)) throw new QmuxError(TransportError.FrameEncoding, `${what} ${v} exceeds 2^60`);
	return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** A varint that may exceed 2^53 (error codes): saturates to {@link Number.MAX_SAFE_INTEGER}. */
function code(c: Cursor): number {
	const v = c.varintBig();
	return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Decode one frame at the cursor; undefined for PADDING. Throws {@link QmuxError} only. */
export function decodeFrame(c: Cursor): Frame | undefined {
	let type: bigint;
	try {
		type = c.varintBig();
	} catch (err) {
		throw asQmuxError(err, TransportError.FrameEncoding);
	}
	try {
		return decodeBody(c, type);
	} catch (err) {
		throw asQmuxError(err, TransportError.FrameEncoding);
	}
}

function decodeBody(c: Cursor, type: bigint): Frame | undefined {
	if (type === 0x00n) return undefined;
	if (type >= 0x08n && type <= 0x0fn) {
		const bits = Number(type);
		const id = c.varint();
		const offset = bits & 0x04 ? c.varint() : 0;
		const len = bits & 0x02 ? c.varint() : c.remaining;
		if (len > c.remaining) throw new QmuxError(TransportError.FrameEncoding, "STREAM length runs past its message");
		if (offset + len > Number.MAX_SAFE_INTEGER)
			throw new QmuxError(TransportError.FrameEncoding, "STREAM offset exceeds 2^53");
		return { type: "stream", id, offset, data: c.bytes(len), fin: (bits & 0x01) !== 0 };
	}
	switch (type) {
		case 0x04n:
			return { type: "reset_stream", id: c.varint(), code: code(c), finalSize: c.varint() };
		case 0x05n:
			return { type: "stop_sending", id: c.varint(), code: code(c) };
		case 0x10n:
			return { type: "max_data", max: c.varint() };
		case 0x11n:
			return { type: "max_stream_data", id: c.varint(), max: c.varint() };
		case 0x12n:
		case 0x13n:
			return { type: "max_streams", bidi: type === 0x12n, max: count(c, "MAX_STREAMS") };
		case 0x14n:
			return { type: "data_blocked", limit: c.varint() };
		case 0x15n:
			return { type: "stream_data_blocked", id: c.varint(), limit: c.varint() };
		case 0x16n:
		case 0x17n:
			return { type: "streams_blocked", bidi: type === 0x16n, limit: count(c, "STREAMS_BLOCKED") };
		case 0x1cn:
		case 0x1dn: {
			const application = type === 0x1dn;
			const closeCode = code(c);
			const frameType = application ? undefined : code(c);
			const len = c.varint();
			if (len > c.remaining) throw new QmuxError(TransportError.FrameEncoding, "close reason runs past its message");
			const reason = new TextDecoder().decode(c.bytes(len));
			return application
				? { type: "connection_close", application, code: closeCode, reason }
				: { type: "connection_close", application, code: closeCode, frameType, reason };
		}
		case 0x30n:
			return { type: "datagram", data: c.bytes(c.remaining) };
		case 0x31n: {
			const len = c.varint();
			if (len > c.remaining) throw new QmuxError(TransportError.FrameEncoding, "DATAGRAM length runs past its message");
			return { type: "datagram", data: c.bytes(len) };
		}
		case QX_TRANSPORT_PARAMETERS: {
			const len = c.varint();
			if (len > c.remaining)
				throw new QmuxError(TransportError.FrameEncoding, "QX_TRANSPORT_PARAMETERS runs past its message");
			return { type: "transport_parameters", params: decodeParams(c.bytes(len)) };
		}
		case QX_PING_REQUEST:
		case QX_PING_RESPONSE:
			return { type: "ping", response: type === QX_PING_RESPONSE, sequence: c.varint() };
		default:
			throw new QmuxError(TransportError.FrameEncoding, `unknown frame type 0x${type.toString(16)}`);
	}
}

/**
 * Decode one WebSocket message: every frame in it (PADDING dropped), after checking its size
 * against `maxSize` (our max_record_size on qmux-01, max_frame_size on qmux-00). An empty message
 * is a no-op. QX_PING and DATAGRAM do not exist on qmux-00.
 */
export function decodeMessage(bytes: Uint8Array, version: QmuxVersion, maxSize: number): Frame[] {
	if (bytes.length > maxSize)
		throw new QmuxError(TransportError.FrameEncoding, `message of ${bytes.length} bytes exceeds ${maxSize}`);
	const c = new Cursor(bytes);
	const frames: Frame[] = [];
	while (c.remaining > 0) {
		const frame = decodeFrame(c);
		if (!frame) continue;
		if (version === "qmux-00" && (frame.type === "ping" || frame.type === "datagram"))
			throw new QmuxError(TransportError.FrameEncoding, `${frame.type} frame on qmux-00`);
		frames.push(frame);
	}
	return frames;
}
