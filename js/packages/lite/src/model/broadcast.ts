/** Broadcasts: a named set of tracks, published or consumed as a unit. */
import { ErrorCode, MoqError } from "../error.ts";
import { type SubscribeOptions, type TrackConsumer, type TrackOptions, TrackProducer } from "./track.ts";
import { deferred } from "./util.ts";

/** The publishing end of a broadcast; hand it to {@link Connection.publish}. */
export class BroadcastProducer {
	readonly #tracks = new Map<string, TrackProducer>();
	readonly #closed = deferred<void>();
	#isClosed = false;

	/** Resolves once {@link BroadcastProducer.close} was called. */
	readonly closed: Promise<void> = this.#closed.promise;

	/** Create (or return the existing) track. Subscribers that ask for an unknown track get "not found" (13). */
	createTrack(name: string, options?: TrackOptions): TrackProducer {
		if (this.#isClosed) throw new MoqError(ErrorCode.Closed, "broadcast is closed");
		let track = this.#tracks.get(name);
		if (!track || track.closed) {
			track = new TrackProducer(name, options);
			this.#tracks.set(name, track);
		}
		return track;
	}

	/** @internal The open track with this name, if any. */
	track(name: string): TrackProducer | undefined {
		const track = this.#tracks.get(name);
		return track && !track.closed ? track : undefined;
	}

	/** @internal True once closed. */
	get isClosed(): boolean {
		return this.#isClosed;
	}

	/** End the broadcast: announcement ended, every track closed. */
	close(): void {
		if (this.#isClosed) return;
		this.#isClosed = true;
		for (const track of this.#tracks.values()) track.close();
		this.#closed.resolve();
	}
}

/** @internal What a {@link BroadcastConsumer} needs from its session. */
export interface BroadcastBackend {
	subscribe(path: string, track: string, options: SubscribeOptions): TrackConsumer;
}

/** A handle to a remote broadcast. Nothing goes on the wire until a track is subscribed. */
export class BroadcastConsumer {
	/** Broadcast path relative to the session root. */
	readonly path: string;
	readonly #backend: BroadcastBackend;
	readonly #tracks = new Set<TrackConsumer>();
	#closed = false;

	/** @internal Use {@link Connection.consume}. */
	constructor(path: string, backend: BroadcastBackend) {
		this.path = path;
		this.#backend = backend;
	}

	/** Subscribe (lite-05: TRACK then SUBSCRIBE; lite-02: SUBSCRIBE). Starts at the latest group, from its first frame. */
	subscribe(track: string, options?: SubscribeOptions): TrackConsumer {
		if (this.#closed) throw new MoqError(ErrorCode.Closed, "broadcast consumer is closed");
		const consumer = this.#backend.subscribe(this.path, track, options ?? {});
		this.#tracks.add(consumer);
		return consumer;
	}

	/** Close every track subscribed through this handle. */
	close(): void {
		this.#closed = true;
		for (const track of this.#tracks) track.close();
		this.#tracks.clear();
	}
}
