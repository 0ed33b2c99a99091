/**
 * Errors and their one mapping to the spec's numeric codes (moq-lite spec §8).
 *
 * Whose fault it was: {@link DecodeError} = the peer's bytes; {@link MoqError} with
 * {@link ErrorCode.ProtocolViolation} = legal bytes in an illegal order; other codes come from
 * the peer's resets/stops or from local state (closed, not found, ...).
 */

/** Application error codes used on RESET_STREAM, STOP_SENDING and session close (spec §8). */
export const ErrorCode = {
	/** Routine cancellation: unsubscribe, dropped group, normal close. */
	Cancel: 0,
	/** A required extension is missing. */
	RequiredExtension: 1,
	/** The group expired behind the live edge. */
	Old: 2,
	/** A timeout. */
	Timeout: 3,
	/** The QUIC/WebTransport connection failed. */
	Transport: 4,
	/** The peer sent bytes that do not decode. */
	Decode: 5,
	/** Not allowed. */
	Unauthorized: 6,
	/** No common version. */
	Version: 9,
	/** Unknown or unexpected stream type. */
	UnexpectedStream: 10,
	/** A varint or count exceeded its bounds. */
	BoundsExceeded: 11,
	/** Duplicate (path announced twice, reused id, ...). */
	Duplicate: 12,
	/** No such broadcast or track. */
	NotFound: 13,
	/** A frame ended before its declared size. */
	WrongSize: 14,
	/** Legal bytes in an illegal order. */
	ProtocolViolation: 15,
	/** A message not expected here. */
	UnexpectedMessage: 16,
	/** Unsupported feature. */
	Unsupported: 17,
	/** Encoding failed (value out of range). */
	Encode: 18,
	/** Too many parameters. */
	TooManyParameters: 19,
	/** The peer acted against its SETUP role. */
	InvalidRole: 20,
	/** The producer went away without finishing. */
	Dropped: 24,
	/** Closed. */
	Closed: 25,
	/** The reader fell behind. */
	Lagged: 26,
	/** A frame larger than allowed. */
	FrameTooLarge: 27,
	/** A frame's timestamp does not fit its track's timescale. */
	TimestampMismatch: 29,
	/** Nothing is announced or served at that path. */
	Unroutable: 30,
	/** Evicted under memory pressure. */
	Evicted: 31,
	/**
	 * The peer failed internally. Local name only (negative: never a lite code): a meaning of
	 * the moq-net registry (see {@link WireCodes}) that the lite registry lacks.
	 */
	Internal: -1,
	/** The peer is going away (GOAWAY). Local name only, like {@link ErrorCode.Internal}. */
	GoingAway: -2,
} as const;

/** An error carrying a moq-lite application error code (spec §8) in {@link MoqError.code}. */
export class MoqError extends Error {
	/** The spec §8 code; 64+n for application code n; negative for the local names in {@link ErrorCode}. */
	readonly code: number;
	/** The code as the peer put it on the wire, when it came from the peer and was translated. */
	readonly wireCode: number | undefined;

	/** An error with `code` and a human-readable message. */
	constructor(code: number, message?: string, wireCode?: number) {
		super(message ?? describeCode(code));
		this.name = "MoqError";
		this.code = code;
		this.wireCode = wireCode;
	}
}

/**
 * The peer's bytes do not decode (code 5, or 11/27 for bounds). `short` is set when the bytes
 * simply stop early: the caller should read more and retry (only meaningful at a message boundary).
 */
export class DecodeError extends MoqError {
	/** True when more bytes would let decoding continue ("need more"), false when the bytes are invalid. */
	readonly short: boolean;

	/** A decode failure; `short` = need more bytes. */
	constructor(message: string, options?: { short?: boolean; code?: number }) {
		super(options?.code ?? ErrorCode.Decode, message);
		this.name = "DecodeError";
		this.short = options?.short ?? false;
	}
}

/** A human-readable name for a spec §8 code. */
export function describeCode(code: number): string {
	for (const [name, value] of Object.entries(ErrorCode)) {
		if (value === code) return `${name} (${code})`;
	}
	if (code >= 64) return `application error ${code - 64}`;
	return `remote error code ${code}`;
}

/** Wrap anything thrown into an Error (keeps MoqError and Error instances as they are). */
export function toError(err: unknown): Error {
	if (err instanceof Error) return err;
	return new Error(String(err));
}

/**
 * Which numbering a peer uses for the codes on RESET_STREAM, STOP_SENDING and the session close.
 *
 * - `"lite"`: spec §8, one table for streams and sessions (session close 1 = transport-level
 *   termination). Our Rust relay and this client; the reference up to moq-net 0.2 (its git
 *   HEAD c867f20), moq-relay 0.10.x (lite-01/02/03).
 * - `"moq-net"`: the reference releases built on moq-net 0.3 (moq-relay 0.17.x), on every lite
 *   version they speak, lite-02 and lite-05 included: two disjoint registries taken from
 *   moq-transport. Streams: 0 internal, 1 cancel, 2 delivery timeout, 3 session closed,
 *   4 going away, 5 too far behind, 0x12 malformed track, 0x31 control timeout, 0x32 group too
 *   large, 0x33 not found, 0x34 old, 0x35 evicted, 0x36 unroutable, 0x37 wrong size, 0x38 frame
 *   too large, 0x39 timestamp mismatch. Sessions: 0 no error, 1 internal, 2 unauthorized,
 *   3 protocol violation, 6 key-value formatting, 0x10 goaway timeout, 0x11 timeout, 0x15 version.
 *   Both: 64+n application code n.
 *
 * Nothing on the wire names the registry (the SETUP of both is the same), so a session starts
 * not knowing it and learns it from the first code only one registry assigns.
 */
export type CodeRegistry = "lite" | "moq-net";

/** moq-net stream codes → our codes (spec §8 numbering) and names. */
const MOQ_NET_STREAM: Record<number, [number, string]> = {
	0: [ErrorCode.Internal, "internal error"],
	1: [ErrorCode.Cancel, "cancelled"],
	2: [ErrorCode.Old, "delivery timeout"],
	3: [ErrorCode.Closed, "session closed"],
	4: [ErrorCode.GoingAway, "going away"],
	5: [ErrorCode.Lagged, "too far behind"],
	18: [ErrorCode.Decode, "malformed track"],
	49: [ErrorCode.Timeout, "control timeout"],
	50: [ErrorCode.FrameTooLarge, "group too large"],
	51: [ErrorCode.NotFound, "not found"],
	52: [ErrorCode.Old, "old"],
	53: [ErrorCode.Evicted, "evicted"],
	54: [ErrorCode.Unroutable, "unroutable"],
	55: [ErrorCode.WrongSize, "wrong frame size"],
	56: [ErrorCode.FrameTooLarge, "frame too large"],
	57: [ErrorCode.TimestampMismatch, "timestamp mismatch"],
};

/** moq-net session codes → our codes and names. */
const MOQ_NET_SESSION: Record<number, [number, string]> = {
	1: [ErrorCode.Internal, "internal error"],
	2: [ErrorCode.Unauthorized, "unauthorized"],
	3: [ErrorCode.ProtocolViolation, "protocol violation"],
	6: [ErrorCode.Decode, "key-value formatting error"],
	16: [ErrorCode.Timeout, "goaway timeout"],
	17: [ErrorCode.Timeout, "control message timeout"],
	21: [ErrorCode.Version, "version negotiation failed"],
};

/** Our codes → moq-net stream codes (anything else is sent as 0, internal error). */
const TO_MOQ_NET_STREAM: Record<number, number> = {
	[ErrorCode.Cancel]: 0x1,
	[ErrorCode.Old]: 0x34,
	[ErrorCode.Timeout]: 0x31,
	[ErrorCode.Closed]: 0x3,
	[ErrorCode.GoingAway]: 0x4,
	[ErrorCode.Lagged]: 0x5,
	[ErrorCode.NotFound]: 0x33,
	[ErrorCode.Evicted]: 0x35,
	[ErrorCode.Unroutable]: 0x36,
	[ErrorCode.WrongSize]: 0x37,
	[ErrorCode.FrameTooLarge]: 0x38,
	[ErrorCode.TimestampMismatch]: 0x39,
};

/** Our codes → moq-net session codes (anything else is sent as 1, internal error). */
const TO_MOQ_NET_SESSION: Record<number, number> = {
	[ErrorCode.Cancel]: 0x0,
	[ErrorCode.Unauthorized]: 0x2,
	[ErrorCode.Decode]: 0x3,
	[ErrorCode.ProtocolViolation]: 0x3,
	[ErrorCode.UnexpectedStream]: 0x3,
	[ErrorCode.UnexpectedMessage]: 0x3,
	[ErrorCode.BoundsExceeded]: 0x3,
	[ErrorCode.Duplicate]: 0x3,
	[ErrorCode.InvalidRole]: 0x3,
	[ErrorCode.TooManyParameters]: 0x6,
	[ErrorCode.Timeout]: 0x11,
	[ErrorCode.Version]: 0x15,
};

/** Stream codes only the lite registry assigns (moq-net leaves 6..17, 19..31 unassigned on streams). */
function liteOnlyStreamCode(code: number): boolean {
	return code >= 6 && code <= 31 && code !== 0x12;
}

/**
 * The one place where codes cross the wire (spec §8), for one session: what a peer's code means
 * and what to send it, in the peer's {@link CodeRegistry}.
 *
 * Until the registry is known, codes are read as lite, except that a stream code 1 is a cancel:
 * lite's 1 (required extension) is a session matter that no stream is ever reset with, while
 * moq-net resets with 1 to cancel, and a cancelled stream must not read as a missing extension.
 * A code only one registry assigns (moq-net's 0x31..0x39, a stream code 1, lite's 6..31 on a
 * stream) settles the registry for the rest of the session.
 */
export class WireCodes {
	#registry: CodeRegistry | undefined;

	/** `registry` when known (pinned); undefined = learn it from the peer's codes. */
	constructor(registry?: CodeRegistry) {
		this.#registry = registry;
	}

	/** The peer's registry, once known. */
	get registry(): CodeRegistry | undefined {
		return this.#registry;
	}

	/** The error for a code the peer reset or stopped a stream with. */
	fromStream(code: number): MoqError {
		if (this.#registry === undefined) {
			if (code === 0x1 || (code >= 0x31 && code <= 0x39)) this.#registry = "moq-net";
			else if (liteOnlyStreamCode(code)) this.#registry = "lite";
		}
		if (code >= 64) return new MoqError(code, undefined, code);
		if (this.#registry === "moq-net") {
			const [ours, name] = MOQ_NET_STREAM[code] ?? [ErrorCode.Internal, `unknown stream code ${code}`];
			return new MoqError(ours, `${name} (stream code ${code})`, code);
		}
		// spec §8: 1 (required extension) only ever closes a session; on a stream it is moq-net's cancel.
		if (code === 0x1) return new MoqError(ErrorCode.Cancel, "cancelled (stream code 1)", code);
		return new MoqError(code, undefined, code);
	}

	/** The error for a session close code; undefined for a clean close (0). */
	fromSession(code: number, reason?: string): MoqError | undefined {
		if (code === 0) return undefined;
		const why = reason ? `: ${reason}` : "";
		if (code >= 64) return new MoqError(code, `${describeCode(code)}${why}`, code);
		if (this.#registry === "moq-net") {
			const [ours, name] = MOQ_NET_SESSION[code] ?? [ErrorCode.Internal, `unknown session code ${code}`];
			return new MoqError(ours, `${name} (session code ${code})${why}`, code);
		}
		// spec §8: a session closed with 1 ended at the transport level (moq-net: internal error).
		if (code === 0x1) return new MoqError(ErrorCode.Transport, `session closed with code 1${why}`, code);
		return new MoqError(code, `${describeCode(code)}${why}`, code);
	}

	/** The code to reset or stop a stream with, for our code `code`. */
	toStream(code: number): number {
		if (code >= 64) return code;
		if (this.#registry === "moq-net") return TO_MOQ_NET_STREAM[code] ?? 0x0;
		return code < 0 ? ErrorCode.Transport : code;
	}

	/** The code to close the session with, for our code `code`. */
	toSession(code: number): number {
		if (code >= 64) return code;
		if (this.#registry === "moq-net") return TO_MOQ_NET_SESSION[code] ?? 0x1;
		return code < 0 ? ErrorCode.Transport : code;
	}
}
