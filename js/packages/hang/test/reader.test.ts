import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeFrame } from "../src/container.ts";
import type { FrameLike, GroupLike, TrackLike } from "../src/watch/reader.ts";
import { GroupReader, REORDER_WINDOW_US } from "../src/watch/reader.ts";

/** A queue whose pop() waits for push(). */
class Queue<T> {
	#items: T[] = [];
	#waiters: ((v: T) => void)[] = [];
	push(v: T) {
		const w = this.#waiters.shift();
		if (w) w(v);
		else this.#items.push(v);
	}
	pop(): Promise<T> {
		if (this.#items.length > 0) return Promise.resolve(this.#items.shift() as T);
		return new Promise((resolve) => this.#waiters.push(resolve));
	}
}

class FakeGroup implements GroupLike {
	readonly sequence: number;
	closed = false;
	#frames = new Queue<FrameLike | undefined>();
	constructor(sequence: number) {
		this.sequence = sequence;
	}
	write(pts: number) {
		this.#frames.push({ payload: encodeFrame(pts, new Uint8Array([pts % 256])) });
	}
	end() {
		this.#frames.push(undefined);
	}
	readFrame() {
		return this.#frames.pop();
	}
	close() {
		this.closed = true;
	}
}

class FakeTrack implements TrackLike {
	#groups = new Queue<GroupLike | undefined>();
	add(group: FakeGroup) {
		this.#groups.push(group);
		return group;
	}
	end() {
		this.#groups.push(undefined);
	}
	nextGroup() {
		return this.#groups.pop();
	}
}

const FRAME = 33_333;
const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

test("reads groups in order at live pace without skipping", async () => {
	const track = new FakeTrack();
	let skipped = 0;
	const reader = new GroupReader(track, { latencyUs: () => 200_000, onSkip: (n) => (skipped += n) });
	const g0 = track.add(new FakeGroup(0));
	for (let i = 0; i < 3; i++) g0.write(i * FRAME);
	const g1 = track.add(new FakeGroup(1));
	g1.write(3 * FRAME); // arrives before g0's FIN
	g0.end();
	g1.write(4 * FRAME);
	g1.end();
	track.end();
	const out = [];
	for (;;) {
		const f = await reader.read();
		if (!f) break;
		out.push([f.group, f.timestamp, f.keyframe]);
	}
	assert.deepEqual(out, [
		[0, 0, true],
		[0, FRAME, false],
		[0, 2 * FRAME, false],
		[1, 3 * FRAME, true],
		[1, 4 * FRAME, false],
	]);
	assert.equal(skipped, 0);
});

test("skips to a newer keyframe when the current group stalls", async () => {
	const track = new FakeTrack();
	let skipped = 0;
	const reader = new GroupReader(track, {
		latencyUs: () => 200_000,
		frameDurationUs: () => FRAME,
		onSkip: (n) => (skipped += n),
	});
	const g0 = track.add(new FakeGroup(0));
	g0.write(0);
	g0.write(FRAME);
	assert.equal((await reader.read())?.timestamp, 0);
	assert.equal((await reader.read())?.timestamp, FRAME);
	// g0 stalls; g1 (a whole GoP later) arrives.
	const g1 = track.add(new FakeGroup(1));
	g1.write(60 * FRAME);
	const next = await reader.read();
	assert.equal(next?.group, 1);
	assert.equal(next?.keyframe, true);
	assert.equal(next?.timestamp, 60 * FRAME);
	assert.equal(g0.closed, true, "the stalled group is abandoned");
	assert.equal(skipped, 58);
	// Late frames of g0 are never returned.
	g0.write(2 * FRAME);
	g1.write(61 * FRAME);
	assert.equal((await reader.read())?.timestamp, 61 * FRAME);
	reader.close();
	assert.equal(g1.closed, true);
});

test("skips when the playback clock passed the newer keyframe", async () => {
	const track = new FakeTrack();
	let playback = 0;
	const reader = new GroupReader(track, { latencyUs: () => 10_000_000, playbackUs: () => playback });
	const g0 = track.add(new FakeGroup(0));
	g0.write(0);
	assert.equal((await reader.read())?.group, 0);
	const g1 = track.add(new FakeGroup(1));
	g1.write(FRAME);
	g0.write(Math.floor(FRAME / 2)); // a frame of g0 still comes first while not behind
	assert.equal((await reader.read())?.group, 0);
	playback = FRAME;
	g0.write(Math.floor(Math.floor(FRAME / 2)) + 1);
	await tick();
	assert.equal((await reader.read())?.group, 1);
	assert.equal(g0.closed, true);
});

test("older straggler groups are closed, an empty group is passed over", async () => {
	const track = new FakeTrack();
	const reader = new GroupReader(track, { latencyUs: () => 200_000 });
	const g5 = track.add(new FakeGroup(5));
	g5.write(0);
	assert.equal((await reader.read())?.group, 5);
	const g4 = track.add(new FakeGroup(4));
	const g6 = track.add(new FakeGroup(6));
	g5.end();
	g6.end(); // empty
	const g7 = track.add(new FakeGroup(7));
	g7.write(FRAME);
	g7.end();
	track.end();
	const f = await reader.read();
	assert.equal(f?.group, 7);
	assert.equal(g4.closed, true);
	assert.equal(await reader.read(), undefined);
});

test("a track error rejects read()", async () => {
	const track: TrackLike = { nextGroup: () => Promise.reject(new Error("not found")) };
	const reader = new GroupReader(track, { latencyUs: () => 200_000 });
	await assert.rejects(reader.read(), /not found/);
});

test("a reset group is treated as ended", async () => {
	const track = new FakeTrack();
	const reader = new GroupReader(track, { latencyUs: () => 200_000 });
	const bad: GroupLike = {
		sequence: 0,
		readFrame: (() => {
			let n = 0;
			return () =>
				n++ === 0 ? Promise.resolve({ payload: encodeFrame(0, new Uint8Array()) }) : Promise.reject(new Error("reset"));
		})(),
		close: () => {},
	};
	track.add(bad as FakeGroup);
	assert.equal((await reader.read())?.timestamp, 0);
	const g1 = track.add(new FakeGroup(1));
	g1.write(FRAME);
	assert.equal((await reader.read())?.group, 1);
});

/** 20 ms: an Opus frame, each its own group (every frame is a keyframe). */
const AUDIO = 20_000;

/** One turn of the event loop: the reader has handled everything that arrived before. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Read until the track ends, in the background; the frames' group sequences land in `out`. */
function readAll(reader: GroupReader, out: number[]): Promise<void> {
	return (async () => {
		for (;;) {
			const frame = await reader.read();
			if (!frame) return;
			out.push(frame.group);
		}
	})();
}

test("one-frame groups of a fragment arriving newest first are all read, in order", async (t) => {
	// Only the reader's reorder timer would be affected: it must not be what makes this pass.
	t.mock.timers.enable({ apis: ["setTimeout"] });
	const track = new FakeTrack();
	let skipped = 0;
	const reader = new GroupReader(track, {
		latencyUs: () => 200_000,
		frameDurationUs: () => AUDIO,
		onSkip: (n) => (skipped += n),
	});
	const out: number[] = [];
	const done = readAll(reader, out);
	// An fMP4 fragment of 100 ms carries five 20 ms audio frames, each written as its own group at
	// once; their streams race, so they reach the subscriber one by one, close together, newest first.
	const fragments = 10;
	for (let f = 0; f < fragments; f++) {
		const order = f === 0 ? [0, 1, 2, 3, 4] : [4, 3, 2, 1, 0];
		for (const i of order) {
			const sequence = f * 5 + i;
			const g = track.add(new FakeGroup(sequence));
			g.write(sequence * AUDIO);
			g.end();
			await turn();
		}
	}
	track.end();
	await done;
	assert.equal(out.length, fragments * 5, `frames read: ${out.length} of ${fragments * 5}: ${out}`);
	assert.deepEqual(
		out,
		Array.from({ length: fragments * 5 }, (_, i) => i),
	);
	assert.equal(skipped, 0);
});

test("a group missing in the sequence is given up after the reorder window", async (t) => {
	t.mock.timers.enable({ apis: ["setTimeout"] });
	const track = new FakeTrack();
	let skipped = 0;
	const reader = new GroupReader(track, {
		latencyUs: () => 200_000,
		frameDurationUs: () => AUDIO,
		onSkip: (n) => (skipped += n),
	});
	const g0 = track.add(new FakeGroup(0));
	g0.write(0);
	g0.end();
	assert.equal((await reader.read())?.group, 0);
	// Group 1 never comes.
	const g2 = track.add(new FakeGroup(2));
	g2.write(2 * AUDIO);
	g2.end();
	let got: number | undefined;
	const next = reader.read().then((f) => {
		got = f?.group;
	});
	await turn();
	t.mock.timers.tick(REORDER_WINDOW_US / 1000 - 1);
	await turn();
	assert.equal(got, undefined, "still waiting for group 1");
	t.mock.timers.tick(1);
	await next;
	assert.equal(got, 2);
	assert.equal(skipped, 1);
	// It comes after all: too late, its frame would follow a newer one.
	const g1 = track.add(new FakeGroup(1));
	g1.write(AUDIO);
	const g3 = track.add(new FakeGroup(3));
	g3.write(3 * AUDIO);
	assert.equal((await reader.read())?.group, 3);
	assert.equal(g1.closed, true);
	reader.close();
});

test("a group missing in the sequence is given up once newer ones are the window past", async (t) => {
	t.mock.timers.enable({ apis: ["setTimeout"] });
	const track = new FakeTrack();
	const reader = new GroupReader(track, { latencyUs: () => 10_000_000, frameDurationUs: () => AUDIO });
	const g0 = track.add(new FakeGroup(0));
	g0.write(0);
	g0.end();
	assert.equal((await reader.read())?.group, 0);
	const g2 = track.add(new FakeGroup(2));
	g2.write(2 * AUDIO);
	g2.end();
	await turn();
	const g7 = track.add(new FakeGroup(7));
	g7.write(2 * AUDIO + REORDER_WINDOW_US);
	g7.end();
	// No timer fires: the newer group's media time gives group 1 (and 3..6) up.
	assert.equal((await reader.read())?.group, 2);
	reader.close();
});

test("a group that ended before its first frame is not waited for", async (t) => {
	t.mock.timers.enable({ apis: ["setTimeout"] });
	const track = new FakeTrack();
	const reader = new GroupReader(track, { latencyUs: () => 200_000 });
	const g0 = track.add(new FakeGroup(0));
	g0.write(0);
	g0.end();
	assert.equal((await reader.read())?.group, 0);
	track.add(new FakeGroup(1)).end(); // empty
	await turn();
	const g2 = track.add(new FakeGroup(2));
	g2.write(FRAME);
	assert.equal((await reader.read())?.group, 2);
	reader.close();
});
