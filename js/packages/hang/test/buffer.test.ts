import assert from "node:assert/strict";
import { test } from "node:test";
import {
	alignAudio,
	Backoff,
	isBuffering,
	PlaybackClock,
	pickFrame,
	RateMeter,
	shouldSkipGroup,
	skippedFrames,
	wallLatencyMs,
} from "../src/buffer.ts";

test("the clock anchors on the earliest arrival plus the target latency", () => {
	const clock = new PlaybackClock(100);
	assert.equal(clock.mediaTime(0), undefined);
	// pts 0 arrives at t=1000 ms, pts 33 ms arrives late at t=1050 ms.
	clock.observe(0, 1000);
	clock.observe(33_000, 1050);
	assert.equal(clock.reference(1050), 1_000_000);
	// Media time 0 is due at 1000 + 100 ms.
	assert.equal(clock.mediaTime(1100), 0);
	assert.equal(clock.localTime(33_000, 1100), 1133);
	// A frame that arrives earlier (relative to its pts) moves the anchor earlier.
	clock.observe(100_000, 1080);
	assert.equal(clock.reference(1080), 980_000);
	assert.equal(clock.mediaTime(1180), 100_000);
	// The latency target can change on the fly.
	clock.latencyMs = 300;
	assert.equal(clock.mediaTime(1180), -100_000);
	clock.reset();
	assert.equal(clock.mediaTime(1180), undefined);
});

test("a late-joiner burst (old GoP) does not delay the clock: the live frames set it", () => {
	const clock = new PlaybackClock(200);
	// The first group's keyframe is 1.9 s old when it arrives at t=0; its frames come in a burst.
	for (let i = 0; i < 57; i++) clock.observe(i * 33_333, i * 0.5);
	// Live frames then arrive 10 ms after capture (pts 1.9 s at t = 10 ms etc.).
	clock.observe(1_900_000, 10);
	clock.observe(1_933_333, 43.333);
	const now = 50;
	// Playback is 200 ms behind the live edge, not 2 s.
	const media = clock.mediaTime(now) ?? Number.NaN;
	assert.ok(Math.abs(media - (1_900_000 + 40_000 - 200_000)) < 1, String(media));
});

test("audio drives the clock when present; video anchors it only after a fallback delay", () => {
	const clock = new PlaybackClock(100, 500);
	clock.observe(0, 0, false); // video
	assert.equal(clock.mediaTime(100), undefined, "waits for audio");
	assert.equal(clock.mediaTime(600), 600_000 - 100_000, "fallback to video after 500 ms");
	clock.observe(0, 50, true); // audio arrived 50 ms later than video
	assert.equal(clock.mediaTime(600), 450_000, "audio takes over");
	clock.observe(100_000, 60, false); // an early video frame does not move an audio-driven clock
	assert.equal(clock.mediaTime(600), 450_000);
});

test("group skip decision", () => {
	const latencyUs = 200_000;
	// Live pace: the next keyframe is one frame past the last frame read: finish the group.
	assert.equal(shouldSkipGroup({ lastPts: 1_966_667, nextKeyPts: 2_000_000, latencyUs }), false);
	// Nothing read from the current group yet: the newer group wins.
	assert.equal(shouldSkipGroup({ lastPts: undefined, nextKeyPts: 2_000_000, latencyUs }), true);
	// Stalled: the newer keyframe is more than the target latency ahead.
	assert.equal(shouldSkipGroup({ lastPts: 1_000_000, nextKeyPts: 2_000_000, latencyUs }), true);
	assert.equal(shouldSkipGroup({ lastPts: 1_800_000, nextKeyPts: 2_000_000, latencyUs }), true, "exactly the target");
	// The playback clock already passed the newer keyframe: the rest of the old group is late.
	assert.equal(shouldSkipGroup({ lastPts: 1_900_000, nextKeyPts: 2_000_000, latencyUs, playbackUs: 2_000_000 }), true);
	assert.equal(shouldSkipGroup({ lastPts: 1_900_000, nextKeyPts: 2_000_000, latencyUs, playbackUs: 1_950_000 }), false);
});

test("skipped frame estimate", () => {
	assert.equal(skippedFrames(1_000_000, 1_033_333, 33_333), 0);
	assert.equal(skippedFrames(1_000_000, 2_000_000, 1_000_000 / 30), 29);
	assert.equal(skippedFrames(undefined, 2_000_000, 33_333), 0);
	assert.equal(skippedFrames(2_000_000, 1_000_000, 33_333), 0);
});

test("frame picking: the newest frame due, older ones dropped", () => {
	const ts = [0, 33, 66, 100];
	assert.equal(pickFrame(ts, -1), -1);
	assert.equal(pickFrame(ts, 0), 0);
	assert.equal(pickFrame(ts, 70), 2);
	assert.equal(pickFrame(ts, 1000), 3);
	assert.equal(pickFrame([], 1000), -1);
});

test("audio alignment glues chunks within the tolerance", () => {
	assert.equal(alignAudio(undefined, 1000.4, 960), 1000);
	assert.equal(alignAudio(1000, 1003, 960), 1000);
	assert.equal(alignAudio(1000, 995, 960), 1000);
	assert.equal(alignAudio(1000, 5000, 960), 5000);
});

test("buffering", () => {
	assert.equal(isBuffering({ lastShownPts: undefined, playbackUs: 0, stallUs: 100, ready: false }), true);
	assert.equal(isBuffering({ lastShownPts: 0, playbackUs: 50, stallUs: 100, ready: false }), false);
	assert.equal(isBuffering({ lastShownPts: 0, playbackUs: 150, stallUs: 100, ready: false }), true);
	assert.equal(isBuffering({ lastShownPts: 0, playbackUs: 150, stallUs: 100, ready: true }), false);
});

test("wall-clock latency", () => {
	assert.equal(wallLatencyMs(1_000_000, 500_000, 1_600_000), 100);
});

test("backoff doubles up to the cap and resets", () => {
	const b = new Backoff(500, 5000);
	assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [500, 1000, 2000, 4000, 5000, 5000]);
	b.reset();
	assert.equal(b.next(), 500);
});

test("rate meter", () => {
	const m = new RateMeter(1000);
	m.add(1000, 0);
	m.add(1000, 500);
	assert.equal(m.kbps(900), 16);
	assert.equal(m.kbps(1200), 8);
	assert.equal(m.kbps(3000), 0);
});
