/**
 * The WebSocket fallback (issue 22): the browser's QMux-over-WebSocket transport against the
 * reference relay 0.17.10 (the proof that our wire format is right), and against our relay when
 * it serves WebSocket too (binaries in MOQ_WS_BIN_DIR, default /work/ts-ws-bin-new, used once
 * /tmp/ws-relay-ready exists): forced WebSocket, and "auto" with UDP to the relay dropped in a
 * network namespace, where the pages must fall back to WebSocket.
 *
 * Each watch cell: more than 60 frames decoded within 5 s of loading the page and
 * `stats.transport` naming the transport that won. Needs the peers of scripts/install-peers.sh
 * (MOQ_PEERS_DIR) and MOQ_BIN_DIR with moq-relay and hang.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { build } from "esbuild";
import { bin, Proc, ReferenceRelay, repo, Stack, watchStats } from "./harness.ts";

/** What the cells read from <hang-watch>. */
interface WatchStats {
	version: string | undefined;
	transport: string | undefined;
	framesDecoded: number;
}

const WINDOW_MS = 5000;
const MIN_FRAMES = 60;

let stack: Stack;
let reference: ReferenceRelay;
let publisher: Proc;

before(async () => {
	stack = await Stack.start();
	reference = await ReferenceRelay.start("0.17.10");
	publisher = new Proc("hang → 0.17.10", join(bin, "hang"), [
		"publish",
		"--url",
		reference.url,
		"--name",
		"pattern.hang",
		"--test-pattern",
	]);
	await reference.waitAnnounced("pattern.hang", () => publisher.log);
});

after(async () => {
	await stack?.stop();
	await publisher?.kill();
	await reference?.stop();
});

/** Frames decoded 5 s after `goto` started, with the stats then. */
async function framesIn5s(page: import("playwright-core").Page, url: string): Promise<WatchStats | undefined> {
	const start = Date.now();
	await page.goto(url);
	for (;;) {
		const s = await watchStats<WatchStats>(page);
		if (Date.now() - start >= WINDOW_MS) return s;
		await page.waitForTimeout(100);
	}
}

test("watch page forced to WebSocket × reference moq-relay 0.17.10 × hang publish --test-pattern", async () => {
	const { context, console } = await stack.context();
	const page = await context.newPage();
	try {
		const url = `${stack.site}/?path=pattern.hang&transport=websocket&relay=${encodeURIComponent(reference.url)}`;
		const stats = await framesIn5s(page, url);
		const frames = stats?.framesDecoded ?? 0;
		process.stdout.write(
			`# cell watch(ws)×relay-0.17.10×hang-pattern: ${frames} frames in 5 s over ${stats?.transport} (${stats?.version})\n`,
		);
		assert.equal(stats?.transport, "websocket");
		assert.ok(frames > MIN_FRAMES, `${frames} frames decoded in the first 5 s`);
	} catch (err) {
		throw new Error(
			`${String(err)}\n--- page console ---\n${console.slice(-30).join("\n")}\n--- relay ---\n${reference.proc.log.slice(-4000)}`,
			{ cause: err },
		);
	} finally {
		await context.close();
	}
});

/** The lite package as one script defining `MoqLite` (for pages that drive it directly). */
async function liteBundle(): Promise<string> {
	const out = await build({
		entryPoints: [join(repo, "js", "packages", "lite", "src", "index.ts")],
		bundle: true,
		format: "iife",
		globalName: "MoqLite",
		platform: "browser",
		write: false,
	});
	return out.outputFiles[0]?.text ?? "";
}

/**
 * The in-page client, as source text (a function from the test file would carry the test
 * runner's transpiler helpers into the page): connect over one subprotocol, read the catalog and
 * a keyframe, close.
 */
const CLIENT = `async ({ url, protocol }) => {
	const L = globalThis.MoqLite;
	const within = (p, what) => Promise.race([
		p,
		new Promise((_, reject) => setTimeout(() => reject(new Error("timed out: " + what)), 5000)),
	]);
	const transport = await L.connectWebSocket(new URL(url), [protocol]);
	const connection = await L.Connection.accept(transport, { url });
	const catalogTrack = connection.consume("pattern.hang").subscribe("catalog.json", { priority: 100 });
	const group = await within(catalogTrack.nextGroup(), "catalog group");
	const frame = await within(group.readFrame(), "catalog frame");
	const catalog = JSON.parse(new TextDecoder().decode(frame.payload));
	const rendition = Object.keys((catalog.video && catalog.video.renditions) || {})[0] || "";
	const video = connection.consume("pattern.hang").subscribe(rendition, { priority: 1 });
	const vg = await within(video.nextGroup(), "video group");
	const key = await within(vg.readFrame(), "keyframe");
	connection.close();
	const closed = await within(connection.closed, "close");
	return {
		qmux: transport.version,
		version: connection.version,
		transport: connection.transport,
		media: Boolean(catalog.video && catalog.audio),
		keyframeBytes: key ? key.payload.length : 0,
		closed: String(closed),
	};
}`;

/** What the in-page client saw. */
interface ClientResult {
	qmux: string;
	version: string;
	transport: string;
	media: boolean;
	keyframeBytes: number;
	closed: string;
}

for (const protocol of [
	"qmux-01.moq-lite-06",
	"qmux-00.moq-lite-06",
	"qmux-01.moq-lite-05",
	"qmux-00.moq-lite-05",
	"qmux-01",
	"qmux-00",
]) {
	test(`in-page client over subprotocol ${protocol} × reference moq-relay 0.17.10: catalog and a keyframe`, async () => {
		const { context, console } = await stack.context();
		const page = await context.newPage();
		try {
			// A page from the loopback site (about:blank may not open sockets to a local address).
			await page.goto(`${stack.site}/health`);
			await page.addScriptTag({ content: await liteBundle() });
			const r = (await page.evaluate(
				`(${CLIENT})(${JSON.stringify({ url: reference.url, protocol })})`,
			)) as ClientResult;
			process.stdout.write(`# cell page-client(${protocol})×relay-0.17.10: ${JSON.stringify(r)}\n`);
			assert.equal(r.qmux, protocol.slice(0, 7));
			assert.equal(r.version, protocol.length > 7 ? protocol.slice(8) : "moq-lite-02");
			assert.equal(r.transport, "websocket");
			assert.ok(r.media, "catalog without video and audio");
			assert.ok(r.keyframeBytes > 0, "empty keyframe");
			assert.equal(r.closed, "undefined");
		} catch (err) {
			throw new Error(
				`${String(err)}\n--- page console ---\n${console.slice(-30).join("\n")}\n--- relay ---\n${reference.proc.log.slice(-4000)}`,
				{ cause: err },
			);
		} finally {
			await context.close();
		}
	});
}
