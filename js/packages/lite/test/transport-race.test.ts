/**
 * Connection.connect's transport race with stand-ins for the browser's WebTransport and WebSocket
 * (each backed by an in-memory peer running the server side of a real session): who starts when,
 * who wins, and that the loser is closed.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { Connection, type MessageSocket, parseWsProtocol, QmuxTransport } from "../src/index.ts";
import { memoryPair, PipeSocket, within } from "./helpers.ts";

type Mode = "ready" | "hang" | "fail";

/** A WebTransport stand-in: `mode` decides whether `ready` resolves, never settles, or rejects. */
class FakeWebTransport {
	static mode: Mode = "ready";
	static made: FakeWebTransport[] = [];
	readonly ready: Promise<void>;
	closedByClient = false;
	readonly #inner: ReturnType<typeof memoryPair>[0];
	#fail: (err: Error) => void = () => {};

	constructor(_url: URL, options: { protocols?: string[] }) {
		FakeWebTransport.made.push(this);
		const [client, server] = memoryPair(options.protocols?.[0] ?? "");
		this.#inner = client;
		if (FakeWebTransport.mode === "ready") {
			this.ready = Promise.resolve();
			Connection.accept(server, { server: true }).catch(() => {});
		} else if (FakeWebTransport.mode === "fail") {
			this.ready = Promise.reject(new Error("QUIC handshake failed"));
		} else {
			this.ready = new Promise((_, reject) => {
				this.#fail = reject;
			});
		}
		this.ready.catch(() => {});
	}

	get protocol() {
		return this.#inner.protocol;
	}
	get closed() {
		return this.#inner.closed;
	}
	get incomingBidirectionalStreams() {
		return this.#inner.incomingBidirectionalStreams;
	}
	get incomingUnidirectionalStreams() {
		return this.#inner.incomingUnidirectionalStreams;
	}
	createBidirectionalStream(o?: { sendOrder?: number }) {
		return this.#inner.createBidirectionalStream(o);
	}
	createUnidirectionalStream(o?: { sendOrder?: number }) {
		return this.#inner.createUnidirectionalStream(o);
	}
	close(info?: { closeCode?: number; reason?: string }) {
		this.closedByClient = true;
		this.#fail(new Error("closed"));
		this.#inner.close(info);
	}
}

/** A WebSocket stand-in: the server picks the first offered subprotocol and runs QMux + a session. */
class FakeWebSocket extends PipeSocket {
	static made: FakeWebSocket[] = [];
	static offered: string[][] = [];
	binaryType = "blob";
	readonly url: string;
	onopen: (() => void) | null = null;

	constructor(url: URL, protocols: string[]) {
		const chosen = protocols[0] ?? "";
		super(chosen);
		FakeWebSocket.made.push(this);
		FakeWebSocket.offered.push(protocols);
		this.url = String(url);
		const server = new PipeSocket(chosen);
		this.peer = server;
		server.peer = this;
		const parsed = parseWsProtocol(chosen);
		assert.ok(parsed);
		// As on a real socket, nothing flows before the client sees `open`.
		setTimeout(() => {
			const transport = new QmuxTransport(server as unknown as MessageSocket, {
				version: parsed.version,
				protocol: parsed.alpn,
				server: true,
			});
			Connection.accept(transport, { server: true }).catch(() => {});
			this.onopen?.();
		}, 0);
	}
}

const globals = globalThis as { WebTransport?: unknown; WebSocket?: unknown };
const saved = { WebTransport: globals.WebTransport, WebSocket: globals.WebSocket };
const open: Connection[] = [];
let host = 0;
/** A fresh relay URL: the race remembers winners per host. */
const url = () => `https://relay-${++host}.test:4443/anon?jwt=secret`;
/** Let every pending microtask and the next macrotask run. */
const tick = () => new Promise((r) => setImmediate(r));

describe("Connection.connect transport race", () => {
	before(() => {
		globals.WebTransport = FakeWebTransport;
		globals.WebSocket = FakeWebSocket;
	});
	afterEach(() => {
		for (const c of open.splice(0)) c.close();
		FakeWebTransport.made = [];
		FakeWebSocket.made = [];
		FakeWebSocket.offered = [];
	});
	after(() => {
		globals.WebTransport = saved.WebTransport;
		globals.WebSocket = saved.WebSocket;
	});

	it("WebTransport ready within the head start wins and no WebSocket is opened", async () => {
		FakeWebTransport.mode = "ready";
		const conn = await within(Connection.connect(url()));
		open.push(conn);
		assert.equal(conn.transport, "webtransport");
		assert.equal(conn.version, "moq-lite-06");
		await tick();
		assert.equal(FakeWebSocket.made.length, 0);
	});

	it("a hanging WebTransport gets a WebSocket after the head start; the WebSocket wins and WebTransport is closed", async () => {
		FakeWebTransport.mode = "hang";
		const target = url();
		const pending = Connection.connect(target);
		await tick();
		assert.equal(FakeWebTransport.made.length, 1);
		assert.equal(FakeWebSocket.made.length, 0, "the WebSocket must wait for the head start");
		const conn = await within(pending, 3000, "connect");
		open.push(conn);
		assert.equal(conn.transport, "websocket");
		assert.equal(conn.version, "moq-lite-06");
		assert.equal(FakeWebTransport.made[0]?.closedByClient, true, "the losing WebTransport is closed");
		assert.deepEqual(FakeWebSocket.offered[0], [
			"qmux-01.moq-lite-06",
			"qmux-00.moq-lite-06",
			"qmux-01.moq-lite-05",
			"qmux-00.moq-lite-05",
			"qmux-01",
			"qmux-00",
		]);
		assert.equal(FakeWebSocket.made[0]?.url, target.replace("https:", "wss:"));

		// Remembered: the next connect to the same relay opens the WebSocket at once.
		const again = Connection.connect(target);
		await tick();
		assert.equal(FakeWebSocket.made.length, 2, "no head start after a WebSocket win");
		open.push(await within(again));
	});

	it("a WebTransport that fails starts the WebSocket at once", async () => {
		FakeWebTransport.mode = "fail";
		const pending = Connection.connect(url());
		await tick();
		assert.equal(FakeWebSocket.made.length, 1);
		const conn = await within(pending);
		open.push(conn);
		assert.equal(conn.transport, "websocket");
	});

	it("transport: websocket never opens WebTransport; transport: webtransport never opens a WebSocket", async () => {
		FakeWebTransport.mode = "hang";
		const ws = await within(Connection.connect(url(), { transport: "websocket", versions: ["moq-lite-05"] }));
		open.push(ws);
		assert.equal(ws.transport, "websocket");
		assert.equal(ws.version, "moq-lite-05");
		assert.equal(FakeWebTransport.made.length, 0);
		assert.deepEqual(FakeWebSocket.offered[0], ["qmux-01.moq-lite-05", "qmux-00.moq-lite-05"]);

		FakeWebTransport.mode = "fail";
		await assert.rejects(Connection.connect(url(), { transport: "webtransport" }), /QUIC handshake failed/);
		assert.equal(FakeWebSocket.made.length, 1);
	});

	it("the lite-02 offer over WebSocket takes a bare subprotocol and the compat SETUP", async () => {
		const conn = await within(Connection.connect(url(), { transport: "websocket", versions: ["moq-lite-02"] }));
		open.push(conn);
		assert.deepEqual(FakeWebSocket.offered[0], ["qmux-01", "qmux-00"]);
		assert.equal(conn.version, "moq-lite-02");
	});
});
