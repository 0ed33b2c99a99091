import assert from "node:assert/strict";
import { test } from "node:test";
import { Abr } from "../src/abr.ts";
import { BandwidthEstimator, type PlaybackState } from "../src/estimate.ts";

const MBIT = 1_000_000;
const FRAME_MS = 1000 / 30;

/** Deliver `bps` as 30 frames a second from `fromMs` for `seconds`; returns the end time. */
function deliver(estimator: BandwidthEstimator, bps: number, fromMs: number, seconds: number): number {
	const frames = Math.round(seconds * 30);
	for (let i = 0; i < frames; i++) estimator.add(bps / 8 / 30, fromMs + i * FRAME_MS);
	return fromMs + frames * FRAME_MS;
}

const near = (actual: number | undefined, expected: number, tolerance: number) =>
	assert.ok(actual !== undefined && Math.abs(actual - expected) <= tolerance, `${actual} ≠ ${expected}`);

const keepingUp: PlaybackState = { lateMs: 20, targetLatencyMs: 200, groupMs: 2000, skippedGroups: 0 };

test("throughput: the delivered rate, after the first window", () => {
	const e = new BandwidthEstimator();
	e.add(1000, 0);
	assert.equal(e.throughput(500), undefined);
	const end = deliver(e, 2 * MBIT, 0, 5);
	near(e.throughput(end), 2 * MBIT, 0.05 * MBIT);
});

test("throughput follows a drop within a few windows, and decays to zero on silence", () => {
	const e = new BandwidthEstimator();
	let t = deliver(e, 4 * MBIT, 0, 10);
	t = deliver(e, MBIT, t, 3);
	near(e.throughput(t), MBIT, 0.5 * MBIT);
	t = deliver(e, MBIT, t, 2);
	near(e.throughput(t), MBIT, 0.1 * MBIT);
	assert.ok((e.throughput(t + 10_000) ?? MBIT) < 0.01 * MBIT, "silence");
});

test("behind: late past the target by more than a group, or a skipped group", () => {
	const e = new BandwidthEstimator();
	assert.equal(e.behind(0, keepingUp), false);
	assert.equal(e.behind(100, { ...keepingUp, lateMs: 2100 }), false, "within target + one group");
	assert.equal(e.behind(200, { ...keepingUp, lateMs: 2300 }), true);
	assert.equal(e.behind(300, { ...keepingUp, lateMs: undefined }), false);
	assert.equal(e.behind(400, { ...keepingUp, skippedGroups: 1 }), true, "a group was skipped");
	assert.equal(e.behind(500, { ...keepingUp, skippedGroups: 1 }), false, "no new skip");
	assert.equal(e.behind(600, { ...keepingUp, skippedGroups: 0 }), false, "the count restarted");
	assert.equal(e.behind(700, { ...keepingUp, skippedGroups: 1 }), true);
});

test("estimate: none while keeping up, the throughput while saturated", () => {
	const e = new BandwidthEstimator();
	let t = deliver(e, 3 * MBIT, 0, 5);
	// Keeping up: 3 Mbit/s delivered says nothing of what the link could carry.
	e.behind(t, keepingUp);
	assert.equal(e.estimate(t), undefined);
	// Saturated: what it delivers is its capacity, for a while after the last sign of it.
	t = deliver(e, 3 * MBIT, t, 1);
	assert.equal(e.behind(t, { ...keepingUp, skippedGroups: 1 }), true);
	near(e.estimate(t), 3 * MBIT, 0.1 * MBIT);
	assert.notEqual(e.estimate(t + 2000), undefined);
	assert.equal(e.estimate(t + 2001), undefined);
});

test("estimate: a recent probe, when there are no burst samples", () => {
	const e = new BandwidthEstimator();
	const t = deliver(e, 2 * MBIT, 0, 5);
	e.setProbeEstimate(8 * MBIT, t);
	assert.equal(e.estimate(t), 8 * MBIT);
	e.setProbeEstimate(MBIT, t);
	assert.equal(e.estimate(t), MBIT);
	assert.equal(e.estimate(t + 5001), undefined, "the probe expired");
});

test("behind: a window that brings too little media time, or none", () => {
	const e = new BandwidthEstimator();
	// 30 frames a second in fragments of three every 100 ms: keeping up.
	let t = 0;
	for (; t < 3000; t += 100) for (let k = 0; k < 3; k++) e.addMedia((t + k * 33.3) * 1000, t);
	assert.equal(e.behind(t, keepingUp), false);
	// Then a third of real time: behind within a window or two.
	for (let media = t; t < 4000; t += 100, media += 33) e.addMedia(media * 1000, t);
	assert.equal(e.behind(t, keepingUp), true);
	// And a stall (no frame at all) is behind too, once a window has passed without any.
	const stalled = new BandwidthEstimator();
	for (t = 0; t < 1000; t += 100) stalled.addMedia(t * 1000, t);
	assert.equal(stalled.behind(1000, keepingUp), false);
	assert.equal(stalled.behind(2100, keepingUp), true);
	// Media in 1 s fragments keeps up: the windows stretch to span several.
	const long = new BandwidthEstimator();
	for (t = 0; t <= 10_000; t += 100) {
		if (t % 1000 === 0) for (let k = 0; k < 30; k++) long.addMedia((t + k * 33.3) * 1000, t);
		assert.equal(long.behind(t, keepingUp), false, `at ${t} ms`);
	}
});

/** A frame of `bytes` whose first 1200 bytes came at `atMs` and the rest at `bps`. */
function arrival(atMs: number, bytes: number, bps: number) {
	return { firstMs: atMs, lastMs: atMs + ((bytes - 1200) * 8 * 1000) / bps, firstBytes: 1200, bytes };
}

test("bursts: frames back to back make one run, whose rate is a sample once it ends", () => {
	const e = new BandwidthEstimator();
	// A fragment of three frames sent at once over a 10 Mbit/s link: one run.
	let t = 0;
	for (const bytes of [12_000, 3_000, 3_000]) {
		const a = arrival(t, bytes, 10 * MBIT);
		e.addArrival(a);
		t = a.lastMs + 1;
	}
	assert.equal(e.burst(t), undefined, "the run may go on");
	// The next fragment, 100 ms later: the first run ends.
	e.addArrival(arrival(100, 3_000, 10 * MBIT));
	// 16 800 bytes after the first chunk over the run's span (its three frames and the two 1 ms pauses).
	const span = (10_800 * 8) / 10_000 + 1 + (1_800 * 8) / 10_000 + 1 + (1_800 * 8) / 10_000;
	near(e.burst(100), (16_800 * 8 * 1000) / span, 1);
	// Runs too small to tell are left out.
	const small = new BandwidthEstimator();
	small.addArrival(arrival(0, 3_000, 10 * MBIT));
	small.addArrival(arrival(100, 3_000, 10 * MBIT));
	assert.equal(small.burst(100), undefined);
});

test("bursts: the estimate is the median sample while keeping up, capped by a probe", () => {
	const e = new BandwidthEstimator();
	const rates = [9, 10, 2, 11, 10, 9, 40, 10].map((m) => m * MBIT);
	for (const [i, bps] of rates.entries()) e.addArrival(arrival(i * 100, 12_000, bps));
	e.addArrival(arrival(800, 3_000, MBIT));
	near(e.estimate(800), 10 * MBIT, 1);
	e.setProbeEstimate(5 * MBIT, 800);
	assert.equal(e.estimate(800), 5 * MBIT, "the smaller of the two");
	assert.equal(e.burst(800 + 3000 + 701), undefined, "samples expire");
});

/**
 * A link of `capacity` bit/s carrying the chosen rendition: each 100 ms the sender queues the
 * rendition's bytes and the link delivers what it can; the queue's drain time is how late the
 * newest frame arrives, and the relay drops the queue (a skipped group) once it exceeds a group.
 */
function simulate(
	abr: Abr,
	capacity: (ms: number) => number,
	seconds: number,
	probe = false,
	bursts = false,
): string[] {
	const e = new BandwidthEstimator();
	const groupMs = 2000;
	let queue = 0;
	let skipped = 0;
	const chosen: string[] = [];
	for (let t = 0; t < seconds * 1000; t += 100) {
		const link = capacity(t);
		queue += (abr.current.bitrate / 8) * 0.1;
		const sent = Math.min(queue, (link / 8) * 0.1);
		queue -= sent;
		e.add(sent, t);
		// What was sent crossed the link back to back, at the link's rate.
		if (bursts && sent > 0) e.addArrival(arrival(t, Math.max(sent, 1200), link));
		let lateMs = (queue * 8 * 1000) / link;
		if (lateMs > groupMs) {
			queue = 0;
			lateMs = 0;
			skipped++;
		}
		if (probe) e.setProbeEstimate(link, t);
		const behind = e.behind(t, { lateMs, targetLatencyMs: 200, groupMs, skippedGroups: skipped });
		abr.update(t, e.estimate(t), behind);
		chosen.push(abr.current.name);
	}
	return chosen;
}

const renditions = [
	{ name: "hd", bitrate: 3 * MBIT },
	{ name: "sd", bitrate: 800_000 },
];

test("abr on the estimator: a link that keeps up keeps the rendition", () => {
	const abr = new Abr(renditions, {}, 10 * MBIT);
	const chosen = simulate(abr, () => 4 * MBIT, 60);
	assert.ok(chosen.every((c) => c === "hd"));
	assert.equal(abr.switches, 0);
});

test("abr on the estimator: a saturated link steps down once and stays down without a probe", () => {
	const abr = new Abr(renditions, {}, 10 * MBIT);
	const chosen = simulate(abr, (t) => (t < 10_000 ? 4 * MBIT : 2 * MBIT), 60);
	// 3 Mbit/s into 2: the queue (lateness) grows by 0.5 s a second, and the relay drops it as a
	// group once it is a group long: down within ~4 s, at the first sign of being behind.
	const down = chosen.indexOf("sd") * 100;
	assert.ok(down >= 10_000 && down <= 14_500, `down at ${down} ms`);
	assert.ok(chosen.slice(down / 100).every((c) => c === "sd"));
	assert.equal(abr.switches, 1);
});

test("abr on the estimator: with a probe, back up once the link recovers", () => {
	const abr = new Abr(renditions, {}, 10 * MBIT);
	const chosen = simulate(abr, (t) => (t >= 10_000 && t < 30_000 ? 2 * MBIT : 6 * MBIT), 60, true);
	assert.equal(chosen[99], "hd");
	assert.equal(chosen[101], "sd", "down at the first probe of the slower link");
	assert.equal(chosen.at(-1), "hd");
	const up = chosen.lastIndexOf("sd") * 100;
	assert.ok(up >= 30_000 && up <= 40_000, `up at ${up} ms`);
	assert.equal(abr.switches, 2);
});

test("abr on the estimator: with burst samples, down when saturated and back up once the link recovers", () => {
	const abr = new Abr(renditions, {}, undefined);
	const chosen = simulate(abr, (t) => (t >= 20_000 && t < 40_000 ? 2 * MBIT : 6 * MBIT), 60, false, true);
	assert.equal(chosen[0], "sd", "the lowest without an estimate");
	const up = chosen.indexOf("hd") * 100;
	assert.ok(up > 0 && up <= 10_000, `up at ${up} ms`);
	// A saturated link's bytes arrive in one endless run: no new sample, so down on being behind,
	// as without bursts (within ~4 s here, see above).
	const down = chosen.indexOf("sd", up / 100) * 100;
	assert.ok(down >= 20_000 && down <= 24_500, `down at ${down} ms`);
	const back = chosen.indexOf("hd", down / 100) * 100;
	assert.ok(back >= 40_000 && back <= 50_000, `back up at ${back} ms`);
	assert.equal(abr.switches, 3, "no oscillation");
});
