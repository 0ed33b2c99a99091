/**
 * lite-06 announcements against a hand-driven peer: the subscriber applies START/UPDATE/END by id,
 * skips unknown types and ends the session on an unknown id; the publisher numbers its STARTs and
 * retires ids with END. Also the version a client settles on for each offer.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
	type AnnounceMessage,
	BiStream,
	decodeAnnounceMessage,
	decodeAnnounceOk,
	decodeAnnounceRequest,
	encode,
	encodeAnnounceMessage,
	encodeAnnounceOk,
	encodeAnnounceRequest,
	Reader,
} from "../src/coding/index.ts";
import { BroadcastProducer, Connection, ErrorCode, MoqError } from "../src/index.ts";
import { serverSetup } from "../src/session/setup.ts";
import { memoryPair, within } from "./helpers.ts";

const cost = { warm: 0n, cold: 1n };

/** A lite-06 client Connection and the raw server end (its handshake done by hand). */
async function rawServer() {
	const [a, b] = memoryPair("moq-lite-06");
	const incoming = { bi: b.incomingBidirectionalStreams.getReader(), uni: b.incomingUnidirectionalStreams.getReader() };
	const [client, negotiated] = await within(
		Promise.all([Connection.accept(a), serverSetup(b, incoming)]),
		2000,
		"handshake",
	);
	assert.equal(negotiated.version, 6);
	assert.equal(client.version, "moq-lite-06");
	return { client, incoming, b };
}

/** Accept the client's Announce stream and answer ANNOUNCE_OK; returns a writer for announcements. */
async function announceStream(incoming: Awaited<ReturnType<typeof rawServer>>["incoming"]) {
	const next = await within(incoming.bi.read());
	assert.ok(next.value);
	const reader = new Reader(next.value.readable);
	assert.equal(await reader.decode((c) => c.varint()), BiStream.Announce);
	assert.deepEqual(
		await reader.decode((c) => decodeAnnounceRequest(c, 6)),
		{ prefix: "room", excludeHop: 0 },
		"lite-06 ANNOUNCE_REQUEST is the prefix only",
	);
	const writer = next.value.writable.getWriter();
	await writer.write(encode((e) => encodeAnnounceOk(e, { hopId: 77, activeCount: 0 }, 6)));
	return (...messages: AnnounceMessage[]) =>
		writer.write(
			encode((e) => {
				for (const m of messages) encodeAnnounceMessage(e, m, 6);
			}),
		);
}

describe("lite-06 announcements, subscriber side", () => {
	it("START adds, UPDATE keeps, END removes by id; an unknown type is skipped", async () => {
		const { client, incoming } = await rawServer();
		const announced = client.announced("room");
		const send = await announceStream(incoming);
		await send(
			{ type: "start", suffix: "a", hops: [1], cost },
			{ type: "start", suffix: "b", hops: [], cost },
			{ type: "unknown", kind: 9 },
			{ type: "update", id: 0, hops: [2, 3], cost },
			{ type: "end", id: 0 },
		);
		assert.deepEqual(await within(announced.next()), { path: "room/a", active: true });
		assert.deepEqual(await within(announced.next()), { path: "room/b", active: true });
		assert.deepEqual(await within(announced.next()), { path: "room/a", active: false });
		await send({ type: "start", suffix: "a", hops: [], cost }, { type: "end", id: 1 });
		assert.deepEqual(await within(announced.next()), { path: "room/a", active: true });
		assert.deepEqual(await within(announced.next()), { path: "room/b", active: false });
		client.close();
	});

	for (const bad of [
		{ type: "end", id: 5 },
		{ type: "update", id: 5, hops: [], cost },
	] as AnnounceMessage[]) {
		it(`${bad.type.toUpperCase()} of an unknown id is a protocol violation: the session ends`, async () => {
			const { client, incoming } = await rawServer();
			const announced = client.announced("room");
			const send = await announceStream(incoming);
			await send({ type: "start", suffix: "a", hops: [], cost }, bad);
			assert.deepEqual(await within(announced.next()), { path: "room/a", active: true });
			const err = await within(client.closed);
			assert.ok(err instanceof MoqError && err.code === ErrorCode.ProtocolViolation, String(err));
		});
	}
});

describe("lite-06 announcements, publisher side", () => {
	it("ANNOUNCE_OK, a START per live path (ids 0, 1, …), END by id, START with a fresh id", async () => {
		const [a, b] = memoryPair("moq-lite-06");
		const incoming = {
			bi: a.incomingBidirectionalStreams.getReader(),
			uni: a.incomingUnidirectionalStreams.getReader(),
		};
		// Our Connection plays the server; the hand-driven client requests announcements.
		const server = Connection.accept(b, { server: true });
		const { clientSetup } = await import("../src/session/setup.ts");
		await within(clientSetup(a, incoming, { lite06: true, lite05: false, lite02: false }));
		const conn = await within(server);
		const one = new BroadcastProducer();
		conn.publish("room/one", one);
		const stream = await a.createBidirectionalStream();
		const writer = stream.writable.getWriter();
		await writer.write(
			encode((e) => {
				e.varint(BiStream.Announce);
				encodeAnnounceRequest(e, { prefix: "room", excludeHop: 0 }, 6);
			}),
		);
		const reader = new Reader(stream.readable);
		assert.deepEqual(await within(reader.decode((c) => decodeAnnounceOk(c, 6))), { hopId: 0, activeCount: 1 });
		const next = () => within(reader.decode((c) => decodeAnnounceMessage(c, 6)));
		const zero = { warm: 0n, cold: 0n };
		assert.deepEqual(await next(), { type: "start", suffix: "one", hops: [], cost: zero });
		const two = new BroadcastProducer();
		conn.publish("room/two", two);
		assert.deepEqual(await next(), { type: "start", suffix: "two", hops: [], cost: zero });
		one.close();
		assert.deepEqual(await next(), { type: "end", id: 0 });
		conn.publish("room/one", new BroadcastProducer());
		assert.deepEqual(await next(), { type: "start", suffix: "one", hops: [], cost: zero });
		two.close();
		assert.deepEqual(await next(), { type: "end", id: 1 });
		conn.close();
	});
});

describe("negotiation", () => {
	it("a client that does not offer lite-06 refuses a server that picked it", async () => {
		const [a, b] = memoryPair("moq-lite-06");
		const server = Connection.accept(b, { server: true }).catch(() => undefined);
		await assert.rejects(
			within(Connection.accept(a, { versions: ["moq-lite-05", "moq-lite-02"] })),
			(e: unknown) => e instanceof MoqError && e.code === ErrorCode.Version,
		);
		await server;
	});
});
