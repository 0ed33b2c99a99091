/**
 * Tracks: a sequence of groups.
 *
 * Fan-out contract (publisher side): the producer keeps the latest group plus every older group
 * that saw activity within the track's max latency; older ones are evicted when a new group is
 * appended and readers still on them fail with code 2 (Old). A new reader starts at the latest
 * group, from its first frame, then receives every later group in sequence order; a reader that
 * lags behind retention skips to the oldest group still retained (it never sees evicted groups).
 * Closing the producer ends every reader after the groups it can still read.
 */
import { ErrorCode, MoqError } from "../error.ts";
import { type Frame, type GroupConsumer, GroupProducer, GroupState } from "./group.ts";
import { Notify, now, Queue } from "./util.ts";

/** Publisher-side track properties (sent in TRACK_INFO on lite-05). */
export interface TrackOptions {
	/** Publisher priority 0..255 (TRACK_INFO). Default 0. */
	priority?: number;
	/** Publisher max latency / cache retention in ms (TRACK_INFO). Default 5000 (hang media uses 30000). */
	maxLatencyMs?: number;
	/** Timestamp units per second (TRACK_INFO). Default 1000 (hang media uses 1_000_000). */
	timescale?: number;
}

/** Resolved track properties. */
export interface TrackInfo {
	/** Publisher priority 0..255. */
	priority: number;
	/** Max latency / retention in ms. */
	maxLatencyMs: number;
	/** Timestamp units per second (≥ 1). */
	timescale: number;
}

/** Groups retained at most per track, whatever the max latency (memory cap). */
export const MAX_RETAINED_GROUPS = 256;

function resolveOptions(options?: TrackOptions): TrackInfo {
	const priority = options?.priority ?? 0;
	const maxLatencyMs = options?.maxLatencyMs ?? 5000;
	const timescale = options?.timescale ?? 1000;
	if (!Number.isInteger(priority) || priority < 0 || priority > 255) throw new RangeError("priority must be 0..255");
	if (!Number.isSafeInteger(maxLatencyMs) || maxLatencyMs < 0) throw new RangeError("maxLatencyMs must be ≥ 0");
	if (!Number.isSafeInteger(timescale) || timescale < 1) throw new RangeError("timescale must be ≥ 1");
	return { priority, maxLatencyMs, timescale };
}

/** The writing end of a track. Created by {@link BroadcastProducer.createTrack}. */
export class TrackProducer {
	/** The track name. */
	readonly name: string;
	/** @internal Resolved properties. */
	readonly info: TrackInfo;
	/** @internal Retained groups, ascending sequence; the last one is the latest. */
	readonly groups: GroupState[] = [];
	#next = 0;
	#closed = false;
	#error: Error | undefined;
	#subscribers = 0;
	#notify = new Notify();
	readonly #epoch = now();

	/** @internal Use {@link BroadcastProducer.createTrack}. */
	constructor(name: string, options?: TrackOptions) {
		this.name = name;
		this.info = resolveOptions(options);
	}

	/** Number of subscribers (downstream subscriptions) currently served; lets publishers idle. */
	get subscribers(): number {
		return this.#subscribers;
	}

	/** @internal True once closed. */
	get closed(): boolean {
		return this.#closed;
	}

	/** Start a new group; sequence = previous + 1 (first = 0). The previous group is closed automatically. */
	appendGroup(): GroupProducer {
		if (this.#closed) throw new MoqError(ErrorCode.Closed, "track is closed");
		const state = new GroupState(this.#next++);
		this.groups.at(-1)?.finish();
		this.groups.push(state);
		this.#evict();
		this.#notify.notify();
		return new GroupProducer(state, () => this.#clock());
	}

	/** Convenience: one group holding exactly this one frame (chat messages, audio frames). */
	writeFrame(payload: Uint8Array, timestamp?: number): void {
		const group = this.appendGroup();
		group.writeFrame(payload, timestamp);
		group.close();
	}

	/** End the track: readers finish the groups they can still read, then see the end. */
	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.groups.at(-1)?.finish();
		this.#notify.notify();
	}

	/** @internal End the track with an error (e.g. the broadcast was torn down). */
	abort(err: Error): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#error = err;
		for (const g of this.groups) g.abort(err);
		this.#notify.notify();
	}

	/** @internal A reader for one downstream subscription (counts as a subscriber until closed). */
	subscribe(): TrackReader {
		this.#subscribers++;
		return new TrackReader(this, () => {
			this.#subscribers--;
		});
	}

	/** @internal The retained group with this sequence. */
	group(sequence: number): GroupState | undefined {
		return this.groups.find((g) => g.sequence === sequence);
	}

	/** @internal Wait until a group is appended or the track closes. */
	changed(): Promise<void> {
		return this.#notify.wait();
	}

	/** @internal The abort error, if any. */
	get error(): Error | undefined {
		return this.#error;
	}

	#clock(): number {
		return Math.round(((now() - this.#epoch) * this.info.timescale) / 1000);
	}

	#evict(): void {
		const cutoff = now() - this.info.maxLatencyMs;
		const latest = this.groups.length - 1;
		let keepFrom = 0;
		for (let i = 0; i < latest; i++) {
			const g = this.groups[i];
			if (!g) break;
			if (latest - i > MAX_RETAINED_GROUPS || g.lastActivity < cutoff) keepFrom = i + 1;
		}
		// spec §7.3: expired groups are evicted; in-flight streams for them are reset with code 2 (Old).
		for (const g of this.groups.splice(0, keepFrom)) g.abort(new MoqError(ErrorCode.Old, "group expired"));
	}
}

/** @internal One subscription's view of a track: the latest group first, then every newer one. */
export class TrackReader {
	readonly track: TrackProducer;
	#last: number | undefined;
	#closed = false;
	readonly #onClose: () => void;

	constructor(track: TrackProducer, onClose: () => void) {
		this.track = track;
		this.#onClose = onClose;
	}

	/** Start after `sequence` instead of at the latest group (SUBSCRIBE Group Start). */
	startAt(sequence: number): void {
		this.#last = sequence - 1;
	}

	/** The next group to serve, undefined once the track is closed and drained (or this reader closed). */
	async next(): Promise<GroupState | undefined> {
		for (;;) {
			if (this.#closed) return undefined;
			const groups = this.track.groups;
			const last = this.#last;
			const group = last === undefined ? groups.at(-1) : groups.find((g) => g.sequence > last);
			if (group) {
				this.#last = group.sequence;
				return group;
			}
			if (this.track.error) throw this.track.error;
			if (this.track.closed) return undefined;
			await this.track.changed();
		}
	}

	/** The last sequence handed out, if any. */
	get last(): number | undefined {
		return this.#last;
	}

	/** Stop reading; no longer counted as a subscriber. */
	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#onClose();
	}
}

/** Subscriber-side options. */
export interface SubscribeOptions {
	/** Subscriber priority 0..255, higher first. hang: catalog 100, audio 80, video 60. Default 0. */
	priority?: number;
	/** Subscriber max latency in ms (SUBSCRIBE). Default 0. */
	maxLatencyMs?: number;
}

/** The reading end of a subscription: groups in arrival order. Created by {@link BroadcastConsumer.subscribe}. */
export class TrackConsumer {
	/** The track name. */
	readonly name: string;
	readonly #groups = new Queue<GroupConsumer>();
	readonly #onClose: () => void;
	#closed = false;

	/** @internal `onClose` runs once when the application unsubscribes. */
	constructor(name: string, onClose: () => void) {
		this.name = name;
		this.#onClose = onClose;
	}

	/**
	 * Next group stream as it arrives (arrival order; a newer group may arrive while an older one is
	 * still being read). undefined = track ended cleanly; rejects with an Error (code in `.code`
	 * when known, e.g. 13 not found) on failure.
	 */
	nextGroup(): Promise<GroupConsumer | undefined> {
		return this.#groups.next();
	}

	/** Unsubscribe. Idempotent; groups not yet returned are cancelled. */
	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#groups.close();
		for (const g of this.#groups.drain()) g.close();
		this.#onClose();
	}

	/** @internal A group arrived; false if the consumer is done (the caller cancels the group). */
	push(group: GroupConsumer): boolean {
		return this.#groups.push(group);
	}

	/** @internal The publisher ended the track cleanly. */
	finish(): void {
		this.#groups.close();
	}

	/** @internal The subscription failed. */
	abort(err: Error): void {
		this.#groups.abort(err);
	}

	/** @internal True once ended, failed or closed. */
	get done(): boolean {
		return this.#groups.done;
	}
}

export type { Frame };
