/** The transport surface the session needs (a WebTransport satisfies it), plus stream helpers. */

import { type Encoder, encode } from "../coding/primitives.ts";
import { ErrorCode, MoqError, WireCodes } from "../error.ts";

/** A bidirectional stream. */
export interface BidiStream {
	/** Bytes from the peer. */
	readonly readable: ReadableStream<Uint8Array>;
	/** Bytes to the peer. */
	readonly writable: WritableStream<Uint8Array>;
}

/** Options when opening a stream (W3C WebTransport `sendOrder`: higher is sent first). */
export interface StreamOptions {
	/** Send order; higher first. */
	sendOrder?: number;
}

/**
 * The subset of W3C `WebTransport` the session uses. A browser `WebTransport` fits as is; tests
 * use an in-memory pair.
 */
export interface Transport {
	/** The negotiated WT protocol ("" or undefined = none). */
	readonly protocol?: string;
	/** Resolves on close (clean or not); may reject on abrupt loss. */
	readonly closed: Promise<{ closeCode?: number; reason?: string }>;
	/** Peer-opened bidirectional streams. */
	readonly incomingBidirectionalStreams: ReadableStream<BidiStream>;
	/** Peer-opened unidirectional streams. */
	readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
	/** Open a bidirectional stream. */
	createBidirectionalStream(options?: StreamOptions): Promise<BidiStream>;
	/** Open a unidirectional stream. */
	createUnidirectionalStream(options?: StreamOptions): Promise<WritableStream<Uint8Array>>;
	/** Close the session with an application code. */
	close(info?: { closeCode?: number; reason?: string }): void;
}

/** Marks the error objects we make ourselves, with our own code (so they are not read as the peer's). */
const LOCAL_CODE = Symbol("moq local code");

/**
 * An error object carrying `wire` the way WebTransport expects it for RESET_STREAM / STOP_SENDING
 * (`wire` = the code in the peer's registry: {@link WireCodes.toStream}); `code` is ours, kept
 * for when the browser hands this very object back to us (a write after our own reset).
 */
export function streamError(wire: number, code = wire, message = ""): Error {
	const WTError = (globalThis as { WebTransportError?: new (...args: unknown[]) => Error }).WebTransportError;
	let err: Error | undefined;
	if (WTError) {
		// Chromium implements the older `WebTransportError({streamErrorCode, message})` constructor;
		// the current W3C text is `WebTransportError(message, {source, streamErrorCode})`.
		try {
			err = new WTError({ streamErrorCode: wire, message });
		} catch {
			try {
				err = new WTError(message, { source: "stream", streamErrorCode: wire });
			} catch {
				// fall through to a plain error carrying the code
			}
		}
	}
	err ??= Object.assign(new Error(message || `stream error ${wire}`), { streamErrorCode: wire, source: "stream" });
	return Object.assign(err, { [LOCAL_CODE]: code });
}

/**
 * Map a failed stream read/write (reset, stop, session loss) to a MoqError; a code from the
 * peer is read in its registry (`codes`; spec §8 when not given).
 */
export function mapStreamError(err: unknown, codes: WireCodes = new WireCodes("lite")): Error {
	if (err instanceof MoqError) return err;
	if (typeof err === "object" && err !== null) {
		const local = (err as { [LOCAL_CODE]?: number })[LOCAL_CODE];
		if (typeof local === "number") return new MoqError(local);
		const e = err as { streamErrorCode?: number | null; source?: string; message?: string };
		if (typeof e.streamErrorCode === "number") return codes.fromStream(e.streamErrorCode);
		if (e.source === "session") return new MoqError(ErrorCode.Transport, e.message || "session closed");
		if (e.source === "stream") return new MoqError(ErrorCode.Cancel, e.message || "stream reset");
	}
	return new MoqError(ErrorCode.Transport, err instanceof Error ? err.message : String(err));
}

/** The reason to STOP_SENDING with for our `code`, in the peer's registry. */
export function stopError(codes: WireCodes, code: number): Error {
	return streamError(codes.toStream(code), code);
}

/** The code to put on a reset for `err`. */
export function errorCode(err: unknown): number {
	return err instanceof MoqError ? err.code : ErrorCode.Transport;
}

/** A send stream: ordered writes, FIN, RESET with a code. Never throws on close/reset. */
export class Writer {
	readonly stream: WritableStream<Uint8Array>;
	readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
	readonly #codes: WireCodes;
	#done = false;

	/** Take the stream's writer lock; codes cross the wire in the peer's registry (`codes`; spec §8 when not given). */
	constructor(stream: WritableStream<Uint8Array>, codes: WireCodes = new WireCodes("lite")) {
		this.stream = stream;
		this.#writer = stream.getWriter();
		this.#codes = codes;
	}

	/** Write bytes (queued in order); rejects with a MoqError if the peer stopped the stream. */
	async write(bytes: Uint8Array): Promise<void> {
		try {
			await this.#writer.write(bytes);
		} catch (err) {
			throw mapStreamError(err, this.#codes);
		}
	}

	/** Encode with `fn` and write. */
	encode(fn: (e: Encoder) => void): Promise<void> {
		return this.write(encode(fn));
	}

	/** Resolves/rejects when the peer stops the stream or it closes. */
	get closed(): Promise<void> {
		return this.#writer.closed;
	}

	/** FIN (after queued writes). */
	async close(): Promise<void> {
		if (this.#done) return;
		this.#done = true;
		await this.#writer.close().catch(() => {});
	}

	/** RESET_STREAM with our `code`, sent in the peer's registry. */
	reset(code: number): void {
		if (this.#done) return;
		this.#done = true;
		this.#writer.abort(streamError(this.#codes.toStream(code), code)).catch(() => {});
	}

	/** Change the W3C send order (higher first). */
	set sendOrder(order: number) {
		(this.stream as { sendOrder?: number }).sendOrder = order;
	}
}
