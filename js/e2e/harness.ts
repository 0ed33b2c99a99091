/**
 * End-to-end harness: the real relay and `hang` binaries on loopback, and Debian's Chromium driven
 * by playwright-core (no browser download). Every process and profile started here is stopped
 * and removed by `stop()`.
 *
 * Binaries come from `MOQ_BIN_DIR` (scripts/test.sh sets it to cargo's target/debug) or
 * `<repo>/target/debug`; the web app from `js/demo/dist` (`npm run build`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root. */
export const repo = resolve(here, "../..");
export const bin = process.env.MOQ_BIN_DIR ?? join(repo, "target", "debug");
export const webRoot = join(repo, "js", "demo", "dist");
/** Where tests write screenshots (git-ignored). */
export const results = join(repo, "js", "test-results");

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** A port free on both UDP and TCP (the relay serves QUIC and HTTP on the same number). */
export async function freePort(): Promise<number> {
	for (;;) {
		const udp = createSocket("udp6");
		const port = await new Promise<number>((ok, fail) => {
			udp.once("error", fail);
			udp.bind(0, "::", () => ok(udp.address().port));
		});
		udp.close();
		const tcpFree = await new Promise<boolean>((ok) => {
			const server = createServer();
			server.once("error", () => ok(false));
			server.listen(port, "::", () => server.close(() => ok(true)));
		});
		if (tcpFree) return port;
	}
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A child process whose output is kept for error messages. */
export class Proc {
	readonly child: ChildProcess;
	log = "";
	readonly exited: Promise<number | null>;

	constructor(
		readonly name: string,
		command: string,
		args: string[],
		env: Record<string, string> = {},
	) {
		if (!existsSync(command)) throw new Error(`${command} not found: build it (cargo build -p moq-relay -p hang-cli)`);
		this.child = spawn(command, args, {
			stdio: ["ignore", "pipe", "pipe"],
			env: { ...process.env, NO_COLOR: "1", ...env },
		});
		const keep = (chunk: Buffer) => {
			this.log = (this.log + chunk.toString()).slice(-20_000);
		};
		this.child.stdout?.on("data", keep);
		this.child.stderr?.on("data", keep);
		this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
	}

	running(): boolean {
		return this.child.exitCode === null && this.child.signalCode === null;
	}

	/** Send `signal`, then SIGKILL if it has not exited 5 s later (noted in the log). */
	async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
		if (!this.running()) return;
		this.child.kill(signal);
		const done = await Promise.race([this.exited.then(() => true), sleep(5000).then(() => false)]);
		if (!done) {
			this.log += `\n[harness] no exit 5 s after ${signal}: SIGKILL\n`;
			this.child.kill("SIGKILL");
			await this.exited;
		}
	}
}

/** The relay (serving the demo site), test-pattern publishers and a browser. */
export class Stack {
	relay!: Proc;
	port = 0;
	private publishers = new Map<string, Proc>();
	browser!: Browser;
	private profiles: string[] = [];

	/** Start the relay on a free port (UDP and TCP), retrying if the port was taken meanwhile. */
	static async start(): Promise<Stack> {
		if (!existsSync(join(webRoot, "watch.js"))) throw new Error(`${webRoot} is not built: npm run build`);
		const stack = new Stack();
		for (let attempt = 0; ; attempt++) {
			stack.port = await freePort();
			const addr = `[::]:${stack.port}`;
			const relay = new Proc("moq-relay", join(bin, "moq-relay"), [
				"--listen",
				addr,
				"--web-http-listen",
				addr,
				"--tls-generate",
				"localhost",
				"--web-root",
				webRoot,
				"--auth-public",
				"",
				"--log-level",
				"info",
			]);
			stack.relay = relay;
			if (await stack.healthy()) break;
			await relay.kill();
			if (attempt === 4) throw new Error(`relay did not start:\n${relay.log}`);
		}
		stack.browser = await chromium.launch({
			executablePath: CHROMIUM,
			args: [
				"--disable-gpu",
				"--no-first-run",
				"--disable-background-networking",
				"--disable-component-update",
				"--disable-sync",
				"--autoplay-policy=no-user-gesture-required",
				"--use-fake-device-for-media-stream",
				"--use-fake-ui-for-media-stream",
			],
		});
		return stack;
	}

	private async healthy(): Promise<boolean> {
		for (let i = 0; i < 100 && this.relay.running(); i++) {
			try {
				const response = await fetch(`http://127.0.0.1:${this.port}/health`);
				if (response.ok) return true;
			} catch {
				// not listening yet
			}
			await sleep(100);
		}
		return false;
	}

	/** The site's base URL. */
	get site(): string {
		return `http://localhost:${this.port}`;
	}

	/** The relay URL for clients: the `anon` scope. */
	get relayUrl(): string {
		return `http://localhost:${this.port}/anon`;
	}

	/**
	 * Start `hang publish --test-pattern` (plus `args`, e.g. `--renditions ...`) as anon/`name`,
	 * waiting until the relay announces it.
	 */
	async publishPattern(name: string, args: string[] = []): Promise<void> {
		const publisher = new Proc(`hang ${name}`, join(bin, "hang"), [
			"publish",
			"--url",
			this.relayUrl,
			"--name",
			name,
			"--test-pattern",
			...args,
		]);
		this.publishers.set(name, publisher);
		await this.waitAnnounced(`anon/${name}`, true, () => publisher.log);
	}

	/** Stop the test-pattern publisher `name`, waiting until the relay no longer lists it. */
	async unpublish(name: string): Promise<void> {
		const publisher = this.publishers.get(name);
		await publisher?.kill();
		this.publishers.delete(name);
		await this.waitAnnounced(`anon/${name}`, false, () => `--- ${publisher?.name} ---\n${publisher?.log ?? ""}`);
	}

	/** Poll the relay's /announced until `path` is (or is no longer) listed. */
	async waitAnnounced(path: string, listed: boolean, log: () => string): Promise<void> {
		for (let i = 0; i < 200; i++) {
			const body = await (await fetch(`http://127.0.0.1:${this.port}/announced`)).text();
			if (body.split("\n").includes(path) === listed) return;
			await sleep(50);
		}
		throw new Error(
			`${path} ${listed ? "never announced" : "still announced"}\n${log()}\n--- relay ---\n${this.relay.log}`,
		);
	}

	/** A fresh browser context (its own profile) with console output captured. */
	async context(): Promise<{ context: BrowserContext; console: string[] }> {
		const context = await this.browser.newContext({ viewport: { width: 1280, height: 800 } });
		const console: string[] = [];
		context.on("console", (message) => console.push(`${message.type()}: ${message.text()}`));
		context.on("weberror", (error) => console.push(`pageerror: ${error.error().message}`));
		return { context, console };
	}

	/** A temporary directory removed by stop(). */
	tempDir(): string {
		const dir = mkdtempSync(join(tmpdir(), "moq-e2e-"));
		this.profiles.push(dir);
		return dir;
	}

	/** Stop the browser and every process; remove temporary directories. */
	async stop(): Promise<void> {
		await this.browser?.close().catch(() => {});
		for (const publisher of this.publishers.values()) await publisher.kill();
		await this.relay?.kill();
		for (const dir of this.profiles) rmSync(dir, { recursive: true, force: true });
	}
}

/** Poll `check` every 100 ms until it returns a value other than undefined, or fail after `ms`. */
export async function waitFor<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
	const deadline = Date.now() + ms;
	for (;;) {
		const value = await check();
		if (value !== undefined) return value;
		if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
		await sleep(100);
	}
}

/** Where the reference peers are installed (`scripts/install-peers.sh`; rs/test-support/src/peers.rs). */
export const peersDir = process.env.MOQ_PEERS_DIR || join(process.env.HOME ?? "/root", ".cache", "moq-interop");

/** Reference `moq-relay` releases the browser is tested against. */
export type ReferenceVersion = "0.17.10" | "0.10.25";

/**
 * A reference `moq-relay` on 127.0.0.1 (QUIC and its HTTP listener on one free port), self-signed
 * for `localhost`, anonymous access everywhere; the flags are those of TESTING.md per generation.
 * Pages reach it at `http://127.0.0.1:PORT/anon` (an IP literal: `localhost` would go to [::1]).
 */
export class ReferenceRelay {
	private constructor(
		readonly version: ReferenceVersion,
		readonly proc: Proc,
		readonly port: number,
	) {}

	static async start(version: ReferenceVersion): Promise<ReferenceRelay> {
		const command = join(peersDir, `relay-${version}`, "bin", "moq-relay");
		if (!existsSync(command)) throw new Error(`${command} is missing: run scripts/install-peers.sh`);
		for (let attempt = 0; ; attempt++) {
			const port = await freePort();
			const addr = `127.0.0.1:${port}`;
			const args =
				version === "0.17.10"
					? ["--listen", addr, "--listen-tls-generate", "localhost", "--auth-public", "**"]
					: ["--server-bind", addr, "--tls-generate", "localhost", "--auth-public", ""];
			const proc = new Proc(`moq-relay ${version}`, command, [
				...args,
				"--web-http-listen",
				addr,
				"--log-level",
				"info",
			]);
			const relay = new ReferenceRelay(version, proc, port);
			if (await relay.healthy()) return relay;
			await proc.kill();
			if (attempt === 4) throw new Error(`reference relay ${version} did not start:\n${proc.log}`);
		}
	}

	private async healthy(): Promise<boolean> {
		for (let i = 0; i < 100 && this.proc.running(); i++) {
			try {
				if ((await fetch(`http://127.0.0.1:${this.port}/certificate.sha256`)).ok) return true;
			} catch {
				// not listening yet
			}
			await sleep(100);
		}
		return false;
	}

	/** The relay URL for clients (browser and `hang`): the `anon` scope. */
	get url(): string {
		return `http://127.0.0.1:${this.port}/anon`;
	}

	/** Poll its /announced until a path ending in `name` is listed. */
	async waitAnnounced(name: string, log: () => string): Promise<void> {
		for (let i = 0; i < 200; i++) {
			const body = await (await fetch(`http://127.0.0.1:${this.port}/announced`)).text();
			if (body.split(/\s+/).some((line) => line === name || line.endsWith(`/${name}`))) return;
			await sleep(50);
		}
		throw new Error(`${name} never announced at relay ${this.version}\n${log()}\n--- relay ---\n${this.proc.log}`);
	}

	async stop(): Promise<void> {
		await this.proc.kill();
	}
}

/** The first `<hang-watch>` element's stats on the page (a copy), if it has any yet. */
export async function watchStats<T>(page: import("playwright-core").Page): Promise<T | undefined> {
	return page.evaluate(() => {
		const el = document.querySelector("hang-watch") as (HTMLElement & { stats?: unknown }) | null;
		return el?.stats ? ({ ...(el.stats as object) } as T) : undefined;
	}) as Promise<T | undefined>;
}

/**
 * Fraction of distinct colours among sampled pixels of the first canvas of the first `host`
 * element (light or shadow DOM): ~0 for a blank or uniform canvas.
 */
export async function canvasVariety(page: import("playwright-core").Page, host = "hang-watch"): Promise<number> {
	return page.evaluate((host) => {
		const el = document.querySelector(host);
		const canvas = (el?.shadowRoot ?? el)?.querySelector("canvas") as HTMLCanvasElement | null;
		if (!canvas || canvas.width === 0 || canvas.height === 0) return 0;
		const copy = document.createElement("canvas");
		copy.width = canvas.width;
		copy.height = canvas.height;
		const ctx = copy.getContext("2d");
		if (!ctx) return 0;
		ctx.drawImage(canvas, 0, 0);
		const { data } = ctx.getImageData(0, 0, copy.width, copy.height);
		const colours = new Set<number>();
		let samples = 0;
		for (let i = 0; i < data.length; i += 4 * 97) {
			colours.add(((data[i] ?? 0) << 16) | ((data[i + 1] ?? 0) << 8) | (data[i + 2] ?? 0));
			samples++;
		}
		return colours.size / samples;
	}, host);
}

/** Counts decoder outputs on the page, whoever creates the decoders. Plain JS: it runs as is. */
export const COUNT_DECODED = `(() => {
	const decoded = { video: 0, audio: 0, video1At: undefined, video61At: undefined };
	Object.defineProperty(window, "__decoded", { value: decoded });
	for (const [name, kind] of [["VideoDecoder", "video"], ["AudioDecoder", "audio"]]) {
		const Base = window[name];
		if (!Base) continue;
		window[name] = class extends Base {
			constructor(init) {
				super({
					...init,
					output: (out) => {
						decoded[kind]++;
						if (kind === "video" && decoded.video === 1) decoded.video1At = performance.now();
						if (kind === "video" && decoded.video === 61) decoded.video61At = performance.now();
						init.output(out);
					},
				});
			}
		};
	}
})();`;
