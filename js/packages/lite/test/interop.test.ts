/**
 * What the reference peers expect of a subscriber, checked against a hand-driven publisher over
 * the in-memory transport: the TRACK stream is not FINned before TRACK_INFO arrives (the
 * reference publisher reads an early FIN as a cancel and resets the stream).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BiStream, decodeTrack, encode, encodeTrackInfo, Reader } from "../src/coding/index.ts";
import { Connection } from "../src/index.ts";
import { serverSetup } from "../src/session/setup.ts";
import { memoryPair, within } from "./helpers.ts";

/** A lite-05 client Connection and the raw server end (its handshake done by hand). */
async function rawServer() {
	const [a, b] = memoryPair("moq-lite-05");
	const incoming = { bi: b.incomingBidirectionalStreams.getReader(), uni: b.incomingUnidirectionalStreams.getReader() };
	const [client] = await within(Promise.all([Connection.accept(a), serverSetup(b, incoming)]), 2000, "handshake");
	return { client, incoming };
}

/** Whether `reader` reaches the end of its stream within `ms` (false = still open). */
async function endsWithin(reader: Reader, ms: number): Promise<boolean> {
	const timeout = new Promise<"open">((resolve) => setTimeout(() => resolve("open"), ms));
	return (await Promise.race([reader.done(), timeout])) === true;
}

describe("subscriber towards a reference publisher (lite-05)", () => {
	it("keeps the TRACK stream open until TRACK_INFO arrives, then FINs it", async () => {
		const { client, incoming } = await rawServer();
		const sub = client.consume("b").subscribe("video", { priority: 60 });
		const next = await within(incoming.bi.read());
		assert.ok(next.value);
		const reader = new Reader(next.value.readable);
		assert.equal(await reader.decode((c) => c.varint()), BiStream.Track);
		assert.deepEqual(await reader.decode((c) => decodeTrack(c, 5)), { broadcast: "b", track: "video" });
		assert.equal(await endsWithin(reader, 100), false, "the TRACK stream was FINned before TRACK_INFO");
		const writer = next.value.writable.getWriter();
		await writer.write(
			encode((e) => encodeTrackInfo(e, { priority: 0, ordered: false, maxLatencyMs: 30_000, timescale: 1_000_000 }, 5)),
		);
		await writer.close();
		assert.equal(await within(reader.done(), 1000, "FIN after TRACK_INFO"), true);
		sub.close();
		client.close();
	});
});
