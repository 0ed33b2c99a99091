/** Shared test helpers: hex, a seeded PRNG, and an in-memory WebTransport-shaped pair. */
import type { BidiStream, StreamOptions, Transport } from "../src/index.ts";

/** Hex string (spaces allowed) → bytes. */
export function hex(s: string): Uint8Array {
	const clean = s.replace(/\s+/g, "");
	const out = new Uint8Array(clean.length / 2);
	for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
	return out;
}

/** Bytes → lowercase hex. */
export function toHex(b: Uint8Array): string {
	return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/** A readable stream delivering `bytes` in chunks of `size` (then FIN). */
export function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
	let pos = 0;
	return new ReadableStream<Uint8Array>({
		pull(controller) {
			if (pos >= bytes.length) {
				controller.close();
				return;
			}
			controller.enqueue(bytes.slice(pos, pos + size));
			pos += size;
		},
	});
}

function pipe(): TransformStream<Uint8Array, Uint8Array> {
	return new TransformStream<Uint8Array, Uint8Array>({}, { highWaterMark: 256 }, { highWaterMark: 256 });
}

type CloseInfo = { closeCode?: number; reason?: string };

/** One end of an in-memory transport: streams are TransformStream pairs (abort = RESET, cancel = STOP_SENDING). */
class MemoryTransport implements Transport {
	readonly protocol: string;
	readonly closed: Promise<CloseInfo>;
	readonly incomingBidirectionalStreams: ReadableStream<BidiStream>;
	readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
	peer!: MemoryTransport;
	/** Every send order set on uni streams we opened (for priority tests). */
	readonly uniOrders: (number | undefined)[] = [];
	#bi!: ReadableStreamDefaultController<BidiStream>;
	#uni!: ReadableStreamDefaultController<ReadableStream<Uint8Array>>;
	#resolveClosed!: (info: CloseInfo) => void;
	#done = false;

	constructor(protocol: string) {
		this.protocol = protocol;
		this.closed = new Promise((r) => {
			this.#resolveClosed = r;
		});
		this.incomingBidirectionalStreams = new ReadableStream({
			start: (c) => {
				this.#bi = c;
			},
		});
		this.incomingUnidirectionalStreams = new ReadableStream({
			start: (c) => {
				this.#uni = c;
			},
		});
	}

	async createBidirectionalStream(_options?: StreamOptions): Promise<BidiStream> {
		if (this.#done) throw new Error("closed");
		const up = pipe();
		const down = pipe();
		this.peer.#bi.enqueue({ readable: up.readable, writable: down.writable });
		return { readable: down.readable, writable: up.writable };
	}

	async createUnidirectionalStream(options?: StreamOptions): Promise<WritableStream<Uint8Array>> {
		if (this.#done) throw new Error("closed");
		const p = pipe();
		this.uniOrders.push(options?.sendOrder);
		this.peer.#uni.enqueue(p.readable);
		return p.writable;
	}

	close(info?: CloseInfo): void {
		this.#shutdown(info ?? {});
		this.peer.#shutdown(info ?? {});
	}

	#shutdown(info: CloseInfo): void {
		if (this.#done) return;
		this.#done = true;
		this.#resolveClosed(info);
		try {
			this.#bi.close();
			this.#uni.close();
		} catch {
			// already closed
		}
	}
}

/** Two connected in-memory transports (client, server) that negotiated `protocol` ("" = none). */
export function memoryPair(protocol: string): [MemoryTransport, MemoryTransport] {
	const a = new MemoryTransport(protocol);
	const b = new MemoryTransport(protocol);
	a.peer = b;
	b.peer = a;
	return [a, b];
}

/** Reject after `ms` so a hung test fails instead of stalling. */
export function within<T>(p: Promise<T>, ms = 2000, what = "operation"): Promise<T> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	const t = new Promise<T>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
	});
	return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * One end of an in-memory WebSocket: binary messages are copied and delivered on a later task,
 * `bufferedAmount` counts what the peer has not received yet; `paused` holds delivery (a congested
 * socket) until `resume()`.
 */
export class PipeSocket {
	protocol: string;
	bufferedAmount = 0;
	/** The highest `bufferedAmount` seen. */
	maxBuffered = 0;
	/** Every message this end sent, in order (for wire-level assertions). */
	readonly sent: (Uint8Array | string)[] = [];
	onmessage: ((event: { data: unknown }) => void) | null = null;
	onclose: ((event: { code: number; reason: string }) => void) | null = null;
	onerror: ((event: unknown) => void) | null = null;
	peer!: PipeSocket;
	paused = false;
	closed = false;
	readonly #queue: (Uint8Array | string)[] = [];

	constructor(protocol: string) {
		this.protocol = protocol;
	}

	send(data: Uint8Array | string): void {
		if (this.closed) return;
		const copy = typeof data === "string" ? data : data.slice();
		this.sent.push(copy);
		this.#queue.push(copy);
		this.bufferedAmount += typeof copy === "string" ? copy.length : copy.length;
		this.maxBuffered = Math.max(this.maxBuffered, this.bufferedAmount);
		setTimeout(() => this.#deliver(), 0);
	}

	/** Deliver what was held while paused. */
	resume(): void {
		this.paused = false;
		setTimeout(() => this.#deliver(), 0);
	}

	#deliver(): void {
		while (!this.paused && this.#queue.length > 0) {
			const msg = this.#queue.shift() as Uint8Array | string;
			this.bufferedAmount -= msg.length;
			if (this.peer.closed) continue;
			this.peer.onmessage?.({ data: typeof msg === "string" ? msg : msg.buffer });
		}
	}

	close(code = 1000, reason = ""): void {
		if (this.closed) return;
		this.closed = true;
		setTimeout(() => {
			this.#deliver();
			this.onclose?.({ code, reason });
			if (!this.peer.closed) {
				this.peer.closed = true;
				this.peer.onclose?.({ code, reason });
			}
		}, 0);
	}
}

/** Two connected in-memory WebSockets that negotiated `protocol`. */
export function socketPair(protocol: string): [PipeSocket, PipeSocket] {
	const a = new PipeSocket(protocol);
	const b = new PipeSocket(protocol);
	a.peer = b;
	b.peer = a;
	return [a, b];
}
