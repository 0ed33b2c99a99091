/**
 * What the reference peers expect of a subscriber, checked against a hand-driven publisher over
 * the in-memory transport: the TRACK stream is not FINned before TRACK_INFO arrives (the
 * reference publisher reads an early FIN as a cancel and resets the stream); and the peer's reset
 * and close codes read in its registry (moq-relay 0.17 cancels with stream code 1, which the lite
 * table calls "required extension").
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BiStream, decodeTrack, encode, encodeTrackInfo, Reader } from "../src/coding/index.ts";
import { Connection, ErrorCode, MoqError, WireCodes } from "../src/index.ts";
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

describe("error codes per peer registry (spec §8 and moq-net 0.3)", () => {
	it("a stream reset with 1 is a cancel in every registry, never a missing extension", () => {
		for (const registry of ["lite", "moq-net", undefined] as const) {
			const err = new WireCodes(registry).fromStream(1);
			assert.equal(err.code, ErrorCode.Cancel, `registry ${registry}`);
			assert.equal(err.wireCode, 1);
		}
	});

	it("learns moq-net from a code only it assigns, then reads and writes its numbers", () => {
		const codes = new WireCodes();
		assert.equal(codes.registry, undefined);
		assert.equal(codes.fromStream(0x33).code, ErrorCode.NotFound);
		assert.equal(codes.registry, "moq-net");
		assert.equal(codes.fromStream(0).code, ErrorCode.Internal);
		assert.equal(codes.fromStream(0x34).code, ErrorCode.Old);
		assert.equal(codes.fromStream(0x36).code, ErrorCode.Unroutable);
		assert.equal(codes.fromStream(70).code, 70);
		assert.equal(codes.fromSession(0), undefined);
		assert.equal(codes.fromSession(3)?.code, ErrorCode.ProtocolViolation);
		assert.equal(codes.fromSession(2)?.code, ErrorCode.Unauthorized);
		assert.equal(codes.toStream(ErrorCode.Cancel), 1);
		assert.equal(codes.toStream(ErrorCode.NotFound), 0x33);
		assert.equal(codes.toStream(ErrorCode.UnexpectedStream), 0);
		assert.equal(codes.toSession(ErrorCode.Cancel), 0);
		assert.equal(codes.toSession(ErrorCode.ProtocolViolation), 3);
	});

	it("learns lite from a code only it assigns; its session close 1 is transport-level", () => {
		const codes = new WireCodes();
		assert.equal(codes.fromStream(0).code, ErrorCode.Cancel); // ambiguous: read as lite, nothing learnt
		assert.equal(codes.registry, undefined);
		assert.equal(codes.fromStream(13).code, ErrorCode.NotFound);
		assert.equal(codes.registry, "lite");
		assert.equal(codes.fromStream(2).code, ErrorCode.Old);
		assert.equal(codes.fromSession(1)?.code, ErrorCode.Transport);
		assert.equal(codes.fromSession(15)?.code, ErrorCode.ProtocolViolation);
		assert.equal(codes.toStream(ErrorCode.Cancel), 0);
		assert.equal(codes.toStream(ErrorCode.Internal), ErrorCode.Transport);
	});

	it("a TRACK stream reset with 1 (moq-relay 0.17's cancel) fails the subscription as a cancel", async () => {
		const { client, incoming } = await rawServer();
		const sub = client.consume("b").subscribe("video");
		const next = await within(incoming.bi.read());
		assert.ok(next.value);
		await next.value.writable.abort({ streamErrorCode: 1, source: "stream" });
		await assert.rejects(
			within(sub.nextGroup()),
			(e: unknown) => e instanceof MoqError && e.code === ErrorCode.Cancel && e.wireCode === 1,
		);
		client.close();
	});
});
