/** QmuxTransport over an in-memory WebSocket pair: moq sessions end to end, flow control, sendOrder, errors. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WireCodes } from "../src/error.ts";
import {
	BroadcastProducer,
	Connection,
	ErrorCode,
	type MessageSocket,
	MoqError,
	Qmux,
	QmuxTransport,
} from "../src/index.ts";
import { LOW_WATER } from "../src/qmux/session.ts";
import { mapStreamError, stopError, Writer } from "../src/session/stream.ts";
import { hex, type PipeSocket, rng, socketPair, within } from "./helpers.ts";

const { decodeMessage, frameBytes, defaultParams, TransportError } = Qmux;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function ends(
	version: Qmux.QmuxVersion,
	protocol: string,
	limits?: ConstructorParameters<typeof QmuxTransport>[1]["limits"],
) {
	const [a, b] = socketPair(`${version}${protocol ? `.${protocol}` : ""}`);
	const client = new QmuxTransport(a as unknown as MessageSocket, { version, protocol, limits });
	const server = new QmuxTransport(b as unknown as MessageSocket, { version, protocol, server: true, limits });
	return { a, b, client, server };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
	const parts: Uint8Array[] = [];
	for await (const chunk of stream) parts.push(chunk);
	const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
	let pos = 0;
	for (const p of parts) {
		out.set(p, pos);
		pos += p.length;
	}
	return out;
}

/** Resolves once `cond` holds (checked on each macrotask). */
async function until(cond: () => boolean): Promise<void> {
	while (!cond()) await new Promise((r) => setImmediate(r));
}

/** Every frame in the messages an end sent. */
function framesOf(sock: PipeSocket, version: Qmux.QmuxVersion): Qmux.Frame[] {
	return sock.sent.flatMap((m) => (typeof m === "string" ? [] : decodeMessage(m, version, 1 << 20)));
}

for (const [version, protocol, moq] of [
	["qmux-01", "moq-lite-06", "moq-lite-06"],
	["qmux-01", "moq-lite-05", "moq-lite-05"],
	["qmux-00", "moq-lite-05", "moq-lite-05"],
	["qmux-01", "", "moq-lite-02"],
] as const) {
	describe(`moq session over QMux loopback (${version}, "${protocol}")`, () => {
		it(`publishes and subscribes (${moq})`, async () => {
			const { client, server, a } = ends(version, protocol);
			const [c, s] = await within(
				Promise.all([Connection.accept(client), Connection.accept(server, { server: true })]),
				2000,
				"handshake",
			);
			assert.equal(c.version, moq);
			assert.equal(c.transport, "websocket");
			const broadcast = new BroadcastProducer();
			const track = broadcast.createTrack("video", { timescale: 1_000_000, maxLatencyMs: 30_000 });
			const group = track.appendGroup();
			group.writeFrame(bytes("key"), 1_000_000);
			// A frame larger than a record: split over several STREAM frames.
			const big = new Uint8Array(100_000).map((_, i) => i % 251);
			group.writeFrame(big, 1_033_333);
			s.publish("room/alice.hang", broadcast);

			const announced = c.announced("room");
			assert.deepEqual(await within(announced.next()), { path: "room/alice.hang", active: true });
			const sub = c.consume("room/alice.hang").subscribe("video", { priority: 1 });
			const got = await within(sub.nextGroup(), 2000, "group");
			assert.ok(got);
			assert.equal(text((await within(got.readFrame()))?.payload ?? new Uint8Array()), "key");
			assert.deepEqual((await within(got.readFrame()))?.payload, big);

			// The first message on the wire is QX_TRANSPORT_PARAMETERS; qmux-00 sends one frame per message.
			const first = decodeMessage(a.sent[0] as Uint8Array, version, 1 << 20);
			assert.equal(first[0]?.type, "transport_parameters");
			for (const m of a.sent) {
				const n = decodeMessage(m as Uint8Array, version, 1 << 20).length;
				if (version === "qmux-00") assert.equal(n, 1);
				assert.ok((m as Uint8Array).length <= 16384);
			}

			c.close();
			assert.equal(await within(s.closed), undefined);
			assert.deepEqual(await within(server.closed), { closeCode: 0, reason: "" });
		});
	});
}

describe("QmuxTransport streams", () => {
	it("honours tiny flow-control windows and re-grants credit as the reader reads", async () => {
		const limits = { maxData: 3000, maxStreamData: 1000, maxStreamsUni: 2, maxStreamsBidi: 2 };
		const { client, server, a, b } = ends("qmux-01", "moq-lite-05", limits);
		await within(Promise.all([client.ready, server.ready]));
		const payload = new Uint8Array(50_000).map((_, i) => (i * 7) % 256);
		// Five streams through a two-stream window: stream credit comes back as streams retire.
		const sends = (async () => {
			for (let i = 0; i < 5; i++) {
				const w = (await client.createUnidirectionalStream()).getWriter();
				await w.write(payload);
				await w.close();
			}
		})();
		const incoming = server.incomingUnidirectionalStreams.getReader();
		for (let i = 0; i < 5; i++) {
			const next = await within(incoming.read(), 3000, `stream ${i}`);
			assert.ok(!next.done);
			assert.deepEqual(await within(readAll(next.value), 3000, "read"), payload);
		}
		await within(sends);
		// The sender never went past a window: the receiver would have closed with FLOW_CONTROL_ERROR.
		const sent = framesOf(a, "qmux-01").filter((f) => f.type === "stream");
		assert.ok(sent.every((f) => f.type === "stream" && f.data.length <= 1000));
		const grants = framesOf(b, "qmux-01");
		assert.ok(grants.some((f) => f.type === "max_stream_data"));
		assert.ok(grants.some((f) => f.type === "max_data"));
		assert.ok(grants.some((f) => f.type === "max_streams" && !f.bidi));
		client.close();
	});

	it("a congested socket sends the highest sendOrder first and keeps bufferedAmount bounded", async () => {
		const { client, server, a } = ends("qmux-01", "moq-lite-05");
		await within(Promise.all([client.ready, server.ready]));
		a.paused = true;
		const low = (await client.createUnidirectionalStream({ sendOrder: 1 })).getWriter();
		const lowDone = low.write(new Uint8Array(600_000)).then(() => low.close());
		// The scheduler fills the socket up to its low-water mark, then holds the rest.
		await within(
			until(() => a.bufferedAmount >= LOW_WATER),
			2000,
			"socket congested",
		);
		const before = sent(a).length;
		const high = (await client.createUnidirectionalStream({ sendOrder: 10 })).getWriter();
		const highDone = high.write(bytes("urgent")).then(() => high.close());
		a.resume();
		const incoming = server.incomingUnidirectionalStreams.getReader();
		const first = await within(incoming.read());
		const second = await within(incoming.read());
		assert.ok(!first.done && !second.done);
		await within(Promise.all([readAll(first.value), readAll(second.value), lowDone, highDone]), 5000);

		const frames = sent(a).slice(before);
		const firstHigh = frames.findIndex((f) => f.id === 6);
		const lastLow = frames.findLastIndex((f) => f.id === 2);
		assert.ok(firstHigh >= 0 && firstHigh < lastLow, `high at ${firstHigh}, low ends at ${lastLow}`);
		// Once the socket drained, no low-priority frame went ahead of the urgent one.
		assert.ok(
			frames.slice(0, firstHigh).every((f) => f.id !== 2),
			"low-priority data overtook",
		);
		assert.ok(a.maxBuffered <= LOW_WATER + 16384, `bufferedAmount reached ${a.maxBuffered}`);
		client.close();

		function sent(sock: PipeSocket) {
			return framesOf(sock, "qmux-01").filter((f) => f.type === "stream") as Extract<Qmux.Frame, { type: "stream" }>[];
		}
	});

	it("RESET_STREAM and STOP_SENDING carry the code the session maps (as over WebTransport)", async () => {
		const { client, server } = ends("qmux-01", "moq-lite-05");
		const codes = new WireCodes("lite");
		const writer = new Writer(await client.createUnidirectionalStream(), codes);
		await writer.write(bytes("x"));
		writer.reset(ErrorCode.NotFound);
		const incoming = server.incomingUnidirectionalStreams.getReader();
		const stream = await within(incoming.read());
		assert.ok(!stream.done);
		const err = await readAll(stream.value).then(
			() => undefined,
			(e: unknown) => mapStreamError(e, codes),
		);
		assert.ok(err instanceof MoqError && err.code === ErrorCode.NotFound, String(err));

		const writer2 = new Writer(await client.createUnidirectionalStream(), codes);
		await writer2.write(bytes("y"));
		const stream2 = await within(incoming.read());
		assert.ok(!stream2.done);
		await stream2.value.cancel(stopError(codes, ErrorCode.Cancel));
		// The STOP_SENDING errors the writer with the peer's code (and the transport answers with a reset).
		const stopped = await within(
			writer2.closed.then(
				() => undefined,
				(e: unknown) => mapStreamError(e, codes),
			),
		);
		assert.ok(stopped instanceof MoqError && stopped.code === ErrorCode.Cancel, String(stopped));
		await assert.rejects(
			writer2.write(bytes("more")),
			(e: unknown) => e instanceof MoqError && e.code === ErrorCode.Cancel,
		);
		client.close({ closeCode: 7, reason: "done" });
		assert.deepEqual(await within(server.closed), { closeCode: 7, reason: "done" });
	});
});

describe("QmuxTransport protocol errors", () => {
	/** A client transport and the raw socket of its peer (which we drive by hand). */
	function raw(version: Qmux.QmuxVersion = "qmux-01", limits?: { maxStreamData: number }) {
		const [a, b] = socketPair(`${version}.moq-lite-05`);
		const client = new QmuxTransport(a as unknown as MessageSocket, { version, protocol: "moq-lite-05", limits });
		const params = { ...defaultParams(), initialMaxData: 1 << 20, initialMaxStreamsUni: 4, initialMaxStreamsBidi: 4 };
		return {
			client,
			peer: b,
			hello: () => b.send(frameBytes({ type: "transport_parameters", params }, version)),
		};
	}

	async function closesWith(client: QmuxTransport, peer: PipeSocket, code: number, reason: RegExp) {
		const err = await within(
			client.closed.then(
				() => undefined,
				(e: unknown) => e as Error,
			),
		);
		assert.ok(err && reason.test(err.message), `closed with ${err?.message}`);
		await within(client.ready.catch(() => {}));
		const close = peer.peer.sent
			.flatMap((m) => (typeof m === "string" ? [] : decodeMessage(m, "qmux-01", 1 << 20)))
			.find((f) => f.type === "connection_close");
		assert.ok(close && close.type === "connection_close" && !close.application && close.code === code);
		assert.ok(peer.peer.closed, "the WebSocket is closed");
	}

	it("a text message closes with PROTOCOL_VIOLATION", async () => {
		const { client, peer, hello } = raw();
		hello();
		peer.send("hello");
		await closesWith(client, peer, TransportError.ProtocolViolation, /text message/);
	});

	it("a frame before QX_TRANSPORT_PARAMETERS closes with PROTOCOL_VIOLATION", async () => {
		const { client, peer } = raw();
		peer.send(hex("10 4400"));
		await closesWith(client, peer, TransportError.ProtocolViolation, /before QX_TRANSPORT_PARAMETERS/);
	});

	it("an unknown frame type closes with FRAME_ENCODING_ERROR", async () => {
		const { client, peer, hello } = raw();
		hello();
		peer.send(hex("1e"));
		await closesWith(client, peer, TransportError.FrameEncoding, /unknown frame type/);
	});

	it("an oversize record closes with FRAME_ENCODING_ERROR", async () => {
		const { client, peer, hello } = raw();
		hello();
		peer.send(new Uint8Array(20_000));
		await closesWith(client, peer, TransportError.FrameEncoding, /exceeds 16382/);
	});

	it("data past the stream window closes with FLOW_CONTROL_ERROR", async () => {
		const { client, peer, hello } = raw("qmux-01", { maxStreamData: 10 });
		hello();
		// server-initiated uni stream 3, 11 bytes
		peer.send(frameBytes({ type: "stream", id: 3, offset: 0, data: new Uint8Array(11), fin: false }));
		await closesWith(client, peer, TransportError.FlowControl, /stream 3/);
	});

	it("a stream beyond MAX_STREAMS closes with STREAM_LIMIT_ERROR; data on our send-only stream with STREAM_STATE_ERROR", async () => {
		const one = raw();
		one.hello();
		// uni index 256 (id 1027) > our 256-stream window
		one.peer.send(frameBytes({ type: "stream", id: 256 * 4 + 3, offset: 0, data: bytes("x"), fin: false }));
		await closesWith(one.client, one.peer, TransportError.StreamLimit, /MAX_STREAMS/);

		const two = raw();
		two.hello();
		two.peer.send(frameBytes({ type: "stream", id: 2, offset: 0, data: bytes("x"), fin: false }));
		await closesWith(two.client, two.peer, TransportError.StreamState, /send-only/);
	});

	it("the peer's transport-error close rejects `closed`; its application close resolves it", async () => {
		const one = raw();
		one.hello();
		one.peer.send(frameBytes({ type: "connection_close", application: false, code: 0xa, frameType: 0, reason: "bad" }));
		const err = await within(
			one.client.closed.then(
				() => undefined,
				(e: unknown) => e as Error,
			),
		);
		assert.match(String(err?.message), /QUIC error 0xa: bad/);
		assert.equal(mapStreamError(err).message.includes("bad"), true);

		const two = raw();
		two.hello();
		await within(two.client.ready);
		two.peer.send(frameBytes({ type: "connection_close", application: true, code: 64 + 3, reason: "bye" }));
		assert.deepEqual(await within(two.client.closed), { closeCode: 67, reason: "bye" });
	});

	it("random messages after the handshake end in a clean close, never an uncaught error (seeded)", async () => {
		const next = rng(1234);
		for (let round = 0; round < 30; round++) {
			const { client, peer, hello } = raw(round % 2 ? "qmux-00" : "qmux-01");
			hello();
			for (let i = 0; i < 10; i++) {
				const msg = Uint8Array.from({ length: 1 + Math.floor(next() * 30) }, () => Math.floor(next() * 256));
				msg[0] = [0x04, 0x05, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x1d, 0x00][Math.floor(next() * 10)] ?? 0;
				peer.send(msg);
			}
			peer.send(hex("1e"));
			const outcome = await within(
				client.closed.then(
					(info) => `closed ${JSON.stringify(info)}`,
					(e: unknown) => `error ${(e as Error).message}`,
				),
			);
			assert.match(outcome, /^(closed|error) /);
		}
	});
});
