/**
 * Subscriber side of a session: discovery (Announce streams we open), subscriptions (Track +
 * Subscribe streams we open) and the incoming Group streams routed to them by subscribe id.
 */
import {
	AnnounceIds,
	BiStream,
	decodeAnnounce,
	decodeAnnounceInit,
	decodeAnnounceMessage,
	decodeAnnounceOk,
	decodeFrame,
	decodeGroup,
	decodeSubscribeResponse,
	decodeTrackInfo,
	encodeAnnounceRequest,
	encodeSubscribe,
	encodeTrack,
	joinPath,
	type LiteVersion,
	normalizePath,
	Reader,
	type TrackInfo,
} from "../coding/index.ts";
import { ErrorCode, MoqError, toError, type WireCodes } from "../error.ts";
import { AnnouncedQueue } from "../model/announced.ts";
import { type Frame, type FrameSource, GroupConsumer } from "../model/group.ts";
import { type SubscribeOptions, TrackConsumer } from "../model/track.ts";
import { mapStreamError, stopError, type Transport, Writer } from "./stream.ts";

/**
 * How long after the publisher FINs a Subscribe stream we still accept Group streams for it (they
 * may still be in flight on other QUIC streams) unless SUBSCRIBE_END says all have been seen.
 */
const LINGER_MS = 500;

/** Most broadcasts live at once on one lite-06 Announce stream (as the Rust side). */
export const MAX_ANNOUNCED = 16 * 1024;

/** One of our subscriptions. */
interface Active {
	id: number;
	consumer: TrackConsumer;
	/** Exclusive end from SUBSCRIBE_END (lite-05). */
	end: number | undefined;
	/** Highest sequence received so far. */
	latest: number | undefined;
	/** Called when a group arrives (to finish early once the END is reached). */
	onGroup?: () => void;
	/** TRACK_INFO (lite-05) once known. */
	info?: TrackInfo;
}

/** Frames of one incoming Group stream, read on demand (backpressure = QUIC flow control). */
class WireFrames implements FrameSource {
	readonly #reader: Reader;
	readonly #version: LiteVersion;
	readonly #codes: WireCodes;
	#timestamp = 0;
	#chain: Promise<unknown> = Promise.resolve();
	#done = false;

	constructor(reader: Reader, version: LiteVersion, codes: WireCodes) {
		this.#reader = reader;
		this.#version = version;
		this.#codes = codes;
	}

	next(): Promise<Frame | undefined> {
		const result = this.#chain.then(() => this.#read());
		this.#chain = result.catch(() => {});
		return result;
	}

	async #read(): Promise<Frame | undefined> {
		if (this.#done) return undefined;
		const version = this.#version;
		// spec: §5.13 a stream that stops inside a frame is "wrong size" (14).
		const frame = await this.#reader.decodeMaybe((c) => decodeFrame(c, version), ErrorCode.WrongSize);
		if (!frame) {
			this.#done = true;
			return undefined;
		}
		const arrival = this.#reader.arrival;
		if (version < 5) return { payload: frame.payload, timestamp: undefined, arrival };
		// spec: §5.13 deltas are against the previous frame of the group, the first against 0.
		this.#timestamp += frame.timestampDelta;
		return { payload: frame.payload, timestamp: this.#timestamp, arrival };
	}

	cancel(): void {
		this.#done = true;
		// spec: §3.3 cancel a group = STOP_SENDING code 0.
		this.#reader.cancel(stopError(this.#codes, ErrorCode.Cancel));
	}
}

/** Discovery and subscriptions for one session. */
export class Subscriber {
	readonly #transport: Transport;
	readonly #version: LiteVersion;
	readonly #codes: WireCodes;
	readonly #subscriptions = new Map<number, Active>();
	readonly #announced = new Set<AnnouncedQueue>();
	readonly #violation: (err: MoqError) => void;
	#nextId = 0;
	#closed: Error | undefined;

	/**
	 * A subscriber on `transport` speaking `version`, with the peer's error `codes`. `violation` is
	 * told of a protocol violation on a stream we opened (it ends the session).
	 */
	constructor(
		transport: Transport,
		version: LiteVersion,
		codes: WireCodes,
		violation: (err: MoqError) => void = () => {},
	) {
		this.#transport = transport;
		this.#version = version;
		this.#codes = codes;
		this.#violation = violation;
	}

	#mapError = (err: unknown): Error => mapStreamError(err, this.#codes);

	/** Open an Announce stream for `prefix` and feed the returned queue. */
	announced(prefix: string): AnnouncedQueue {
		const normalized = normalizePath(prefix);
		let stop: (() => void) | undefined;
		const queue = new AnnouncedQueue(() => {
			this.#announced.delete(queue);
			stop?.();
		});
		if (this.#closed) {
			queue.finish();
			return queue;
		}
		this.#announced.add(queue);
		this.#runAnnounced(normalized, queue, (fn) => {
			stop = fn;
		})
			.catch((err: unknown) => {
				if (err instanceof MoqError && err.code === ErrorCode.ProtocolViolation) this.#violation(err);
			})
			.finally(() => {
				this.#announced.delete(queue);
				queue.finish();
			});
		return queue;
	}

	async #runAnnounced(prefix: string, queue: AnnouncedQueue, onStop: (stop: () => void) => void): Promise<void> {
		const version = this.#version;
		let stopped = false;
		let stopNow: (() => void) | undefined;
		onStop(() => {
			stopped = true;
			stopNow?.();
		});
		const stream = await this.#transport.createBidirectionalStream();
		const writer = new Writer(stream.writable, this.#codes);
		const reader = new Reader(stream.readable, this.#mapError);
		// The request goes out before any FIN: see #runSubscribe.
		await writer.encode((e) => {
			e.varint(BiStream.Announce);
			encodeAnnounceRequest(e, { prefix, excludeHop: 0 }, version);
		});
		stopNow = () => {
			// spec: §3.3 FIN our side to end the request; stop reading the rest.
			writer.close();
			reader.cancel(stopError(this.#codes, ErrorCode.Cancel));
		};
		if (stopped) {
			stopNow();
			return;
		}
		const live = new Set<string>();
		const set = (suffix: string, active: boolean) => {
			const path = joinPath(prefix, suffix);
			if (active === live.has(path)) return; // lite-05 restart of a live path: nothing changes for us
			if (active) live.add(path);
			else live.delete(path);
			queue.push({ path, active });
		};
		if (version >= 5) {
			await reader.decode((c) => decodeAnnounceOk(c, version));
		} else {
			const init = await reader.decode((c) => decodeAnnounceInit(c, version));
			for (const suffix of init.suffixes) set(suffix, true);
		}
		if (version >= 6) {
			// spec (lite-06): START takes the next id, END/UPDATE name a live one (else a protocol
			// violation), an unknown type is skipped. An UPDATE (new route) changes nothing for a leaf.
			const ids = new AnnounceIds();
			for (;;) {
				const message = await reader.decodeMaybe((c) => decodeAnnounceMessage(c, version));
				if (!message) break;
				if (message.type === "start" && ids.size >= MAX_ANNOUNCED)
					throw new MoqError(ErrorCode.ProtocolViolation, "too many announced broadcasts");
				const change = ids.apply(message);
				if (change) set(change.suffix, change.active);
			}
		} else {
			for (;;) {
				const announce = await reader.decodeMaybe((c) => decodeAnnounce(c, version));
				if (!announce) break;
				set(announce.suffix, announce.status !== 0);
			}
		}
		await writer.close();
	}

	/** Subscribe to `track` of the broadcast at `path`. */
	subscribe(path: string, track: string, options: SubscribeOptions): TrackConsumer {
		const id = this.#nextId++;
		const broadcast = normalizePath(path);
		let stop: (() => void) | undefined;
		const consumer = new TrackConsumer(track, () => {
			this.#subscriptions.delete(id);
			stop?.();
		});
		if (this.#closed) {
			consumer.abort(this.#closed);
			return consumer;
		}
		const active: Active = { id, consumer, end: undefined, latest: undefined };
		this.#subscriptions.set(id, active);
		const priority = options.priority ?? 0;
		const maxLatencyMs = options.maxLatencyMs ?? 0;
		if (!Number.isInteger(priority) || priority < 0 || priority > 255) throw new RangeError("priority must be 0..255");
		this.#runSubscribe(active, broadcast, track, priority, maxLatencyMs, (fn) => {
			stop = fn;
		}).then(
			() => this.#linger(active),
			(err: unknown) => {
				this.#subscriptions.delete(id);
				consumer.abort(toError(err));
			},
		);
		return consumer;
	}

	async #runSubscribe(
		active: Active,
		broadcast: string,
		track: string,
		priority: number,
		maxLatencyMs: number,
		onStop: (stop: () => void) => void,
	): Promise<void> {
		const version = this.#version;
		let stopped = false;
		let stopFns: (() => void)[] = [];
		onStop(() => {
			stopped = true;
			for (const fn of stopFns) fn();
		});

		// lite-05: TRACK and SUBSCRIBE go out together; a TRACK refusal (e.g. 13) fails the subscription.
		const info =
			version >= 5
				? (async () => {
						const stream = await this.#transport.createBidirectionalStream();
						const writer = new Writer(stream.writable, this.#codes);
						const reader = new Reader(stream.readable, this.#mapError);
						stopFns.push(() => {
							writer.reset(ErrorCode.Cancel);
							reader.cancel(stopError(this.#codes, ErrorCode.Cancel));
						});
						await writer.encode((e) => {
							e.varint(BiStream.Track);
							encodeTrack(e, { broadcast, track }, version);
						});
						// spec: §3.3 a FIN from the requester ends the transaction: the reference publisher
						// (moq-relay 0.17) reads a FIN before TRACK_INFO as a cancel and resets the stream.
						// So FIN only once TRACK_INFO is in, as the Rust subscriber does.
						active.info = await reader.decode((c) => decodeTrackInfo(c, version));
						await writer.close();
					})()
				: Promise.resolve();

		if (stopped) {
			info.catch(() => {}); // a stopped subscription's TRACK answer is of no interest
			return;
		}
		const stream = await this.#transport.createBidirectionalStream();
		const writer = new Writer(stream.writable, this.#codes);
		const reader = new Reader(stream.readable, this.#mapError);
		// The SUBSCRIBE goes out even when the subscription was stopped meanwhile: a bidi stream
		// that ends (or resets) before its type is a session error for moq-relay 0.10, which then
		// drops every other subscription of the session too.
		await writer.encode((e) => {
			e.varint(BiStream.Subscribe);
			encodeSubscribe(
				e,
				{
					id: active.id,
					broadcast,
					track,
					priority,
					ordered: false,
					maxLatencyMs,
					startGroup: undefined,
					endGroup: undefined,
				},
				version,
			);
		});
		const unsubscribe = () => {
			// spec: §3.3 unsubscribe = FIN our side of the Subscribe stream.
			writer.close();
			reader.cancel(stopError(this.#codes, ErrorCode.Cancel));
		};
		stopFns.push(unsubscribe);
		if (stopped) {
			info.catch(() => {});
			unsubscribe();
			return;
		}

		const responses = (async () => {
			for (;;) {
				const response = await reader.decodeMaybe((c) => decodeSubscribeResponse(c, version));
				if (!response) return;
				if (response.type === "end") active.end = response.group;
			}
		})();
		try {
			await Promise.all([info, responses]);
		} catch (err) {
			if (stopped) return;
			for (const fn of stopFns) fn();
			throw err;
		}
		stopFns = [];
		await writer.close();
	}

	/** The publisher finished: keep accepting in-flight groups briefly, then end the track. */
	#linger(active: Active): void {
		const finish = () => {
			this.#subscriptions.delete(active.id);
			active.consumer.finish();
		};
		const complete = () => active.end !== undefined && (active.end === 0 || (active.latest ?? -1) >= active.end - 1);
		if (complete()) {
			finish();
			return;
		}
		const timer = setTimeout(finish, LINGER_MS);
		active.onGroup = () => {
			if (!complete()) return;
			clearTimeout(timer);
			finish();
		};
	}

	/** Route an incoming Group stream (its type byte was read). */
	async runGroup(reader: Reader): Promise<void> {
		const version = this.#version;
		const header = await reader.decode((c) => decodeGroup(c, version));
		const active = this.#subscriptions.get(header.subscribeId);
		// spec: §3.3 a Group stream for an unknown subscribe id is cancelled (STOP_SENDING 0).
		if (!active) {
			reader.cancel(stopError(this.#codes, ErrorCode.Cancel));
			return;
		}
		const group = new GroupConsumer(header.sequence, new WireFrames(reader, version, this.#codes));
		if (!active.consumer.push(group)) {
			group.close();
			return;
		}
		active.latest = Math.max(active.latest ?? -1, header.sequence);
		active.onGroup?.();
	}

	/** The session ended: fail every subscription and end discovery. */
	close(err: Error | undefined): void {
		this.#closed = err ?? new MoqError(ErrorCode.Closed, "session closed");
		for (const active of this.#subscriptions.values()) active.consumer.abort(this.#closed);
		this.#subscriptions.clear();
		for (const queue of this.#announced) queue.finish();
		this.#announced.clear();
	}
}
