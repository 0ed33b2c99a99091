/**
 * Shared by the demo pages: which relay to talk to, and small DOM helpers.
 *
 * The relay URL is `?relay=` when given, else this page's origin plus `/anon` — the demo relay
 * (scripts/demo.sh) serves the site and WebTransport on the same port, so http://localhost:8080
 * needs no configuration. For http:// relay URLs the client pins the certificate fingerprint
 * from `/certificate.sha256` (development only; production uses https:// and a real certificate).
 */

/** Query parameters of this page. */
export const params = new URLSearchParams(location.search);

/** The relay URL the pages connect to. */
export function relayUrl(): string {
	return params.get("relay") ?? `${location.origin}/anon`;
}

/**
 * The transport forced by `?transport=` ("webtransport" or "websocket"; default auto), for the
 * elements' `transport` attribute and `Connection.connect`.
 */
export function transportParam(): "auto" | "webtransport" | "websocket" {
	const t = params.get("transport");
	return t === "webtransport" || t === "websocket" ? t : "auto";
}

/** Show the relay URL in the header. */
export function showRelay(): void {
	const el = document.getElementById("relay");
	if (el) el.textContent = `relay: ${relayUrl()}`;
}

/** The element with this id, or an error naming it. */
export function byId<T extends HTMLElement>(id: string): T {
	const el = document.getElementById(id);
	if (!el) throw new Error(`missing #${id}`);
	return el as T;
}

/** A short random name, e.g. for a broadcast or a room member. */
export function randomName(prefix: string): string {
	return `${prefix}-${Math.random().toString(36).slice(2, 7)}`;
}

/** Keep this page's URL in sync with a parameter (no reload). */
export function setParam(key: string, value: string): void {
	params.set(key, value);
	history.replaceState(null, "", `${location.pathname}?${params}`);
}
