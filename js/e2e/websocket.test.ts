/**
 * The WebSocket fallback (issue 22): the browser's QMux-over-WebSocket transport against the
 * reference relay 0.17.10 (the proof that our wire format is right) and against our relay
 * (MOQ_BIN_DIR): forced WebSocket, and "auto" with UDP to the relay dropped in a network
 * namespace, where the pages must fall back to WebSocket.
 *
 * Each watch cell: more than 60 frames decoded within 5 s of loading the page and
 * `stats.transport` naming the transport that won. Needs the peers of scripts/install-peers.sh
 * (MOQ_PEERS_DIR) and MOQ_BIN_DIR with moq-relay and hang.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { type Browser, type BrowserContext, chromium } from "playwright-core";
import {
	bin,
	CHROMIUM,
	COUNT_DECODED,
	freePort,
	Proc,
	peersDir,
	ReferenceRelay,
	repo,
	Stack,
	waitFor,
	watchStats,
	webRoot,
} from "./harness.ts";

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

describe("WebSocket to the reference relay 0.17.10 on loopback", () => {
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
});

// --- "auto" with UDP to the relay dropped: a network namespace of this test's own -------------

/** The reference player's bundle (scripts/install-peers.sh). */
const refPlayer = join(peersDir, "npm-moq-watch-0.4.6-publish-0.2.17");

/**
 * A namespace with Chromium, the relays and the publishers. The browser reaches the relays at
 * 127.0.0.2 and the `hang` publishers at 127.0.0.1, so a rule dropping UDP to 127.0.0.2 cuts
 * QUIC/WebTransport for the browser only.
 */
class Net {
	readonly ns = `moq-e2e-ws-${process.pid}`;
	readonly procs: Proc[] = [];
	browser: Browser | undefined;
	#wrapperDir = "";

	static async create(): Promise<Net> {
		const net = new Net();
		execFileSync("ip", ["netns", "add", net.ns]);
		net.run("ip", "link", "set", "lo", "up");
		net.run("ip", "addr", "add", "127.0.0.2/8", "dev", "lo");
		net.#wrapperDir = mkdtempSync(join(tmpdir(), "moq-e2e-ws-"));
		const wrapper = join(net.#wrapperDir, "chromium-in-netns");
		writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${net.ns} ${CHROMIUM} "$@"\n`);
		chmodSync(wrapper, 0o755);
		net.browser = await chromium.launch({
			executablePath: wrapper,
			args: [
				"--disable-gpu",
				"--no-first-run",
				"--autoplay-policy=no-user-gesture-required",
				"--use-fake-device-for-media-stream",
				"--use-fake-ui-for-media-stream",
			],
		});
		return net;
	}

	/** Run a command in the namespace to completion. */
	run(...args: string[]): string {
		return execFileSync("ip", ["netns", "exec", this.ns, ...args], { stdio: ["ignore", "pipe", "pipe"] }).toString();
	}

	/** Start a long-running process in the namespace (stopped by remove()). */
	spawn(name: string, command: string, args: string[]): Proc {
		const proc = new Proc(name, "/usr/sbin/ip", ["netns", "exec", this.ns, command, ...args]);
		this.procs.push(proc);
		return proc;
	}

	/** Poll `url` (in the namespace) until it answers 2xx and its body passes `ok`. */
	async until(url: string, ok: (body: string) => boolean, what: string, log: () => string): Promise<void> {
		const deadline = Date.now() + 20_000;
		for (;;) {
			try {
				if (ok(this.run("curl", "-sf", "--max-time", "2", url))) return;
			} catch {
				// not up yet
			}
			if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${log()}`);
			await new Promise((r) => setTimeout(r, 100));
		}
	}

	/** Drop UDP to 127.0.0.2:`port` (none = no rule: QUIC passes). */
	blockUdp(port: number | undefined): void {
		try {
			this.run("nft", "delete", "table", "inet", "moq_e2e");
		} catch {
			// no table yet
		}
		if (port === undefined) return;
		this.run("nft", "add", "table", "inet", "moq_e2e");
		this.run("nft", "add", "chain", "inet", "moq_e2e", "in", "{ type filter hook input priority 0; }");
		this.run(
			"nft",
			"add",
			"rule",
			"inet",
			"moq_e2e",
			"in",
			"ip",
			"daddr",
			"127.0.0.2",
			"udp",
			"dport",
			String(port),
			"drop",
		);
	}

	/** Stop everything in the namespace, delete it and the wrapper. */
	async remove(): Promise<void> {
		await this.browser?.close().catch(() => {});
		for (const proc of this.procs) await proc.kill();
		try {
			for (const pid of execFileSync("ip", ["netns", "pids", this.ns]).toString().split(/\s+/).filter(Boolean)) {
				try {
					process.kill(Number(pid), "SIGKILL");
				} catch {
					// already gone
				}
			}
			execFileSync("ip", ["netns", "del", this.ns]);
		} catch {
			// no namespace
		}
		if (this.#wrapperDir) rmSync(this.#wrapperDir, { recursive: true, force: true });
	}
}

describe("auto transport with UDP to the relay blocked", () => {
	let net: Net;
	/** The site (our demo pages) and, once it has WebSocket, our relay: port in the namespace. */
	let site = 0;
	let siteRelay: Proc;
	/** The reference relay 0.17.10 in the namespace. */
	let refPort = 0;
	let refRelay: Proc;

	before(async () => {
		net = await Net.create();
		// Ports are taken in this process's namespace; the new one has no listeners at all.
		site = await freePort();
		refPort = await freePort();
		siteRelay = net.spawn("moq-relay (ours)", join(bin, "moq-relay"), [
			"--listen",
			`0.0.0.0:${site}`,
			"--web-http-listen",
			`0.0.0.0:${site}`,
			"--tls-generate",
			"localhost,127.0.0.1,127.0.0.2",
			"--web-root",
			webRoot,
			"--auth-public",
			"",
		]);
		refRelay = net.spawn("moq-relay 0.17.10", join(peersDir, "relay-0.17.10", "bin", "moq-relay"), [
			"--listen",
			`0.0.0.0:${refPort}`,
			"--listen-tls-generate",
			"localhost",
			"--auth-public",
			"**",
			"--web-http-listen",
			`0.0.0.0:${refPort}`,
		]);
		const logs = () => [siteRelay, refRelay].map((p) => `--- ${p.name} ---\n${p.log.slice(-3000)}`).join("\n");
		await net.until(`http://127.0.0.1:${site}/health`, () => true, "our relay", logs);
		await net.until(`http://127.0.0.1:${refPort}/certificate.sha256`, () => true, "the reference relay", logs);
		// The test pattern on both relays, published over 127.0.0.1 (never blocked).
		for (const [port, name] of [
			[refPort, "hang → 0.17.10"],
			[site, "hang → ours"],
		] as const) {
			const p = net.spawn(name, join(bin, "hang"), [
				"publish",
				"--url",
				`http://127.0.0.1:${port}/anon`,
				"--name",
				"pattern.hang",
				"--test-pattern",
			]);
			await net.until(
				`http://127.0.0.1:${port}/announced`,
				(body) => body.split(/\s+/).some((l) => l === "anon/pattern.hang" || l.endsWith("/pattern.hang")),
				`${name} announced`,
				() => `${p.log}\n${logs()}`,
			);
		}
	});

	after(async () => {
		await net?.remove();
	});

	/** A fresh context in the namespace's browser (its own localStorage: no remembered winner). */
	async function context(): Promise<{ context: BrowserContext; console: string[] }> {
		assert.ok(net.browser);
		const context = await net.browser.newContext({ viewport: { width: 1280, height: 800 } });
		const console: string[] = [];
		context.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
		context.on("weberror", (e) => console.push(`pageerror: ${e.error().message}`));
		return { context, console };
	}

	/** The watch page at `url`: frames decoded 5 s after the WebSocket head start, and the transport. */
	async function watchCell(name: string, url: string, transport: string, relay: Proc): Promise<void> {
		const { context: ctx, console } = await context();
		const page = await ctx.newPage();
		try {
			const start = Date.now();
			await page.goto(url);
			let stats: WatchStats | undefined;
			for (;;) {
				stats = await watchStats<WatchStats>(page);
				if (Date.now() - start >= 500 + WINDOW_MS) break;
				await page.waitForTimeout(100);
			}
			const frames = stats?.framesDecoded ?? 0;
			process.stdout.write(
				`# cell ${name}: ${frames} frames 5 s after the fallback could start, over ${stats?.transport} (${stats?.version})\n`,
			);
			assert.equal(stats?.transport, transport);
			assert.ok(frames > MIN_FRAMES, `${frames} frames decoded`);
		} catch (err) {
			throw new Error(
				`${String(err)}\n--- page console ---\n${console.slice(-30).join("\n")}\n--- ${relay.name} ---\n${relay.log.slice(-4000)}`,
				{ cause: err },
			);
		} finally {
			await ctx.close();
		}
	}

	for (const blocked of [true, false]) {
		test(`watch page, auto, ${blocked ? "UDP blocked → WebSocket" : "UDP open → WebTransport"} × reference moq-relay 0.17.10`, async () => {
			net.blockUdp(blocked ? refPort : undefined);
			const relay = encodeURIComponent(`http://127.0.0.2:${refPort}/anon`);
			await watchCell(
				`watch(auto${blocked ? ", no UDP" : ""})×relay-0.17.10`,
				`http://127.0.0.2:${site}/?path=pattern.hang&relay=${relay}`,
				blocked ? "websocket" : "webtransport",
				refRelay,
			);
		});
	}

	test("watch page forced to WebSocket × our relay", async () => {
		net.blockUdp(undefined);
		await watchCell(
			"watch(ws)×relay-ours",
			`http://127.0.0.2:${site}/?path=pattern.hang&transport=websocket`,
			"websocket",
			siteRelay,
		);
	});

	for (const blocked of [true, false]) {
		const how = blocked ? "UDP blocked → WebSocket" : "UDP open → WebTransport";
		const expected = blocked ? "websocket" : "webtransport";
		// Without the rule WebTransport wins: that needs no WebSocket on our relay.

		test(`watch page, auto, ${how} × our relay`, async () => {
			net.blockUdp(blocked ? site : undefined);
			await watchCell(
				`watch(auto${blocked ? ", no UDP" : ""})×relay-ours`,
				`http://127.0.0.2:${site}/?path=pattern.hang`,
				expected,
				siteRelay,
			);
		});

		test(`publish page and room page, auto, ${how} × our relay`, async () => {
			net.blockUdp(blocked ? site : undefined);
			const { context: ctx, console } = await context();
			await ctx.grantPermissions(["camera", "microphone"]);
			const tag = blocked ? "ws" : "wt";
			try {
				// The publish page's camera, watched by the watch page.
				const publisher = await ctx.newPage();
				await publisher.goto(`http://127.0.0.2:${site}/publish?path=cam-${tag}.hang&source=camera&autostart`);
				await net.until(
					`http://127.0.0.1:${site}/announced`,
					(body) => body.split("\n").includes(`anon/cam-${tag}.hang`),
					"the publish page's broadcast",
					() => console.join("\n"),
				);
				const published = await waitFor("publish stats", 10_000, async () => {
					const st = await publisher.evaluate(() => {
						const el = document.querySelector("hang-publish") as
							| (HTMLElement & { stats?: { transport?: string; framesEncoded: number } })
							| null;
						return el?.stats ? { ...el.stats } : undefined;
					});
					return st?.transport && st.framesEncoded > 0 ? st : undefined;
				});
				assert.equal(published.transport, expected, "publish page transport");
				const viewer = await ctx.newPage();
				await viewer.goto(`http://127.0.0.2:${site}/?path=cam-${tag}.hang`);
				const seen = await waitFor("frames of the published camera", 10_000, async () => {
					const st = await watchStats<WatchStats>(viewer);
					return st && st.framesDecoded > 10 ? st : undefined;
				});
				assert.equal(seen.transport, expected, "watch page transport");

				// The room page: bob sees and plays alice's camera; both on the expected transport.
				const alice = await ctx.newPage();
				const bob = await ctx.newPage();
				await alice.goto(`http://127.0.0.2:${site}/room?room=${tag}&name=alice&source=camera&join`);
				await bob.goto(`http://127.0.0.2:${site}/room?room=${tag}&name=bob&source=none&join`);
				const tile = `.tile[data-path="room/${tag}/alice.hang"] hang-watch`;
				await bob.waitForSelector(tile, { timeout: 15_000 });
				await alice.waitForSelector(`.tile[data-path="room/${tag}/bob.hang"]`, { timeout: 15_000 });
				const room = await waitFor("bob playing alice", 15_000, async () => {
					const st = await bob.evaluate((sel) => {
						const el = document.querySelector(sel) as
							| (HTMLElement & { stats?: { framesDecoded: number; transport?: string } })
							| null;
						return el?.stats ? { ...el.stats } : undefined;
					}, tile);
					return st && st.framesDecoded > 10 ? st : undefined;
				});
				assert.equal(room.transport, expected, "room page transport");
				process.stdout.write(
					`# cell publish+room(auto${blocked ? ", no UDP" : ""})×relay-ours: publish over ${published.transport}, ` +
						`viewer ${seen.framesDecoded} frames over ${seen.transport}, room ${room.framesDecoded} frames over ${room.transport}\n`,
				);
			} catch (err) {
				throw new Error(
					`${String(err)}\n--- page console ---\n${console.slice(-40).join("\n")}\n--- relay ---\n${siteRelay.log.slice(-4000)}`,
					{ cause: err },
				);
			} finally {
				await ctx.close();
			}
		});
	}

	test("reference @moq/watch 0.4.6, UDP blocked, plays our relay over WebSocket", async () => {
		if (!existsSync(join(refPlayer, "moq-reference.js")))
			throw new Error(`${refPlayer}/moq-reference.js is missing: run scripts/install-peers.sh (scripts/test.sh does)`);
		net.blockUdp(site);
		const { context: ctx, console } = await context();
		await ctx.addInitScript({ content: COUNT_DECODED });
		// The reference page from a static server in the namespace (a loopback origin, as in production
		// a page and its relay share a network; a page fulfilled by the test would count as public).
		const dir = mkdtempSync(join(tmpdir(), "moq-e2e-ref-"));
		const pagesPort = await freePort();
		const server = net.spawn("reference page server", "python3", [
			"-m",
			"http.server",
			String(pagesPort),
			"--bind",
			"127.0.0.2",
			"--directory",
			dir,
		]);
		const base = `http://127.0.0.2:${pagesPort}/`;
		try {
			copyFileSync(join(repo, "js", "e2e", "reference", "index.html"), join(dir, "index.html"));
			copyFileSync(join(repo, "js", "e2e", "reference", "page.js"), join(dir, "page.js"));
			copyFileSync(join(refPlayer, "moq-reference.js"), join(dir, "moq-reference.js"));
			await net.until(
				base,
				() => true,
				"the reference page server",
				() => server.log,
			);
			const page = await ctx.newPage();
			const query = new URLSearchParams({ mode: "watch", url: `http://127.0.0.2:${site}/anon`, name: "pattern.hang" });
			const start = Date.now();
			await page.goto(`${base}?${query}`);
			const decoded = await waitFor("61 frames from the reference player", 10_000, async () => {
				const d = await page.evaluate(() => ({ ...(window as unknown as { __decoded: { video: number } }).__decoded }));
				return d.video > MIN_FRAMES ? d : undefined;
			});
			const took = Date.now() - start;
			const via = console.find((line) => line.includes("connected via")) ?? "transport not logged";
			process.stdout.write(`# cell @moq/watch(no UDP)×relay-ours: ${decoded.video} frames after ${took} ms; ${via}\n`);
			assert.ok(took <= 500 + WINDOW_MS, `61 frames only after ${took} ms`);
			assert.match(via, /connected via WebSocket/);
		} catch (err) {
			throw new Error(
				`${String(err)}\n--- page console ---\n${console.slice(-40).join("\n")}\n--- relay ---\n${siteRelay.log.slice(-4000)}`,
				{ cause: err },
			);
		} finally {
			await ctx.close();
			await server.kill();
			rmSync(dir, { recursive: true, force: true });
		}
	});
});
