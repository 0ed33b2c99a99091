/** Sessions end to end over an in-memory WebTransport pair, for lite-06, lite-05 and the lite-02 compat path. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BroadcastProducer, Connection, ErrorCode, MoqError } from "../src/index.ts";
import { memoryPair, within } from "./helpers.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The value, asserting it is there. */
function must<T>(v: T | undefined): T {
	assert.ok(v !== undefined, "expected a value");
	return v;
}

async function pair(protocol: string) {
	const [a, b] = memoryPair(protocol);
	const [client, server] = await within(
		Promise.all([Connection.accept(a), Connection.accept(b, { server: true })]),
		2000,
		"handshake",
	);
	return { client, server, a, b };
}

for (const [protocol, version] of [
	["moq-lite-06", "moq-lite-06"],
	["moq-lite-05", "moq-lite-05"],
	["moql", "moq-lite-02"],
	["", "moq-lite-02"],
] as const) {
	describe(`session over protocol "${protocol}"`, () => {
		it(`negotiates ${version}`, async () => {
			const { client, server } = await pair(protocol);
			assert.equal(client.version, version);
			assert.equal(server.version, version);
			client.close();
			assert.equal(await within(server.closed), undefined);
		});

		it("announces, serves the latest group from its first frame, and ends cleanly", async () => {
			const { client, server } = await pair(protocol);
			const broadcast = new BroadcastProducer();
			const track = broadcast.createTrack("video", { timescale: 1_000_000, maxLatencyMs: 30_000 });
			const old = track.appendGroup();
			old.writeFrame(bytes("old"), 1);
			const live = track.appendGroup();
			live.writeFrame(bytes("key"), 1_000_000);
			live.writeFrame(bytes("delta"), 1_033_333);
			server.publish("room/alice.hang", broadcast);

			const announced = client.announced("room");
			assert.deepEqual(await within(announced.next()), { path: "room/alice.hang", active: true });

			const sub = client.consume("room/alice.hang").subscribe("video", { priority: 60 });
			const group = await within(sub.nextGroup(), 2000, "first group");
			assert.equal(group?.sequence, 1);
			const f1 = await within(must(group).readFrame());
			const f2 = await within(must(group).readFrame());
			assert.equal(text(must(f1).payload), "key");
			assert.equal(text(must(f2).payload), "delta");
			if (version !== "moq-lite-02") {
				assert.equal(must(f1).timestamp, 1_000_000);
				assert.equal(must(f2).timestamp, 1_033_333);
			} else {
				assert.equal(must(f1).timestamp, undefined);
			}
			assert.equal(track.subscribers, 1);

			const next = track.appendGroup(); // closes group 1
			assert.equal(await within(must(group).readFrame()), undefined);
			next.writeFrame(bytes("g2"), 2_000_000);
			const g2 = await within(sub.nextGroup());
			assert.equal(g2?.sequence, 2);
			assert.equal(text(must(await within(must(g2).readFrame())).payload), "g2");

			broadcast.close();
			assert.deepEqual(await within(announced.next()), { path: "room/alice.hang", active: false });
			assert.equal(await within(must(g2).readFrame()), undefined);
			assert.equal(await within(sub.nextGroup(), 3000, "track end"), undefined);
			announced.close();
			client.close();
			await within(server.closed);
		});

		it("an unknown track fails with code 13", async () => {
			const { client, server } = await pair(protocol);
			server.publish("b", new BroadcastProducer());
			const sub = client.consume("b").subscribe("missing");
			await assert.rejects(
				within(sub.nextGroup()),
				(e: unknown) => e instanceof MoqError && e.code === ErrorCode.NotFound,
			);
			const nothing = client.consume("nope").subscribe("x");
			await assert.rejects(within(nothing.nextGroup()), (e: unknown) => e instanceof MoqError && e.code === 13);
			client.close();
		});

		it("unsubscribing (FIN) releases the publisher's subscription", async () => {
			const { client, server } = await pair(protocol);
			const broadcast = new BroadcastProducer();
			const track = broadcast.createTrack("chat");
			server.publish("b", broadcast);
			track.writeFrame(bytes("hi"));
			const sub = client.consume("b").subscribe("chat");
			const g = await within(sub.nextGroup());
			assert.equal(text(must(await within(must(g).readFrame())).payload), "hi");
			assert.equal(track.subscribers, 1);
			sub.close();
			for (let i = 0; i < 100 && track.subscribers > 0; i++) {
				track.writeFrame(bytes("more")); // wakes the publisher's group loop
				await new Promise((r) => setTimeout(r, 10));
			}
			assert.equal(track.subscribers, 0);
			client.close();
		});

		it("a subscription or announce request stopped at once still goes out before its FIN", async () => {
			// moq-relay 0.10 ends the whole session when a bidi stream ends before its type.
			const { client, a } = await pair(protocol);
			const fins: { written: number }[] = [];
			let finished!: () => void;
			const twoFins = new Promise<void>((r) => {
				finished = r;
			});
			const open = a.createBidirectionalStream.bind(a);
			a.createBidirectionalStream = async (options) => {
				const stream = await open(options);
				const inner = stream.writable.getWriter();
				let written = 0;
				const writable = new WritableStream<Uint8Array>({
					write: (chunk) => {
						written += chunk.byteLength;
						return inner.write(chunk);
					},
					close: () => {
						fins.push({ written });
						if (fins.length >= 2) finished();
						return inner.close();
					},
					abort: (reason) => inner.abort(reason),
				});
				return { readable: stream.readable, writable };
			};
			client.consume("b").subscribe("t").close();
			client.announced("x").close();
			await within(twoFins, 2000, "two FINs");
			for (const fin of fins) assert.ok(fin.written > 0, "a stream ended before its request");
			client.close();
		});

		it("publishes in both directions on one session and sees later announcements live", async () => {
			const { client, server } = await pair(protocol);
			const announced = server.announced("");
			const broadcast = new BroadcastProducer();
			client.publish("from/client", broadcast);
			assert.deepEqual(await within(announced.next()), { path: "from/client", active: true });
			const t = broadcast.createTrack("t");
			const sub = server.consume("from/client").subscribe("t");
			t.writeFrame(bytes("up"), 5);
			const g = await within(sub.nextGroup());
			const f = await within(must(g).readFrame());
			assert.equal(text(must(f).payload), "up");
			client.close();
			assert.equal(await within(announced.next()), undefined);
			await assert.rejects(within(sub.nextGroup()), MoqError);
		});
	});
}

describe("priorities", () => {
	it("group streams get negative send orders, higher for higher priority and newer groups", async () => {
		const { groupSendOrder } = await import("../src/session/publisher.ts");
		assert.ok(groupSendOrder(255, 255, 2 ** 32 - 1) < 0);
		assert.ok(groupSendOrder(100, 0, 0) > groupSendOrder(60, 0, 1000));
		assert.ok(groupSendOrder(60, 0, 11) > groupSendOrder(60, 0, 10));
		assert.ok(groupSendOrder(60, 1, 0) > groupSendOrder(60, 0, 5));
	});

	it("the publisher opens group streams with those send orders", async () => {
		const { client, server, b } = await pair("moq-lite-05");
		const broadcast = new BroadcastProducer();
		const track = broadcast.createTrack("t");
		server.publish("b", broadcast);
		track.writeFrame(bytes("0"));
		const sub = client.consume("b").subscribe("t", { priority: 80 });
		await within(sub.nextGroup());
		track.writeFrame(bytes("1"));
		await within(sub.nextGroup());
		const orders = b.uniOrders.filter((o): o is number => o !== undefined);
		assert.equal(orders.length, 2);
		assert.ok(orders.every((o) => o < 0));
		assert.ok((orders[1] ?? 0) > (orders[0] ?? 0));
		client.close();
	});
});
