/**
 * Publisher side of a session: serves our broadcasts to the peer (the relay pulls).
 *
 * - Announce streams the peer opens: ANNOUNCE_OK + snapshot (lite-05/06) or ANNOUNCE_INIT (lite-02),
 *   then live changes (ANNOUNCE; lite-06: ANNOUNCE_START with the next id / ANNOUNCE_END by id),
 *   until the peer FINs. We are a leaf: no hops, lite-06 cost warm = cold = 0.
 * - Track streams (lite-05): TRACK_INFO then FIN, or reset 13.
 * - Subscribe streams: one uni Group stream per group, newest/highest priority first via
 *   `sendOrder`; SUBSCRIBE_OK(START) before the first group (lite-05) / SUBSCRIBE_OK at once (lite-02);
 *   FIN from the peer = unsubscribe; the track's end = SUBSCRIBE_END (lite-05) then FIN once every
 *   group stream is done.
 * - Fetch streams (lite-05): the retained group's frames, FIN.
 */
import {
	decodeAnnounceRequest,
	decodeFetch,
	decodeGoaway,
	decodeSubscribe,
	decodeSubscribeUpdate,
	decodeTrack,
	type Encoder,
	encodeAnnounce,
	encodeAnnounceInit,
	encodeAnnounceMessage,
	encodeAnnounceOk,
	encodeFrame,
	encodeGroup,
	encodeSubscribeResponse,
	encodeTrackInfo,
	type LiteVersion,
	normalizePath,
	type Reader,
	type Subscribe,
	stripPrefix,
	UniStream,
} from "../coding/index.ts";
import { ErrorCode, MoqError, toError, type WireCodes } from "../error.ts";
import type { BroadcastProducer } from "../model/broadcast.ts";
import type { GroupState } from "../model/group.ts";
import type { TrackProducer, TrackReader } from "../model/track.ts";
import { errorCode, type Transport, Writer } from "./stream.ts";

/** Group streams sort below control streams (send order 0): every group send order is negative. */
const GROUP_ORDER_BASE = -(2 ** 48);

/**
 * W3C send order for a group stream (higher = sent first): subscriber priority, then publisher
 * priority, then newer sequence first. Always < 0 so control streams (0) go first.
 */
export function groupSendOrder(subscriberPriority: number, publisherPriority: number, sequence: number): number {
	return GROUP_ORDER_BASE + (subscriberPriority * 256 + publisherPriority) * 2 ** 32 + (sequence % 2 ** 32);
}

type AnnounceListener = (path: string, active: boolean) => void;

/** Serves the broadcasts published on a session. */
/**
 * Write a group's frames as they come (a Group stream's body or a Fetch response), until the group
 * ends or `cancelled()` turns true. Returns false when cancelled.
 */
async function writeFrames(
	writer: Writer,
	group: GroupState,
	version: LiteVersion,
	cancelled: () => boolean,
	range: { start: number; end: number | undefined } = { start: 0, end: undefined },
): Promise<boolean> {
	let previous = 0;
	for (let i = range.start; range.end === undefined || i <= range.end; i++) {
		const frame = await group.frameAt(i);
		if (cancelled()) return false;
		if (!frame) return true;
		const timestamp = frame.timestamp ?? 0;
		// spec: §5.13 the first frame deltas against 0, then against the previous frame.
		await writer.encode((e) =>
			encodeFrame(e, { timestampDelta: timestamp - previous, payload: frame.payload }, version),
		);
		previous = timestamp;
	}
	return true;
}

export class Publisher {
	readonly #transport: Transport;
	readonly #version: LiteVersion;
	readonly #codes: WireCodes;
	readonly #broadcasts = new Map<string, BroadcastProducer>();
	readonly #listeners = new Set<AnnounceListener>();

	/** A publisher on `transport` speaking `version`, with the peer's error `codes`. */
	constructor(transport: Transport, version: LiteVersion, codes: WireCodes) {
		this.#transport = transport;
		this.#version = version;
		this.#codes = codes;
	}

	/** Announce `broadcast` at `path` until it closes (a re-publish replaces the previous one). */
	publish(path: string, broadcast: BroadcastProducer): void {
		const normalized = normalizePath(path);
		const previous = this.#broadcasts.get(normalized);
		if (previous === broadcast) return;
		if (previous) this.#emit(normalized, false);
		this.#broadcasts.set(normalized, broadcast);
		this.#emit(normalized, true);
		broadcast.closed.then(() => {
			if (this.#broadcasts.get(normalized) !== broadcast) return;
			this.#broadcasts.delete(normalized);
			this.#emit(normalized, false);
		});
	}

	#emit(path: string, active: boolean): void {
		for (const listener of this.#listeners) listener(path, active);
	}

	#track(path: string, name: string): TrackProducer | undefined {
		return this.#broadcasts.get(path)?.track(name);
	}

	/** Serve an Announce stream (the stream type was read). */
	async runAnnounce(reader: Reader, writer: Writer): Promise<void> {
		const version = this.#version;
		const request = await reader.decode((c) => decodeAnnounceRequest(c, version));
		const active: string[] = [];
		for (const path of this.#broadcasts.keys()) {
			const suffix = stripPrefix(request.prefix, path);
			if (suffix !== undefined) active.push(suffix);
		}
		// lite-06: the n-th START is id n; END retires the id of the suffix (spec lite-06 announcements).
		const ids = new Map<string, number>();
		let nextId = 0;
		const start = (e: Encoder, suffix: string) => {
			ids.set(suffix, nextId++);
			// We are the origin: nothing is cached elsewhere, so warm = cold = 0 (the receiver adds its link cost).
			encodeAnnounceMessage(e, { type: "start", suffix, hops: [], cost: { warm: 0n, cold: 0n } }, version);
		};
		const listener: AnnounceListener = (path, isActive) => {
			const suffix = stripPrefix(request.prefix, path);
			if (suffix === undefined) return;
			writer
				.encode((e) => {
					if (version < 6) return encodeAnnounce(e, { status: isActive ? 1 : 0, suffix, hops: [] }, version);
					const id = ids.get(suffix);
					if (isActive && id === undefined) return start(e, suffix);
					if (isActive || id === undefined) return; // a re-publish goes out as END then START
					ids.delete(suffix);
					encodeAnnounceMessage(e, { type: "end", id }, version);
				})
				.catch(() => reader.cancel());
		};
		// Register before the snapshot is written so nothing published meanwhile is lost (writes stay ordered).
		this.#listeners.add(listener);
		try {
			await writer.encode((e) => {
				if (version >= 5) {
					// We are a leaf: hop id 0 = unknown; lite-05 senders do not append themselves (spec §5.4).
					encodeAnnounceOk(e, { hopId: 0, activeCount: active.length }, version);
					for (const suffix of active) {
						if (version >= 6) start(e, suffix);
						else encodeAnnounce(e, { status: 1, suffix, hops: [] }, version);
					}
				} else {
					encodeAnnounceInit(e, { suffixes: active }, version);
				}
			});
			// The peer ends the request by FIN (or reset); nothing else may arrive.
			if (!(await reader.done())) throw new MoqError(ErrorCode.UnexpectedMessage, "data after ANNOUNCE_REQUEST");
			await writer.close();
		} finally {
			this.#listeners.delete(listener);
		}
	}

	/** Serve a Track stream (lite-05). */
	async runTrack(reader: Reader, writer: Writer): Promise<void> {
		const version = this.#version;
		const request = await reader.decode((c) => decodeTrack(c, version));
		const track = this.#track(request.broadcast, request.track);
		if (!track) throw new MoqError(ErrorCode.NotFound, `no track ${request.broadcast} ${request.track}`);
		const { priority, maxLatencyMs, timescale } = track.info;
		await writer.encode((e) => encodeTrackInfo(e, { priority, ordered: false, maxLatencyMs, timescale }, version));
		await writer.close();
		reader.cancel();
	}

	/** Serve a Fetch stream (lite-05): the group's frames from the cache, then FIN. */
	async runFetch(reader: Reader, writer: Writer): Promise<void> {
		const version = this.#version;
		const request = await reader.decode((c) => decodeFetch(c, version));
		const group = this.#track(request.broadcast, request.track)?.group(request.group);
		if (!group) throw new MoqError(ErrorCode.NotFound, "group not cached");
		// lite-06: only frames [start, end] of the group (the first one deltas against 0).
		await writeFrames(writer, group, version, () => false, { start: request.startFrame ?? 0, end: request.endFrame });
		await writer.close();
	}

	/** Read and ignore a GOAWAY (nobody sends one yet). */
	async runGoaway(reader: Reader, writer: Writer): Promise<void> {
		await reader.decode((c) => decodeGoaway(c, this.#version));
		await writer.close();
	}

	/** Serve a Subscribe stream. */
	async runSubscribe(reader: Reader, writer: Writer): Promise<void> {
		const version = this.#version;
		const request = await reader.decode((c) => decodeSubscribe(c, version));
		const track = this.#track(request.broadcast, request.track);
		// spec: §5.9 a refusal is a stream reset (13 not found).
		if (!track) throw new MoqError(ErrorCode.NotFound, `no track ${request.broadcast} ${request.track}`);
		const subscription = new Subscription(this.#transport, version, this.#codes, request, track, reader, writer);
		await subscription.run();
	}
}

/** One group being written on its own uni stream. */
interface InFlight {
	group: GroupState;
	writer: Writer | undefined;
	cancelled: boolean;
	done: Promise<void>;
}

/** One downstream subscription being served. */
class Subscription {
	readonly #transport: Transport;
	readonly #version: LiteVersion;
	readonly #codes: WireCodes;
	readonly #request: Subscribe;
	readonly #track: TrackProducer;
	readonly #reader: Reader;
	readonly #writer: Writer;
	readonly #inflight = new Set<InFlight>();
	#priority: number;
	#endGroup: number | undefined;

	constructor(
		transport: Transport,
		version: LiteVersion,
		codes: WireCodes,
		request: Subscribe,
		track: TrackProducer,
		reader: Reader,
		writer: Writer,
	) {
		this.#transport = transport;
		this.#version = version;
		this.#codes = codes;
		this.#request = request;
		this.#track = track;
		this.#reader = reader;
		this.#writer = writer;
		this.#priority = request.priority;
		this.#endGroup = request.endGroup;
	}

	async run(): Promise<void> {
		const version = this.#version;
		const groups = this.#track.subscribe();
		if (this.#request.startGroup !== undefined) groups.startAt(this.#request.startGroup);
		// The peer's side of the stream: SUBSCRIBE_UPDATEs (lite-03+), then FIN = unsubscribe.
		let unsubscribed = false;
		const updates = this.#readUpdates().then(
			() => {
				unsubscribed = true;
			},
			(err: unknown) => {
				unsubscribed = true;
				throw err;
			},
		);
		updates.catch(() => {});
		try {
			if (version <= 2)
				await this.#writer.encode((e) => encodeSubscribeResponse(e, { type: "ok-legacy", priority: 0 }, version));
			const end = await this.#serve(groups, updates, () => unsubscribed);
			if (unsubscribed) {
				await updates; // rethrows a decode error from the peer
				this.#cancelAll(ErrorCode.Cancel);
				await this.#writer.close();
				return;
			}
			// spec: §5.9 SUBSCRIBE_END (exclusive) then FIN once every group stream is accounted for.
			if (version >= 5)
				await this.#writer.encode((e) => encodeSubscribeResponse(e, { type: "end", group: end }, version));
			await Promise.all([...this.#inflight].map((f) => f.done));
			await this.#writer.close();
			this.#reader.cancel();
		} catch (err) {
			this.#cancelAll(errorCode(err));
			throw err;
		} finally {
			groups.close();
		}
	}

	/** Serve groups until the track ends, the subscriber leaves or the end group is passed. Returns the exclusive end. */
	async #serve(groups: TrackReader, updates: Promise<void>, unsubscribed: () => boolean): Promise<number> {
		const version = this.#version;
		let started = false;
		for (;;) {
			const group = await Promise.race([groups.next(), updates.then(() => undefined)]);
			if (unsubscribed() || !group) break;
			if (this.#endGroup !== undefined && group.sequence > this.#endGroup) break;
			if (!started && version >= 5) {
				// spec: §5.9 SUBSCRIBE_OK(START) carries the first group that will be delivered.
				await this.#writer.encode((e) => encodeSubscribeResponse(e, { type: "start", group: group.sequence }, version));
			}
			started = true;
			this.#spawn(group);
		}
		const last = groups.last;
		if (last === undefined) return this.#request.startGroup ?? 0;
		return this.#endGroup !== undefined ? Math.min(last, this.#endGroup) + 1 : last + 1;
	}

	async #readUpdates(): Promise<void> {
		const version = this.#version;
		for (;;) {
			if (version < 3) {
				// lite-01/02 have no SUBSCRIBE_UPDATE: anything but the FIN is a protocol error.
				if (await this.#reader.done()) return;
				throw new MoqError(ErrorCode.UnexpectedMessage, "data after SUBSCRIBE");
			}
			const update = await this.#reader.decodeMaybe((c) => decodeSubscribeUpdate(c, version));
			if (!update) return;
			this.#priority = update.priority;
			this.#endGroup = update.endGroup;
			for (const f of this.#inflight) {
				if (f.writer) f.writer.sendOrder = this.#order(f.group.sequence);
			}
		}
	}

	#order(sequence: number): number {
		return groupSendOrder(this.#priority, this.#track.info.priority, sequence);
	}

	#spawn(group: GroupState): void {
		const flight: InFlight = { group, writer: undefined, cancelled: false, done: Promise.resolve() };
		flight.done = this.#writeGroup(flight)
			.catch(() => {})
			.finally(() => this.#inflight.delete(flight));
		this.#inflight.add(flight);
	}

	async #writeGroup(flight: InFlight): Promise<void> {
		const version = this.#version;
		const { group } = flight;
		const stream = await this.#transport.createUnidirectionalStream({ sendOrder: this.#order(group.sequence) });
		const writer = new Writer(stream, this.#codes);
		flight.writer = writer;
		if (flight.cancelled) {
			writer.reset(ErrorCode.Cancel);
			return;
		}
		try {
			await writer.encode((e) => {
				e.varint(UniStream.Group);
				encodeGroup(e, { subscribeId: this.#request.id, sequence: group.sequence }, version);
			});
			if (!(await writeFrames(writer, group, version, () => flight.cancelled))) return;
			await writer.close();
		} catch (err) {
			// A STOP_SENDING from the subscriber (code 0) is routine; expiry resets with 2 (Old).
			writer.reset(err instanceof MoqError ? err.code : ErrorCode.Cancel);
			throw toError(err);
		}
	}

	#cancelAll(code: number): void {
		for (const f of this.#inflight) {
			f.cancelled = true;
			f.writer?.reset(code);
		}
	}
}
