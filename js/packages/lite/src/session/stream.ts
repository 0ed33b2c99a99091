/** The transport surface the session needs (a WebTransport satisfies it), plus stream helpers. */

import { type Encoder, encode } from "../coding/primitives.ts";
import { ErrorCode, MoqError } from "../error.ts";

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

/** An error object carrying `code` the way WebTransport expects it for RESET_STREAM / STOP_SENDING. */
export function streamError(code: number, message = ""): Error {
	const WTError = (globalThis as { WebTransportError?: new (...args: unknown[]) => Error }).WebTransportError;
	if (WTError) {
		// Chromium implements the older `WebTransportError({streamErrorCode, message})` constructor;
		// the current W3C text is `WebTransportError(message, {source, streamErrorCode})`.
		try {
			return new WTError({ streamErrorCode: code, message });
		} catch {
			try {
				return new WTError(message, { source: "stream", streamErrorCode: code });
			} catch {
				// fall through to a plain error carrying the code
			}
		}
	}
	return Object.assign(new Error(message || `stream error ${code}`), { streamErrorCode: code, source: "stream" });
}

/** Map a failed stream read/write (reset, stop, session loss) to a MoqError with the peer's code. */
export function mapStreamError(err: unknown): Error {
	if (err instanceof MoqError) return err;
	if (typeof err === "object" && err !== null) {
		const e = err as { streamErrorCode?: number | null; source?: string; message?: string };
		if (typeof e.streamErrorCode === "number") return new MoqError(e.streamErrorCode);
		if (e.source === "session") return new MoqError(ErrorCode.Transport, e.message || "session closed");
		if (e.source === "stream") return new MoqError(ErrorCode.Cancel, e.message || "stream reset");
	}
	return new MoqError(ErrorCode.Transport, err instanceof Error ? err.message : String(err));
}

/** The code to put on a reset for `err`. */
export function errorCode(err: unknown): number {
	return err instanceof MoqError ? err.code : ErrorCode.Transport;
}

/** A send stream: ordered writes, FIN, RESET with a code. Never throws on close/reset. */
export class Writer {
	readonly stream: WritableStream<Uint8Array>;
	readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
	#done = false;

	/** Take the stream's writer lock. */
	constructor(stream: WritableStream<Uint8Array>) {
		this.stream = stream;
		this.#writer = stream.getWriter();
	}

	/** Write bytes (queued in order); rejects with a MoqError if the peer stopped the stream. */
	async write(bytes: Uint8Array): Promise<void> {
		try {
			await this.#writer.write(bytes);
		} catch (err) {
			throw mapStreamError(err);
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

	/** RESET_STREAM with `code`. */
	reset(code: number): void {
		if (this.#done) return;
		this.#done = true;
		this.#writer.abort(streamError(code)).catch(() => {});
	}

	/** Change the W3C send order (higher first). */
	set sendOrder(order: number) {
		(this.stream as { sendOrder?: number }).sendOrder = order;
	}
}
