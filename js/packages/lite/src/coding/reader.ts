/**
 * A decoding reader over a WebTransport receive stream (any `ReadableStream<Uint8Array>`).
 *
 * Keeps "need more" apart from "invalid": a decoder that runs short makes the reader pull another
 * chunk and retry; a DecodeError that is not "short" is thrown as is. Bytes are buffered in one
 * growing array (amortised O(n)); the buffer never exceeds what the message being decoded needs,
 * because every decoder checks its length fields against a MAX_* bound as soon as they are read.
 */
import { DecodeError, ErrorCode } from "../error.ts";
import { type Cursor, tryDecode } from "./primitives.ts";

/** Maps a stream read failure (reset, session gone) to an Error. */
export type ReadErrorMapper = (err: unknown) => Error;

/**
 * When the bytes of a decoded value arrived: what a reader needs to tell how fast a frame came in
 * over the network. Times are `performance.now()` ms at which the stream chunks were read.
 */
export interface Arrival {
	/** When the chunk holding the value's first byte was read. */
	firstMs: number;
	/** When the chunk holding its last byte was read. */
	lastMs: number;
	/** Bytes of the value in that first chunk; the rest came between `firstMs` and `lastMs`. */
	firstBytes: number;
	/** The value's encoded size. */
	bytes: number;
}

/** Buffered, decoding reader. One reader per stream; calls must not overlap. */
export class Reader {
	readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
	readonly #mapError: ReadErrorMapper;
	#buf = new Uint8Array(0);
	#start = 0;
	#end = 0;
	#eof = false;
	/** When the chunk holding the first buffered byte was read, and its bytes still buffered. */
	#firstMs = 0;
	#firstBytes = 0;
	/** When the last chunk was read. */
	#lastMs = 0;
	#arrival: Arrival | undefined;

	/** When the bytes of the value last decoded arrived. */
	get arrival(): Arrival | undefined {
		return this.#arrival;
	}

	/** Read from `stream`; read failures are passed through `mapError`. */
	constructor(stream: ReadableStream<Uint8Array>, mapError: ReadErrorMapper = (e) => e as Error) {
		this.#reader = stream.getReader();
		this.#mapError = mapError;
	}

	/** Pull one more chunk into the buffer; false at end of stream. */
	async #fill(): Promise<boolean> {
		if (this.#eof) return false;
		let result: ReadableStreamReadResult<Uint8Array>;
		try {
			result = await this.#reader.read();
		} catch (err) {
			throw this.#mapError(err);
		}
		if (result.done) {
			this.#eof = true;
			return false;
		}
		const chunk = result.value;
		if (chunk.length === 0) return true;
		const used = this.#end - this.#start;
		this.#lastMs = performance.now();
		if (used === 0) {
			this.#firstMs = this.#lastMs;
			this.#firstBytes = chunk.length;
		}
		if (this.#end + chunk.length > this.#buf.length) {
			if (used + chunk.length <= this.#buf.length && this.#start > 0) {
				this.#buf.copyWithin(0, this.#start, this.#end);
			} else {
				let cap = Math.max(this.#buf.length * 2, 4096);
				while (cap < used + chunk.length) cap *= 2;
				const next = new Uint8Array(cap);
				next.set(this.#buf.subarray(this.#start, this.#end));
				this.#buf = next;
			}
			this.#start = 0;
			this.#end = used;
		}
		this.#buf.set(chunk, this.#end);
		this.#end += chunk.length;
		return true;
	}

	/**
	 * Decode one value with `fn`, reading as much as needed. Returns undefined at a clean end of
	 * stream (nothing buffered); throws a DecodeError if the stream ends inside the value.
	 */
	async decodeMaybe<T>(fn: (c: Cursor) => T, eofCode: number = ErrorCode.Decode): Promise<T | undefined> {
		for (;;) {
			if (this.#end > this.#start) {
				const decoded = tryDecode(this.#buf.subarray(this.#start, this.#end), fn);
				if (decoded) {
					this.#start += decoded.size;
					this.#arrival = {
						firstMs: this.#firstMs,
						lastMs: this.#lastMs,
						firstBytes: Math.min(this.#firstBytes, decoded.size),
						bytes: decoded.size,
					};
					// What is left came with the last chunk.
					this.#firstMs = this.#lastMs;
					this.#firstBytes = this.#end - this.#start;
					if (this.#start === this.#end) {
						this.#start = 0;
						this.#end = 0;
					}
					return decoded.value;
				}
			}
			if (!(await this.#fill())) {
				if (this.#end === this.#start) return undefined;
				throw new DecodeError("stream ended inside a message", { code: eofCode });
			}
		}
	}

	/** Decode one value; the end of stream is an error here. */
	async decode<T>(fn: (c: Cursor) => T): Promise<T> {
		const value = await this.decodeMaybe(fn);
		if (value === undefined) throw new DecodeError("unexpected end of stream");
		return value;
	}

	/** True once the stream ended with nothing left buffered (waits for data or the end). */
	async done(): Promise<boolean> {
		for (;;) {
			if (this.#end > this.#start) return false;
			if (!(await this.#fill())) return true;
		}
	}

	/** Stop reading (STOP_SENDING with `code`, default 0). Never throws. */
	cancel(reason?: unknown): void {
		this.#reader.cancel(reason).catch(() => {});
	}
}
