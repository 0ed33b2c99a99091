/** Discovery: a live list of broadcast announcements. */
import { Queue } from "./util.ts";

/** One announcement change: `path` (relative to the session root) became active or ended. */
export interface Announcement {
	/** Full broadcast path relative to the session root, e.g. "room/alice.hang". */
	path: string;
	/** true = live, false = ended. */
	active: boolean;
}

/** A stream of announcements: first the current set (active=true each), then live changes. */
export interface Announced extends AsyncIterable<Announcement> {
	/** Next change, or undefined when closed. */
	next(): Promise<Announcement | undefined>;
	/** Stop listening (FIN of the Announce stream). */
	close(): void;
}

/** @internal The {@link Announced} the session fills. */
export class AnnouncedQueue implements Announced {
	readonly #queue = new Queue<Announcement>();
	readonly #onClose: () => void;
	#closed = false;

	constructor(onClose: () => void) {
		this.#onClose = onClose;
	}

	/** Next change, or undefined when closed (errors end the stream too). */
	async next(): Promise<Announcement | undefined> {
		try {
			return await this.#queue.next();
		} catch {
			return undefined;
		}
	}

	/** Stop listening. */
	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#queue.close();
		this.#queue.drain();
		this.#onClose();
	}

	/** @internal */
	push(announcement: Announcement): void {
		this.#queue.push(announcement);
	}

	/** @internal The remote side ended the stream. */
	finish(): void {
		this.#queue.close();
	}

	async *[Symbol.asyncIterator](): AsyncIterator<Announcement> {
		for (;;) {
			const next = await this.next();
			if (!next) return;
			yield next;
		}
	}
}
