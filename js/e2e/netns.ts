/**
 * A network namespace of a test's own, with links slower than the stream: packets leaving a
 * shaped address (`127.0.0.<host>`, the relay as a viewer reaches it) are held to a rate by an
 * HTB class with a drop-tail queue; everything else on the namespace's loopback is unshaped.
 * Needs root (ip, tc). {@link ShapedNamespace.remove} kills what runs inside and deletes it.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { CHROMIUM } from "./harness.ts";

function ip(...args: string[]): void {
	execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** See the module documentation. */
export class ShapedNamespace {
	/** The namespace's name. */
	readonly name: string;
	#wrappers: string[] = [];

	/** Create namespace `name` with its loopback up at a real link's MTU and unshaped. */
	constructor(name: string) {
		this.name = name;
		ip("netns", "add", name);
		// A real link's MTU: lo's 64 KB segments would not fit the small queues.
		this.exec("ip", "link", "set", "lo", "up", "mtu", "1500");
		this.exec("tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "1");
		this.exec("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", "1:1", "htb", "rate", "20gbit");
	}

	/** Run `args` inside the namespace. */
	exec(...args: string[]): void {
		ip("netns", "exec", this.name, ...args);
	}

	/**
	 * Add address `127.0.0.<host>`, whose outgoing packets are held to `mbit` Mbit/s with a queue
	 * of `queueBytes` (e.g. 200 ms at that rate).
	 */
	shape(host: number, mbit: number, queueBytes: number): void {
		this.exec("ip", "addr", "add", `127.0.0.${host}/8`, "dev", "lo");
		const classid = `1:${host}0`;
		this.exec("tc", "class", "add", "dev", "lo", "parent", "1:", "classid", classid, ...this.#rate(mbit));
		this.exec(
			"tc",
			"qdisc",
			"add",
			"dev",
			"lo",
			"parent",
			classid,
			"handle",
			`${host}0:`,
			"bfifo",
			"limit",
			String(queueBytes),
		);
		this.exec(
			"tc",
			"filter",
			"add",
			"dev",
			"lo",
			"parent",
			"1:",
			"protocol",
			"ip",
			"prio",
			"1",
			"u32",
			"match",
			"ip",
			"src",
			`127.0.0.${host}/32`,
			"flowid",
			classid,
		);
	}

	/** Change the rate of `127.0.0.<host>` (its queue keeps its size in bytes, as a router's does). */
	setRate(host: number, mbit: number): void {
		this.exec("tc", "class", "change", "dev", "lo", "parent", "1:", "classid", `1:${host}0`, ...this.#rate(mbit));
	}

	#rate(mbit: number): string[] {
		return ["htb", "rate", `${mbit}mbit`, "ceil", `${mbit}mbit`, "burst", "16k"];
	}

	/** An executable that runs `program` inside the namespace (for launchers that take a path). */
	wrapper(program: string): string {
		const dir = mkdtempSync(join(tmpdir(), "netns-"));
		this.#wrappers.push(dir);
		const path = join(dir, "in-netns");
		writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${this.name} ${program} "$@"\n`);
		chmodSync(path, 0o755);
		return path;
	}

	/** Headless Chromium inside the namespace (playwright drives it over a pipe, through a wrapper). */
	launchChromium(): Promise<Browser> {
		return chromium.launch({
			executablePath: this.wrapper(CHROMIUM),
			args: ["--disable-gpu", "--no-first-run", "--autoplay-policy=no-user-gesture-required"],
		});
	}

	/** Kill everything inside the namespace, delete it and the wrappers. Never throws. */
	remove(): void {
		try {
			const pids = execFileSync("ip", ["netns", "pids", this.name]).toString().split(/\s+/).filter(Boolean);
			for (const pid of pids) {
				try {
					process.kill(Number(pid), "SIGKILL");
				} catch {
					// already gone
				}
			}
		} catch {
			// no namespace
		}
		try {
			ip("netns", "del", this.name);
		} catch {
			// no namespace
		}
		for (const dir of this.#wrappers) rmSync(dir, { recursive: true, force: true });
	}
}
