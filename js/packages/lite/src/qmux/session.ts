/**
 * A {@link Transport} over a WebSocket carrying QMux (draft-ietf-quic-qmux-00/-01, moq-lite
 * spec §1.5 and §14): QUIC streams, flow control and close, one QMux record per binary message.
 *
 * ```
 * app ─write─► SendState queue ─┐                ┌─► RecvState queue ─read─► app
 *                               ├─ scheduler ─► WebSocket ─► decodeMessage ─┤
 * control frames (credit, resets)┘  (highest sendOrder first,  (frame.ts)   └─► incoming streams
 *                                    while bufferedAmount is low)
 * ```
 *
 * The core is symmetric (`server: true` plays the accepting side), so tests run two ends over an
 * in-memory message pipe. Flow control: the peer's limits (connection, per stream, stream
 * counts) are honoured when sending; our own credit is granted back as the app reads.
 */

import { Encoder } from "../coding/primitives.ts";
import type { BidiStream, StreamOptions, Transport } from "../session/stream.ts";
import {
	DEFAULT_MAX_RECORD_SIZE,
	decodeMessage,
	defaultParams,
	encodeFrame,
	type Frame,
	MAX_FRAME_SIZE_00,
	MAX_STREAM_PAYLOAD,
	QmuxError,
	type QmuxVersion,
	streamHeaderSize,
	TransportError,
	type TransportParams,
} from "./frame.ts";

/** The part of a browser `WebSocket` the transport uses (a real one is cast to it). */
export interface MessageSocket {
	/** The negotiated subprotocol. */
	readonly protocol: string;
	/** Bytes queued by `send` and not yet handed to the network. */
	readonly bufferedAmount: number;
	/** Send one binary message. */
	send(data: Uint8Array<ArrayBuffer>): void;
	/** Close the socket (code 1000 or 3000–4999, reason ≤ 123 bytes). */
	close(code?: number, reason?: string): void;
	/** A message arrived (`data`: ArrayBuffer for binary, string for text). */
	onmessage: ((event: { data: unknown }) => void) | null;
	/** The socket closed. */
	onclose: ((event: { code: number; reason: string }) => void) | null;
	/** The socket failed (a close event follows). */
	onerror: ((event: unknown) => void) | null;
}

/** Options of a {@link QmuxTransport}. */
export interface QmuxOptions {
	/** The QMux wire version (from the subprotocol). */
	version: QmuxVersion;
	/** The moq ALPN the subprotocol named ("" = none: the session uses the compat SETUP). */
	protocol: string;
	/** Play the accepting side (stream ids with the low bit set). Default false. */
	server?: boolean;
	/** Our limits; defaults in {@link DEFAULT_LIMITS}. */
	limits?: Partial<Limits>;
}

/** The credit we grant the peer; re-granted as the app consumes. */
export interface Limits {
	/** Connection receive window, bytes. */
	maxData: number;
	/** Per-stream receive window, bytes. */
	maxStreamData: number;
	/** Peer-opened bidirectional streams open at once. */
	maxStreamsBidi: number;
	/** Peer-opened unidirectional streams open at once. */
	maxStreamsUni: number;
}

/** Default {@link Limits}: 8 MiB per connection, 1 MiB per stream, 128 bidi and 256 uni streams. */
export const DEFAULT_LIMITS: Limits = {
	maxData: 8 * 1024 * 1024,
	maxStreamData: 1024 * 1024,
	maxStreamsBidi: 128,
	maxStreamsUni: 256,
};

/** Write to the socket only while its `bufferedAmount` is below this (keeps sendOrder meaningful). */
export const LOW_WATER = 64 * 1024;
/** A stream's writes wait while this many bytes are queued on it. */
export const STREAM_HIGH_WATER = 256 * 1024;
/** How often a blocked socket is polled for room (WebSocket has no drain event). */
const POLL_MS = 4;
/** qmux-01: send a QX_PING when nothing was sent for this long (the peer's idle timer counts records). */
const KEEPALIVE_MS = 10_000;
/** The largest record we build on qmux-01, even when the peer accepts more. */
const MAX_RECORD_OUT = 64 * 1024;

type CloseInfo = { closeCode?: number; reason?: string };

interface SendState {
	readonly id: number;
	order: number;
	readonly chunks: Uint8Array[];
	queued: number;
	/** Bytes sent (the next STREAM offset). */
	offset: number;
	/** The peer's MAX_STREAM_DATA for this stream. */
	max: number;
	/** The app closed the stream: FIN after the queue. */
	fin: boolean;
	/** FIN, RESET or STOP_SENDING ended it. */
	done: boolean;
	controller?: WritableStreamDefaultController;
	/** Writers waiting for room or for the FIN to go out. */
	waiters: (() => void)[];
	/** Set when the peer stopped the stream or the session ended. */
	error?: Error;
}

interface RecvState {
	readonly id: number;
	controller?: ReadableStreamDefaultController<Uint8Array>;
	readonly chunks: Uint8Array[];
	/** Bytes received (the next expected offset). */
	received: number;
	/** Bytes handed to the app (or dropped after a cancel). */
	consumed: number;
	/** The MAX_STREAM_DATA we granted. */
	max: number;
	readonly window: number;
	finalSize?: number;
	/** A read is waiting. */
	pulling: boolean;
	/** Closed, reset or cancelled: no more data for the app. */
	done: boolean;
}

function streamDir(id: number): "bidi" | "uni" {
	return Math.floor(id / 2) % 2 === 1 ? "uni" : "bidi";
}

function streamIndex(id: number): number {
	return Math.floor(id / 4);
}

/** An error as WebTransport gives it for a peer's RESET_STREAM / STOP_SENDING (see `mapStreamError`). */
function peerStreamError(code: number, what: string): Error {
	return Object.assign(new Error(`${what} with code ${code}`), { streamErrorCode: code, source: "stream" });
}

/** An error for streams cut by the end of the session. */
function sessionError(message: string): Error {
	return Object.assign(new Error(message), { source: "session" });
}

function errorCodeOf(reason: unknown): number {
	const code = (reason as { streamErrorCode?: unknown } | undefined)?.streamErrorCode;
	return typeof code === "number" && Number.isSafeInteger(code) && code >= 0 ? code : 0;
}

/** A UTF-8 prefix of `s` of at most `max` bytes (WebSocket close reasons are capped at 123). */
function truncate(s: string, max: number): string {
	let out = s.slice(0, max);
	while (new TextEncoder().encode(out).length > max) out = out.slice(0, -1);
	return out;
}

/**
 * QMux over one message socket, shaped like W3C WebTransport. Construct it on an open socket;
 * {@link QmuxTransport.ready} resolves once the peer's QX_TRANSPORT_PARAMETERS arrived.
 *
 * `closed` resolves with `{closeCode, reason}` for an application close (ours, the peer's
 * CONNECTION_CLOSE 0x1d, or a WebSocket close 1000 without one) and rejects for anything else
 * (a transport-error CONNECTION_CLOSE 0x1c, a protocol error, an abnormal WebSocket close).
 */
export class QmuxTransport implements Transport {
	/** The moq ALPN negotiated by the subprotocol ("" = none). */
	readonly protocol: string;
	/** The QMux wire version. */
	readonly version: QmuxVersion;
	/** Resolves on close (see the class documentation). */
	readonly closed: Promise<CloseInfo>;
	/** Resolves when the peer's transport parameters arrived; rejects if the session ends first. */
	readonly ready: Promise<void>;
	/** Peer-opened bidirectional streams. */
	readonly incomingBidirectionalStreams: ReadableStream<BidiStream>;
	/** Peer-opened unidirectional streams. */
	readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;

	readonly #socket: MessageSocket;
	readonly #server: boolean;
	readonly #limits: Limits;
	readonly #ours: TransportParams;
	#peer: TransportParams | undefined;
	readonly #maxIn: number;

	readonly #send = new Map<number, SendState>();
	readonly #recv = new Map<number, RecvState>();
	readonly #control: Frame[] = [];

	// Connection-level flow control.
	#sendMax = 0;
	#sendUsed = 0;
	#recvMax: number;
	#recvUsed = 0;
	#recvConsumed = 0;

	// Streams we open: the peer's limits and our counts.
	readonly #openMax = { bidi: 0, uni: 0 };
	readonly #opened = { bidi: 0, uni: 0 };
	readonly #openWaiters: (() => void)[] = [];

	// Streams the peer opens: what we allow, the next new index, unseen lower indices, retired count.
	readonly #peerMax: { bidi: number; uni: number };
	readonly #peerNext = { bidi: 0, uni: 0 };
	readonly #peerHoles = { bidi: new Set<number>(), uni: new Set<number>() };
	readonly #peerRetired = { bidi: 0, uni: 0 };
	/** Peer-opened bidi streams with one half still open (retired when both halves end). */
	readonly #bidiHalves = new Map<number, number>();

	#incomingBi!: ReadableStreamDefaultController<BidiStream>;
	#incomingUni!: ReadableStreamDefaultController<ReadableStream<Uint8Array>>;
	#resolveClosed!: (info: CloseInfo) => void;
	#rejectClosed!: (err: Error) => void;
	#resolveReady!: () => void;
	#rejectReady!: (err: Error) => void;

	#done = false;
	#flushing = false;
	#pollTimer: ReturnType<typeof setTimeout> | undefined;
	#keepalive: ReturnType<typeof setInterval> | undefined;
	#sentSinceTick = false;
	#pingSequence = 0;

	/** Start QMux on an open socket: our QX_TRANSPORT_PARAMETERS go out at once. */
	constructor(socket: MessageSocket, options: QmuxOptions) {
		this.#socket = socket;
		this.version = options.version;
		this.protocol = options.protocol;
		this.#server = options.server ?? false;
		this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
		this.#maxIn = this.version === "qmux-01" ? DEFAULT_MAX_RECORD_SIZE : MAX_FRAME_SIZE_00;
		this.#ours = {
			...defaultParams(),
			initialMaxData: this.#limits.maxData,
			initialMaxStreamDataBidiLocal: this.#limits.maxStreamData,
			initialMaxStreamDataBidiRemote: this.#limits.maxStreamData,
			initialMaxStreamDataUni: this.#limits.maxStreamData,
			initialMaxStreamsBidi: this.#limits.maxStreamsBidi,
			initialMaxStreamsUni: this.#limits.maxStreamsUni,
			maxRecordSize: this.#maxIn,
		};
		this.#recvMax = this.#limits.maxData;
		this.#peerMax = { bidi: this.#limits.maxStreamsBidi, uni: this.#limits.maxStreamsUni };

		this.closed = new Promise<CloseInfo>((resolve, reject) => {
			this.#resolveClosed = resolve;
			this.#rejectClosed = reject;
		});
		this.closed.catch(() => {});
		this.ready = new Promise<void>((resolve, reject) => {
			this.#resolveReady = resolve;
			this.#rejectReady = reject;
		});
		this.ready.catch(() => {});
		this.incomingBidirectionalStreams = new ReadableStream<BidiStream>({
			start: (c) => {
				this.#incomingBi = c;
			},
		});
		this.incomingUnidirectionalStreams = new ReadableStream<ReadableStream<Uint8Array>>({
			start: (c) => {
				this.#incomingUni = c;
			},
		});

		socket.onmessage = (event) => this.#onMessage(event.data);
		socket.onclose = (event) => this.#onSocketClose(event.code, event.reason);
		socket.onerror = () => {};

		// spec: §14 the first frame from each side is QX_TRANSPORT_PARAMETERS.
		this.#control.push({ type: "transport_parameters", params: this.#ours });
		this.#flush();
		if (this.version === "qmux-01") {
			this.#keepalive = setInterval(() => {
				if (!this.#sentSinceTick) this.#queue({ type: "ping", response: false, sequence: this.#pingSequence++ });
				this.#sentSinceTick = false;
			}, KEEPALIVE_MS);
			(this.#keepalive as { unref?: () => void }).unref?.();
		}
	}

	/** Open a bidirectional stream (waits for the peer's MAX_STREAMS credit). */
	async createBidirectionalStream(options?: StreamOptions): Promise<BidiStream> {
		const id = await this.#openId("bidi");
		const recv = this.#newRecv(id, this.#ours.initialMaxStreamDataBidiLocal);
		const send = this.#newSend(id, this.#peer?.initialMaxStreamDataBidiRemote ?? 0, options?.sendOrder ?? 0);
		return { readable: this.#readable(recv), writable: this.#writable(send) };
	}

	/** Open a unidirectional stream (waits for the peer's MAX_STREAMS credit). */
	async createUnidirectionalStream(options?: StreamOptions): Promise<WritableStream<Uint8Array>> {
		const id = await this.#openId("uni");
		return this.#writable(this.#newSend(id, this.#peer?.initialMaxStreamDataUni ?? 0, options?.sendOrder ?? 0));
	}

	/** Close with an application code: CONNECTION_CLOSE 0x1d, then a WebSocket close. */
	close(info?: CloseInfo): void {
		if (this.#done) return;
		const closeCode = info?.closeCode ?? 0;
		const reason = info?.reason ?? "";
		this.#shutdown(
			{ type: "connection_close", application: true, code: closeCode, reason: truncate(reason, 1024) },
			reason,
			{ closeCode, reason },
		);
	}

	/** Bytes queued on our streams and not yet written to the socket (for tests and stats). */
	get queuedBytes(): number {
		let n = 0;
		for (const s of this.#send.values()) n += s.queued;
		return n;
	}

	async #openId(dir: "bidi" | "uni"): Promise<number> {
		for (;;) {
			if (this.#done) throw sessionError("session closed");
			if (this.#opened[dir] < this.#openMax[dir]) break;
			await new Promise<void>((resolve) => this.#openWaiters.push(resolve));
		}
		const index = this.#opened[dir]++;
		return index * 4 + (dir === "uni" ? 2 : 0) + (this.#server ? 1 : 0);
	}

	#newSend(id: number, max: number, order: number): SendState {
		const state: SendState = { id, order, chunks: [], queued: 0, offset: 0, max, fin: false, done: false, waiters: [] };
		this.#send.set(id, state);
		return state;
	}

	#newRecv(id: number, window: number): RecvState {
		const state: RecvState = {
			id,
			chunks: [],
			received: 0,
			consumed: 0,
			max: window,
			window,
			pulling: false,
			done: false,
		};
		this.#recv.set(id, state);
		return state;
	}

	#writable(state: SendState): WritableStream<Uint8Array> {
		const stream = new WritableStream<Uint8Array>({
			start: (controller) => {
				state.controller = controller;
			},
			write: async (chunk) => {
				if (state.error) throw state.error;
				if (state.done) throw sessionError("stream finished");
				if (chunk.length > 0) {
					state.chunks.push(chunk);
					state.queued += chunk.length;
					this.#flush();
				}
				while (state.queued > STREAM_HIGH_WATER && !state.error && !state.done) {
					await new Promise<void>((resolve) => state.waiters.push(resolve));
				}
				if (state.error) throw state.error;
			},
			close: async () => {
				if (state.error) throw state.error;
				state.fin = true;
				this.#flush();
				while (!state.done && !state.error) await new Promise<void>((resolve) => state.waiters.push(resolve));
				if (state.error) throw state.error;
			},
			abort: (reason) => {
				if (state.done) return;
				this.#resetSend(state, errorCodeOf(reason));
			},
		});
		// W3C WebTransport: `sendOrder` on the stream object changes the send order live.
		Object.defineProperty(stream, "sendOrder", {
			get: () => state.order,
			set: (order: number) => {
				state.order = order;
			},
		});
		return stream;
	}

	#readable(state: RecvState): ReadableStream<Uint8Array> {
		return new ReadableStream<Uint8Array>(
			{
				start: (controller) => {
					state.controller = controller;
				},
				pull: () => {
					state.pulling = true;
					this.#deliver(state);
				},
				cancel: (reason) => {
					if (state.done) return;
					if (state.finalSize === undefined)
						this.#queue({ type: "stop_sending", id: state.id, code: errorCodeOf(reason) });
					this.#endRecv(state);
				},
			},
			{ highWaterMark: 0 },
		);
	}

	/** Hand one chunk to a waiting reader (granting its credit back), or close after the FIN. */
	#deliver(state: RecvState): void {
		if (state.done || !state.pulling) return;
		const chunk = state.chunks.shift();
		if (chunk) {
			state.pulling = false;
			state.controller?.enqueue(chunk);
			this.#consume(state, chunk.length);
			return;
		}
		if (state.finalSize !== undefined && state.received === state.finalSize) {
			state.controller?.close();
			this.#endRecv(state);
		}
	}

	/** `n` bytes of `state` left our buffers: re-grant stream and connection credit at half windows. */
	#consume(state: RecvState, n: number): void {
		state.consumed += n;
		if (state.finalSize === undefined && !state.done && state.max - state.consumed < state.window / 2) {
			state.max = state.consumed + state.window;
			this.#queue({ type: "max_stream_data", id: state.id, max: state.max });
		}
		this.#consumeConn(n);
	}

	/** `n` bytes left the connection window: re-grant MAX_DATA at half the window. */
	#consumeConn(n: number): void {
		this.#recvConsumed += n;
		if (this.#recvMax - this.#recvConsumed < this.#limits.maxData / 2) {
			this.#recvMax = this.#recvConsumed + this.#limits.maxData;
			this.#queue({ type: "max_data", max: this.#recvMax });
		}
	}

	/** The receive half ended (FIN read, reset or cancelled): release its buffered bytes, retire it. */
	#endRecv(state: RecvState): void {
		if (state.done) return;
		state.done = true;
		const unread = state.chunks.reduce((n, c) => n + c.length, 0);
		state.chunks.length = 0;
		if (unread > 0) this.#consume(state, unread);
		this.#recv.delete(state.id);
		this.#retireHalf(state.id);
	}

	/** The send half ended (FIN sent, reset, stopped). */
	#endSend(state: SendState): void {
		if (state.done) return;
		state.done = true;
		state.chunks.length = 0;
		state.queued = 0;
		this.#send.delete(state.id);
		for (const wake of state.waiters.splice(0)) wake();
		this.#retireHalf(state.id);
	}

	#resetSend(state: SendState, code: number): void {
		this.#queue({ type: "reset_stream", id: state.id, code, finalSize: state.offset });
		this.#endSend(state);
	}

	#peerInitiated(id: number): boolean {
		return (id % 2 === 1) !== this.#server;
	}

	/** A peer-opened stream's half ended; once all its halves have, its count is re-granted. */
	#retireHalf(id: number): void {
		if (!this.#peerInitiated(id)) return;
		const dir = streamDir(id);
		if (dir === "bidi") {
			const left = (this.#bidiHalves.get(id) ?? 1) - 1;
			if (left > 0) {
				this.#bidiHalves.set(id, left);
				return;
			}
			this.#bidiHalves.delete(id);
		}
		this.#peerRetired[dir]++;
		const window = dir === "bidi" ? this.#limits.maxStreamsBidi : this.#limits.maxStreamsUni;
		const max = this.#peerRetired[dir] + window;
		if (max - this.#peerMax[dir] >= Math.max(1, Math.floor(window / 4))) {
			this.#peerMax[dir] = max;
			this.#queue({ type: "max_streams", bidi: dir === "bidi", max });
		}
	}

	#queue(frame: Frame): void {
		if (this.#done) return;
		this.#control.push(frame);
		this.#flush();
	}

	// --- receiving ---

	#onMessage(data: unknown): void {
		if (this.#done) return;
		try {
			// spec: §14 text messages are a connection error.
			if (typeof data === "string") throw new QmuxError(TransportError.ProtocolViolation, "text message");
			let bytes: Uint8Array;
			if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
			else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
			else throw new QmuxError(TransportError.ProtocolViolation, "message is not binary");
			for (const frame of decodeMessage(bytes, this.version, this.#maxIn)) {
				this.#handle(frame);
				if (this.#done) return;
			}
		} catch (err) {
			this.#fail(err);
		}
	}

	#handle(frame: Frame): void {
		if (frame.type === "transport_parameters") {
			this.#onParams(frame.params);
			return;
		}
		// spec: §14 nothing may precede the peer's QX_TRANSPORT_PARAMETERS.
		if (!this.#peer)
			throw new QmuxError(TransportError.ProtocolViolation, `${frame.type} before QX_TRANSPORT_PARAMETERS`);
		switch (frame.type) {
			case "stream":
				this.#onStream(frame.id, frame.offset, frame.data, frame.fin);
				return;
			case "reset_stream":
				this.#onReset(frame.id, frame.code, frame.finalSize);
				return;
			case "stop_sending": {
				this.#checkSendable(frame.id);
				const state = this.#send.get(frame.id);
				if (!state) return;
				state.error = peerStreamError(frame.code, "STOP_SENDING");
				state.controller?.error(state.error);
				// RFC 9000 §3.5: answer STOP_SENDING with RESET_STREAM.
				this.#resetSend(state, frame.code);
				return;
			}
			case "max_data":
				if (frame.max > this.#sendMax) {
					this.#sendMax = frame.max;
					this.#flush();
				}
				return;
			case "max_stream_data": {
				this.#checkSendable(frame.id);
				const state = this.#send.get(frame.id);
				if (state && frame.max > state.max) {
					state.max = frame.max;
					this.#flush();
				}
				return;
			}
			case "max_streams": {
				const dir = frame.bidi ? "bidi" : "uni";
				if (frame.max > this.#openMax[dir]) {
					this.#openMax[dir] = frame.max;
					for (const wake of this.#openWaiters.splice(0)) wake();
				}
				return;
			}
			case "data_blocked":
			case "stream_data_blocked":
			case "streams_blocked":
				return;
			case "connection_close": {
				if (frame.application) {
					this.#shutdown(undefined, frame.reason, { closeCode: frame.code, reason: frame.reason });
				} else {
					const why = frame.reason ? `: ${frame.reason}` : "";
					const err = sessionError(`peer closed the connection with QUIC error 0x${frame.code.toString(16)}${why}`);
					this.#shutdown(undefined, frame.reason, err);
				}
				return;
			}
			case "ping":
				if (!frame.response) this.#queue({ type: "ping", response: true, sequence: frame.sequence });
				return;
			case "datagram":
				// We advertise max_datagram_frame_size 0.
				throw new QmuxError(TransportError.ProtocolViolation, "DATAGRAM without max_datagram_frame_size");
		}
	}

	#onParams(params: TransportParams): void {
		if (this.#peer) throw new QmuxError(TransportError.ProtocolViolation, "second QX_TRANSPORT_PARAMETERS");
		if (this.version === "qmux-01" && params.maxRecordSize < DEFAULT_MAX_RECORD_SIZE)
			throw new QmuxError(TransportError.TransportParameter, `max_record_size ${params.maxRecordSize} below 16382`);
		this.#peer = params;
		this.#sendMax = params.initialMaxData;
		this.#openMax.bidi = params.initialMaxStreamsBidi;
		this.#openMax.uni = params.initialMaxStreamsUni;
		// Streams opened before the parameters arrived start with the peer's initial windows.
		for (const state of this.#send.values()) {
			const peerOpened = this.#peerInitiated(state.id);
			if (streamDir(state.id) === "uni") state.max = params.initialMaxStreamDataUni;
			else state.max = peerOpened ? params.initialMaxStreamDataBidiLocal : params.initialMaxStreamDataBidiRemote;
		}
		for (const wake of this.#openWaiters.splice(0)) wake();
		this.#resolveReady();
		this.#flush();
	}

	/** A stream we may send on: ours, or a bidi one. Else STREAM_STATE_ERROR. */
	#checkSendable(id: number): void {
		const peer = this.#peerInitiated(id);
		const dir = streamDir(id);
		if (peer && dir === "uni") throw new QmuxError(TransportError.StreamState, `stream ${id} is receive-only`);
		if (!peer && streamIndex(id) >= this.#opened[dir])
			throw new QmuxError(TransportError.StreamState, `stream ${id} was never opened`);
	}

	/**
	 * The receive state for a frame on `id`: existing, newly opened by the peer (announced to the
	 * app), or undefined for a retired stream. Checks direction and the stream-count limit.
	 */
	#recvFor(id: number): RecvState | undefined {
		const existing = this.#recv.get(id);
		if (existing) return existing;
		const dir = streamDir(id);
		if (!this.#peerInitiated(id)) {
			if (dir === "uni") throw new QmuxError(TransportError.StreamState, `stream ${id} is send-only`);
			if (streamIndex(id) >= this.#opened.bidi)
				throw new QmuxError(TransportError.StreamState, `stream ${id} was never opened`);
			return undefined;
		}
		const index = streamIndex(id);
		if (index >= this.#peerMax[dir])
			throw new QmuxError(TransportError.StreamLimit, `stream ${id} exceeds MAX_STREAMS ${this.#peerMax[dir]}`);
		if (index >= this.#peerNext[dir]) {
			// RFC 9000 §3.2: opening index N opens all lower ones; they come alive with their first frame.
			for (let i = this.#peerNext[dir]; i < index; i++) this.#peerHoles[dir].add(i);
			this.#peerNext[dir] = index + 1;
		} else if (!this.#peerHoles[dir].delete(index)) {
			return undefined;
		}
		if (dir === "uni") {
			const state = this.#newRecv(id, this.#ours.initialMaxStreamDataUni);
			this.#incomingUni.enqueue(this.#readable(state));
			return state;
		}
		const state = this.#newRecv(id, this.#ours.initialMaxStreamDataBidiRemote);
		const send = this.#newSend(id, this.#peer?.initialMaxStreamDataBidiLocal ?? 0, 0);
		this.#bidiHalves.set(id, 2);
		this.#incomingBi.enqueue({ readable: this.#readable(state), writable: this.#writable(send) });
		return state;
	}

	#onStream(id: number, offset: number, data: Uint8Array, fin: boolean): void {
		const state = this.#recvFor(id);
		const end = offset + data.length;
		// The connection window counts every byte, also those of streams we no longer read.
		const fresh = state ? Math.max(0, end - state.received) : data.length;
		if (this.#recvUsed + fresh > this.#recvMax)
			throw new QmuxError(TransportError.FlowControl, `connection data ${this.#recvUsed + fresh} > ${this.#recvMax}`);
		this.#recvUsed += fresh;
		if (!state) {
			this.#consumeConn(fresh);
			return;
		}
		if (offset !== state.received)
			throw new QmuxError(
				TransportError.ProtocolViolation,
				`stream ${id}: offset ${offset}, expected ${state.received}`,
			);
		if (end > state.max) throw new QmuxError(TransportError.FlowControl, `stream ${id}: data ${end} > ${state.max}`);
		if (state.finalSize !== undefined && (end > state.finalSize || (fin && end !== state.finalSize)))
			throw new QmuxError(TransportError.FinalSize, `stream ${id}: data past final size ${state.finalSize}`);
		state.received = end;
		if (fin) state.finalSize = end;
		if (state.done) {
			this.#consume(state, data.length);
			return;
		}
		if (data.length > 0) state.chunks.push(data);
		this.#deliver(state);
	}

	#onReset(id: number, code: number, finalSize: number): void {
		const state = this.#recvFor(id);
		if (!state) return;
		if (finalSize < state.received || (state.finalSize !== undefined && finalSize !== state.finalSize))
			throw new QmuxError(TransportError.FinalSize, `stream ${id}: reset final size ${finalSize}`);
		if (finalSize > state.max) throw new QmuxError(TransportError.FlowControl, `stream ${id}: final size ${finalSize}`);
		const gap = finalSize - state.received;
		if (this.#recvUsed + gap > this.#recvMax)
			throw new QmuxError(TransportError.FlowControl, `connection data ${this.#recvUsed + gap} > ${this.#recvMax}`);
		this.#recvUsed += gap;
		state.received = finalSize;
		if (!state.done) state.controller?.error(peerStreamError(code, "RESET_STREAM"));
		this.#endRecv(state);
		if (gap > 0) this.#consume(state, gap);
	}

	// --- sending ---

	/** Write while the socket has room: control frames first, then stream data by sendOrder. */
	#flush(): void {
		if (this.#done || this.#flushing) return;
		this.#flushing = true;
		try {
			while (this.#socket.bufferedAmount < LOW_WATER) {
				const message = this.#nextMessage();
				if (!message) return;
				this.#socket.send(message as Uint8Array<ArrayBuffer>);
				this.#sentSinceTick = true;
			}
			// Blocked on the socket: poll for room (WebSocket has no drain event).
			if (this.#pending() && this.#pollTimer === undefined) {
				this.#pollTimer = setTimeout(() => {
					this.#pollTimer = undefined;
					this.#flush();
				}, POLL_MS);
			}
		} catch (err) {
			this.#fail(err);
		} finally {
			this.#flushing = false;
		}
	}

	/** Something could be written if the socket had room (credit-blocked streams do not count). */
	#pending(): boolean {
		return this.#control.length > 0 || (this.#peer !== undefined && this.#pick() !== undefined);
	}

	/** The largest message we may send. */
	#budget(): number {
		if (this.version === "qmux-00") return MAX_FRAME_SIZE_00;
		return Math.min(this.#peer?.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE, MAX_RECORD_OUT);
	}

	/**
	 * The next message: as many frames as fit one record (qmux-01) or exactly one frame (qmux-00).
	 * Stream data only after the peer's parameters, highest sendOrder first, in chunks of at most
	 * {@link MAX_STREAM_PAYLOAD} bytes so a new urgent stream waits for little.
	 */
	#nextMessage(): Uint8Array | undefined {
		const budget = this.#budget();
		const single = this.version === "qmux-00";
		const e = new Encoder();
		while (this.#control.length > 0) {
			const frame = this.#control[0] as Frame;
			const one = new Encoder();
			encodeFrame(one, frame, this.version);
			if (e.length > 0 && e.length + one.length > budget) return e.finish();
			this.#control.shift();
			e.bytes(one.finish());
			if (single) return e.finish();
		}
		if (!this.#peer) return e.length > 0 ? e.finish() : undefined;
		for (;;) {
			const state = this.#pick();
			if (!state) break;
			const header = streamHeaderSize(state.id, state.offset);
			const room = budget - e.length - header;
			if (room < 1 && !(state.queued === 0 && room >= 0)) break;
			const n = Math.min(
				state.queued,
				MAX_STREAM_PAYLOAD,
				room,
				state.max - state.offset,
				this.#sendMax - this.#sendUsed,
			);
			const data = take(state, n);
			const fin = state.fin && state.queued === 0;
			encodeFrame(e, { type: "stream", id: state.id, offset: state.offset, data, fin }, this.version);
			state.offset += n;
			this.#sendUsed += n;
			if (fin) this.#endSend(state);
			else if (state.queued <= STREAM_HIGH_WATER) for (const wake of state.waiters.splice(0)) wake();
			if (single) break;
		}
		return e.length > 0 ? e.finish() : undefined;
	}

	/** The stream to send from next: highest sendOrder, then lowest id; undefined if none can. */
	#pick(): SendState | undefined {
		let best: SendState | undefined;
		const connRoom = this.#sendMax - this.#sendUsed;
		for (const s of this.#send.values()) {
			const canData = s.queued > 0 && s.max > s.offset && connRoom > 0;
			const canFin = s.fin && s.queued === 0;
			if (!canData && !canFin) continue;
			if (!best || s.order > best.order || (s.order === best.order && s.id < best.id)) best = s;
		}
		return best;
	}

	// --- closing ---

	/** A local protocol error: CONNECTION_CLOSE 0x1c with the QUIC error code, then close. */
	#fail(err: unknown): void {
		if (this.#done) return;
		const code = err instanceof QmuxError ? err.transportCode : TransportError.Internal;
		const message = err instanceof Error ? err.message : String(err);
		this.#shutdown(
			{ type: "connection_close", application: false, code, frameType: 0, reason: truncate(message, 1024) },
			message,
			sessionError(message),
		);
	}

	#onSocketClose(code: number, reason: string): void {
		if (this.#done) return;
		if (code === 1000) this.#shutdown(undefined, reason, { closeCode: 0, reason });
		else this.#shutdown(undefined, reason, sessionError(`WebSocket closed (${code}${reason ? `: ${reason}` : ""})`));
	}

	/** End everything: send `last` (if any), close the socket, settle `closed`, error open streams. */
	#shutdown(last: Frame | undefined, reason: string, outcome: CloseInfo | Error): void {
		if (this.#done) return;
		this.#done = true;
		clearTimeout(this.#pollTimer);
		clearInterval(this.#keepalive);
		try {
			if (last) {
				const e = new Encoder();
				encodeFrame(e, last, this.version);
				this.#socket.send(e.finish() as Uint8Array<ArrayBuffer>);
			}
			this.#socket.close(1000, truncate(reason, 123));
		} catch {
			// the socket is already closed
		}
		const streamErr = outcome instanceof Error ? outcome : sessionError(`session closed (${outcome.closeCode ?? 0})`);
		for (const state of [...this.#send.values()]) {
			state.error = streamErr;
			state.controller?.error(streamErr);
			for (const wake of state.waiters.splice(0)) wake();
		}
		for (const state of [...this.#recv.values()]) {
			state.done = true;
			try {
				state.controller?.error(streamErr);
			} catch {
				// already closed
			}
		}
		this.#send.clear();
		this.#recv.clear();
		this.#control.length = 0;
		for (const wake of this.#openWaiters.splice(0)) wake();
		try {
			this.#incomingBi.close();
			this.#incomingUni.close();
		} catch {
			// already closed
		}
		this.#rejectReady(outcome instanceof Error ? outcome : sessionError("session closed during the handshake"));
		if (outcome instanceof Error) this.#rejectClosed(outcome);
		else this.#resolveClosed(outcome);
	}
}

/** Take `n` bytes off the front of a stream's queue. */
function take(state: SendState, n: number): Uint8Array {
	if (n === 0) return new Uint8Array(0);
	const first = state.chunks[0] as Uint8Array;
	let out: Uint8Array;
	if (first.length === n) {
		state.chunks.shift();
		out = first;
	} else if (first.length > n) {
		out = first.subarray(0, n);
		state.chunks[0] = first.subarray(n);
	} else {
		out = new Uint8Array(n);
		let pos = 0;
		while (pos < n) {
			const chunk = state.chunks[0] as Uint8Array;
			const k = Math.min(chunk.length, n - pos);
			out.set(chunk.subarray(0, k), pos);
			pos += k;
			if (k === chunk.length) state.chunks.shift();
			else state.chunks[0] = chunk.subarray(k);
		}
	}
	state.queued -= n;
	return out;
}
