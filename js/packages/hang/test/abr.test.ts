import assert from "node:assert/strict";
import { test } from "node:test";
import { Abr, DEFAULT_ABR_CONFIG, type Rendition } from "../src/abr.ts";

const MBIT = 1_000_000;

function simulcast(): Rendition[] {
	return [
		{ name: "hd", bitrate: 3 * MBIT },
		{ name: "sd", bitrate: 800_000 },
	];
}

/** Replay `trace` (one estimate per 100 ms) and return the rendition after every step. */
function replay(abr: Abr, trace: readonly number[]): string[] {
	return trace.map((estimate, i) => {
		abr.update(100 * i, estimate, false);
		return abr.current.name;
	});
}

/**
 * A trace of `seconds` at `rate`, with ±`jitter` noise from a fixed xorshift64 sequence (the same
 * traces as the Rust tests of `rs/hang/src/abr.rs`).
 */
function steady(rate: number, seconds: number, jitter: number): number[] {
	const mask = (1n << 64n) - 1n;
	let state = 0x2545_f491_4f6c_dd1dn;
	const out: number[] = [];
	for (let i = 0; i < seconds * 10; i++) {
		state ^= (state << 13n) & mask;
		state ^= state >> 7n;
		state ^= (state << 17n) & mask;
		const unit = Number(state % 2001n) / 1000 - 1; // -1..1
		out.push(Math.trunc(rate * (1 + jitter * unit)));
	}
	return out;
}

/** How many times the choice changes along `chosen`. */
function flips(chosen: readonly string[]): number {
	return chosen.filter((c, i) => i > 0 && c !== chosen[i - 1]).length;
}

test("abr starts with the best fit, or the lowest", () => {
	assert.equal(new Abr(simulcast(), {}, 10 * MBIT).current.name, "hd");
	assert.equal(new Abr(simulcast(), {}, 2 * MBIT).current.name, "sd");
	assert.equal(new Abr(simulcast()).current.name, "sd");
	assert.equal(new Abr([]).current.bitrate, 0);
	assert.deepEqual(
		new Abr(simulcast()).renditions.map((r) => r.name),
		["sd", "hd"],
		"sorted by bitrate",
	);
	assert.deepEqual(new Abr(simulcast(), { upAfterMs: 1 }).config, { ...DEFAULT_ABR_CONFIG, upAfterMs: 1 });
});

test("abr without an estimate does nothing", () => {
	const abr = new Abr(simulcast(), {}, 10 * MBIT);
	assert.equal(abr.update(0, undefined, true), undefined);
	assert.equal(abr.current.name, "hd");
});

test("abr leaves a link that drops at the first low estimate", () => {
	const abr = new Abr(simulcast(), {}, 10 * MBIT);
	const chosen = replay(abr, [...steady(10 * MBIT, 5, 0.1), ...steady(2 * MBIT, 5, 0.1)]);
	assert.ok(chosen.slice(0, 50).every((c) => c === "hd"));
	assert.equal(chosen[50], "sd", "down at the first low estimate");
	assert.ok(chosen.slice(50).every((c) => c === "sd"));
	assert.equal(abr.switches, 1);
});

test("abr goes up only after a sustained better estimate and the hold", () => {
	const abr = new Abr(simulcast(), {}, 10 * MBIT);
	// Down at t=0, then a better link from t=3 s.
	const chosen = replay(abr, [...steady(2 * MBIT, 3, 0.1), ...steady(10 * MBIT, 20, 0.1)]);
	const upAtMs = (chosen.lastIndexOf("sd") + 1) * 100;
	// Held for 8 s after the down switch at 0 s; 4 s of fitting are needed on top of the 3 s.
	assert.ok(upAtMs >= DEFAULT_ABR_CONFIG.holdAfterDownMs, `up at ${upAtMs} ms`);
	assert.ok(upAtMs <= 13_000, `up within 10 s of the better link: ${upAtMs} ms`);
	assert.equal(chosen.at(-1), "hd");
	assert.equal(abr.switches, 2);
});

test("abr never switches on an estimate between the thresholds", () => {
	// 3 Mbit/s needs ≤ 90 % to stay and ≤ 70 % to be taken: estimates of 3.5–4.2 Mbit/s keep
	// whichever rendition is current.
	for (const start of [10 * MBIT, 2 * MBIT]) {
		const abr = new Abr(simulcast(), {}, start);
		const first = abr.current.name;
		const chosen = replay(abr, steady(3_850_000, 120, 0.08));
		assert.ok(
			chosen.every((c) => c === first),
			`from ${first}`,
		);
		assert.equal(abr.switches, 0);
	}
});

test("abr does not oscillate on a noisy estimate around the up threshold", () => {
	// Hovering around 4.3 Mbit/s (3 Mbit/s = 70 % of it) with ±30 % noise: breaks in the fitting
	// streak keep resetting the 4 s timer, so it does not flip back and forth.
	const abr = new Abr(simulcast(), {}, 2 * MBIT);
	replay(abr, steady(4_300_000, 120, 0.3));
	assert.ok(abr.switches <= 2, `${abr.switches} switches in 2 minutes`);
});

test("abr on a link alternating 1 and 4.8 Mbit/s every 20 s switches at most once per period", () => {
	const abr = new Abr(simulcast(), {}, 4 * MBIT);
	const trace: number[] = [];
	for (let period = 0; period < 6; period++) trace.push(...steady(period % 2 === 0 ? MBIT : 4_800_000, 20, 0.05));
	const chosen = replay(abr, trace);
	for (let period = 0; period < 6; period++) {
		const slice = chosen.slice(period * 200, (period + 1) * 200);
		assert.equal(slice.at(-1), period % 2 === 0 ? "sd" : "hd", `end of period ${period}`);
		assert.ok(flips(slice) <= 1, `period ${period}: ${flips(slice)} switches`);
	}
	assert.ok(abr.switches <= 6, `${abr.switches} switches`);
});

test("abr steps down when behind even if the estimate says it fits", () => {
	const abr = new Abr(simulcast(), {}, 10 * MBIT);
	assert.equal(abr.update(0, 10 * MBIT, true), "sd");
	// Already the lowest: behind changes nothing.
	assert.equal(abr.update(100, 10 * MBIT, true), undefined);
	// And it does not go back up while held.
	for (let i = 2; i < 70; i++) abr.update(100 * i, 10 * MBIT, false);
	assert.equal(abr.current.name, "sd");
	// Nor while behind, however long the estimate fits.
	for (let i = 70; i < 200; i++) abr.update(100 * i, 10 * MBIT, true);
	assert.equal(abr.current.name, "sd");
	assert.equal(abr.switches, 1);
});

test("abr behind with three renditions takes one step, or the best fit if lower", () => {
	const three = [
		{ name: "low", bitrate: 300_000 },
		{ name: "mid", bitrate: 1_200_000 },
		{ name: "high", bitrate: 3 * MBIT },
	];
	assert.equal(new Abr(three, {}, 20 * MBIT).update(0, 20 * MBIT, true), "mid");
	assert.equal(new Abr(three, {}, 20 * MBIT).update(0, MBIT, true), "low");
});

test("abr backs off after failed attempts and forgets them after a success", () => {
	// A probe that keeps promising 10 Mbit/s; each attempt at "hd" falls behind at once.
	const abr = new Abr(simulcast());
	const attempts: number[] = [];
	let now = 0;
	while (now < 120_000) {
		now += 100;
		abr.update(now, 10 * MBIT, false);
		if (abr.current.name === "hd") {
			attempts.push(Math.floor(now / 1000));
			now += 100;
			abr.update(now, 10 * MBIT, true);
		}
	}
	assert.ok(attempts.length <= 4, `attempts at ${attempts}`);
	const gaps = attempts.slice(1).map((t, i) => t - (attempts[i] ?? 0));
	assert.ok(
		gaps.every((g, i) => i === 0 || g > (gaps[i - 1] ?? 0)),
		`growing holds: ${attempts}`,
	);

	// Success: past the probation the count is cleared, so a later drop holds the base 8 s only.
	const ok = new Abr(simulcast());
	let t = 0;
	const step = (estimate: number) => {
		t += 100;
		ok.update(t, estimate, false);
	};
	for (let i = 0; i < 200; i++) step(10 * MBIT);
	assert.equal(ok.current.name, "hd");
	step(MBIT);
	assert.equal(ok.current.name, "sd");
	const down = t;
	while (ok.current.name === "sd") step(10 * MBIT);
	assert.ok(t - down <= DEFAULT_ABR_CONFIG.holdAfterDownMs + DEFAULT_ABR_CONFIG.upAfterMs + 200, `${t - down} ms`);
});

test("abr with three renditions moves up one step at a time", () => {
	const abr = new Abr(
		[
			{ name: "low", bitrate: 300_000 },
			{ name: "mid", bitrate: 1_200_000 },
			{ name: "high", bitrate: 3 * MBIT },
		],
		{},
	);
	const chosen = replay(abr, steady(20 * MBIT, 20, 0.05));
	const firstMid = chosen.indexOf("mid");
	const firstHigh = chosen.indexOf("high");
	assert.ok(firstMid >= 40 && firstHigh >= firstMid + 40, `${firstMid} ${firstHigh}`);
	assert.ok(abr.pin("low"));
	assert.equal(abr.current.name, "low");
	assert.ok(!abr.pin("none"));
	assert.equal(abr.current.name, "low");
});
