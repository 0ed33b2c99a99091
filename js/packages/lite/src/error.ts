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
	/** Nothing is announced or served at that path. */
	Unroutable: 30,
	/** Evicted under memory pressure. */
	Evicted: 31,
} as const;

/** An error carrying a moq-lite application error code (spec §8) in {@link MoqError.code}. */
export class MoqError extends Error {
	/** The spec §8 code; 64+n for application code n. */
	readonly code: number;

	/** An error with `code` and a human-readable message. */
	constructor(code: number, message?: string) {
		super(message ?? describeCode(code));
		this.name = "MoqError";
		this.code = code;
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
