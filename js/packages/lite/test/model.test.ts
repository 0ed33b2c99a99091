/** The in-memory model: retention, late join, closing. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BroadcastProducer, ErrorCode, MoqError } from "../src/index.ts";
import { within } from "./helpers.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined);

describe("model", () => {
	it("groups are numbered from 0 and appendGroup closes the previous one", async () => {
		const track = new BroadcastProducer().createTrack("t");
		const g0 = track.appendGroup();
		g0.writeFrame(bytes("a"), 1);
		const g1 = track.appendGroup();
		assert.equal(g0.sequence, 0);
		assert.equal(g1.sequence, 1);
		assert.throws(() => g0.writeFrame(bytes("late")), MoqError);
	});

	it("a new reader starts at the latest group from its first frame, then gets every newer group", async () => {
		const track = new BroadcastProducer().createTrack("t");
		track.writeFrame(bytes("old"), 1);
		const g = track.appendGroup();
		g.writeFrame(bytes("first"), 10);
		g.writeFrame(bytes("second"), 11);
		const reader = track.subscribe();
		assert.equal(track.subscribers, 1);
		const latest = await within(reader.next());
		assert.equal(latest?.sequence, 1);
		assert.equal(text((await latest?.frameAt(0))?.payload), "first");
		const pending = reader.next();
		track.writeFrame(bytes("next"), 20);
		assert.equal((await within(pending))?.sequence, 2);
		track.close();
		assert.equal(await within(reader.next()), undefined);
		reader.close();
		assert.equal(track.subscribers, 0);
	});

	it("evicts non-latest groups older than max latency with code 2 (Old)", async () => {
		const track = new BroadcastProducer().createTrack("t", { maxLatencyMs: 0 });
		const g0 = track.appendGroup();
		await new Promise((r) => setTimeout(r, 5));
		track.appendGroup();
		assert.equal(track.groups.length, 1);
		assert.equal(track.groups[0]?.sequence, 1, "only the latest group is kept");
		assert.throws(() => g0.writeFrame(bytes("x")), MoqError);
		const kept = new BroadcastProducer().createTrack("t", { maxLatencyMs: 60_000 });
		kept.appendGroup();
		kept.appendGroup();
		assert.equal(kept.groups.length, 2);
	});

	it("readers of an evicted group see Old", async () => {
		const track = new BroadcastProducer().createTrack("t", { maxLatencyMs: 0 });
		const g0 = track.appendGroup();
		g0.writeFrame(bytes("x"), 0);
		const state = track.groups[0];
		assert.ok(state);
		await new Promise((r) => setTimeout(r, 5));
		track.appendGroup();
		await assert.rejects(state.frameAt(1), (e: unknown) => e instanceof MoqError && e.code === ErrorCode.Old);
	});

	it("createTrack returns the existing track; close ends the broadcast and its tracks", async () => {
		const b = new BroadcastProducer();
		const t = b.createTrack("t", { priority: 3 });
		assert.equal(b.createTrack("t"), t);
		b.close();
		await within(b.closed);
		assert.throws(() => t.appendGroup(), MoqError);
		assert.throws(() => b.createTrack("u"), MoqError);
	});

	it("validates options and timestamps", () => {
		const b = new BroadcastProducer();
		assert.throws(() => b.createTrack("p", { priority: 256 }), RangeError);
		assert.throws(() => b.createTrack("z", { timescale: 0 }), RangeError);
		const g = b.createTrack("t").appendGroup();
		assert.throws(() => g.writeFrame(bytes("x"), -1), RangeError);
		assert.throws(() => g.writeFrame(bytes("x"), 2 ** 53), RangeError);
	});
});
