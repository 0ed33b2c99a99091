/** Small async building blocks for the model: no wire knowledge. */

/** Wake every waiter on the next {@link Notify.notify}. */
export class Notify {
	#waiters: (() => void)[] = [];

	/** Resolves on the next notify(). */
	wait(): Promise<void> {
		return new Promise((resolve) => this.#waiters.push(resolve));
	}

	/** Wake everyone currently waiting. */
	notify(): void {
		const waiters = this.#waiters;
		this.#waiters = [];
		for (const w of waiters) w();
	}
}

/**
 * An unbounded FIFO with one async reader side: `next()` yields items in order, then `undefined`
 * once closed (after draining), or rejects once aborted.
 */
export class Queue<T> {
	#items: T[] = [];
	#closed = false;
	#error: Error | undefined;
	#notify = new Notify();

	/** Append an item; ignored after close/abort. Returns false if ignored. */
	push(item: T): boolean {
		if (this.#closed || this.#error) return false;
		this.#items.push(item);
		this.#notify.notify();
		return true;
	}

	/** No more items: readers drain what is queued then see undefined. */
	close(): void {
		this.#closed = true;
		this.#notify.notify();
	}

	/** Fail: readers see `err` once the queue is drained. */
	abort(err: Error): void {
		if (this.#closed || this.#error) return;
		this.#error = err;
		this.#notify.notify();
	}

	/** True once close() or abort() was called. */
	get done(): boolean {
		return this.#closed || this.#error !== undefined;
	}

	/** Drop and return every queued item (used to clean up on cancel). */
	drain(): T[] {
		const items = this.#items;
		this.#items = [];
		return items;
	}

	/** The next item, undefined at the end, or throws the abort error. */
	async next(): Promise<T | undefined> {
		for (;;) {
			const item = this.#items.shift();
			if (item !== undefined) return item;
			if (this.#error) throw this.#error;
			if (this.#closed) return undefined;
			await this.#notify.wait();
		}
	}
}

/** A promise with its resolve function exposed. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
	let resolve!: (value: T) => void;
	const promise = new Promise<T>((r) => {
		resolve = r;
	});
	return { promise, resolve };
}

/** Milliseconds on a monotonic clock. */
export function now(): number {
	return performance.now();
}
