/** Shared bits of the custom elements. */

import type { TransportChoice, Version } from "@moqx/lite";

/**
 * `HTMLElement`, or a stand-in outside the browser so importing the package in Node (unit tests,
 * server-side bundling) does not throw; the elements only work in a browser.
 */
export const ElementBase: typeof HTMLElement =
	(globalThis as { HTMLElement?: typeof HTMLElement }).HTMLElement ?? (class {} as unknown as typeof HTMLElement);

/** Parse a number attribute, `fallback` when absent or invalid. */
export function numberAttr(value: string | null, fallback: number): number {
	if (value === null || value.trim() === "") return fallback;
	const n = Number(value);
	return Number.isFinite(n) ? n : fallback;
}

/** Format a value for the stats overlay. */
export function formatStats(stats: object): string {
	return Object.entries(stats)
		.map(([k, v]) => `${k}: ${typeof v === "number" ? Math.round(v * 10) / 10 : String(v)}`)
		.join("\n");
}

/** CSS shared by the elements' shadow roots. */
export const BASE_CSS = `
:host { display: inline-block; position: relative; background: #000; color: #eee; font: 12px/1.4 system-ui, sans-serif; max-width: 100%; }
:host([hidden]) { display: none; }
.media { display: block; max-width: 100%; height: auto; margin: 0 auto; background: #000; }
.bar { display: flex; gap: 6px; align-items: center; padding: 4px 6px; background: rgba(0,0,0,.75); }
.bar button { background: #333; color: #eee; border: 1px solid #555; border-radius: 3px; padding: 2px 8px; cursor: pointer; font: inherit; }
.bar button:hover { background: #444; }
.bar .grow { flex: 1; }
.bar input[type=range] { width: 80px; }
.overlay { position: absolute; top: 6px; left: 6px; margin: 0; padding: 6px 8px; background: rgba(0,0,0,.7); border-radius: 4px; font: 11px/1.35 ui-monospace, monospace; white-space: pre; pointer-events: none; }
.badge { position: absolute; top: 6px; right: 6px; padding: 2px 8px; background: rgba(200,120,0,.85); border-radius: 10px; }
[hidden] { display: none !important; }
`;

/** A `transport` attribute ("auto", "webtransport" or "websocket") as the transport choice; undefined = auto. */
export function transportAttr(value: string | null): TransportChoice | undefined {
	const v = value?.trim();
	return v === "auto" || v === "webtransport" || v === "websocket" ? v : undefined;
}

/** A `versions` attribute (comma-separated, e.g. "moq-lite-02") as the versions to offer; undefined = the client's default. */
export function versionsAttr(value: string | null): Version[] | undefined {
	const list = (value ?? "")
		.split(",")
		.map((v) => v.trim())
		.filter((v): v is Version => v === "moq-lite-06" || v === "moq-lite-05" || v === "moq-lite-02");
	return list.length > 0 ? list : undefined;
}
