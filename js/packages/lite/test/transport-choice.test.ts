/** Transport choice: the WebSocket subprotocol offer, what the server's pick means, URLs, browsers without usable WebTransport. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseWsProtocol, webSocketProtocols, webTransportUnusable, wsUrl } from "../src/index.ts";

describe("WebSocket subprotocols", () => {
	it("offers qmux-01 then qmux-00 for each moq version, most preferred first, then the bare ones", () => {
		assert.deepEqual(webSocketProtocols(["moq-lite-06", "moq-lite-05", "moq-lite-02"]), [
			"qmux-01.moq-lite-06",
			"qmux-00.moq-lite-06",
			"qmux-01.moq-lite-05",
			"qmux-00.moq-lite-05",
			"qmux-01",
			"qmux-00",
		]);
		// Order follows our preference, not the caller's; without lite-02 no bare fallback.
		assert.deepEqual(webSocketProtocols(["moq-lite-05", "moq-lite-06"]), [
			"qmux-01.moq-lite-06",
			"qmux-00.moq-lite-06",
			"qmux-01.moq-lite-05",
			"qmux-00.moq-lite-05",
		]);
		assert.deepEqual(webSocketProtocols(["moq-lite-02"]), ["qmux-01", "qmux-00"]);
	});

	it("the chosen subprotocol fixes the qmux version and the moq ALPN", () => {
		assert.deepEqual(parseWsProtocol("qmux-01.moq-lite-06"), { version: "qmux-01", alpn: "moq-lite-06" });
		assert.deepEqual(parseWsProtocol("qmux-00.moq-lite-05"), { version: "qmux-00", alpn: "moq-lite-05" });
		assert.deepEqual(parseWsProtocol("qmux-01"), { version: "qmux-01", alpn: "" });
		assert.equal(parseWsProtocol("webtransport"), undefined);
		assert.equal(parseWsProtocol(""), undefined);
		assert.equal(parseWsProtocol("qmux-01."), undefined);
		assert.equal(parseWsProtocol("qmux-02.moq-lite-05"), undefined);
	});

	it("maps http(s) to ws(s) keeping host, port, path and query", () => {
		assert.equal(wsUrl(new URL("http://localhost:4443/anon?jwt=x")).href, "ws://localhost:4443/anon?jwt=x");
		assert.equal(wsUrl(new URL("https://relay.example/room/a#frag")).href, "wss://relay.example/room/a");
		assert.throws(() => wsUrl(new URL("moqt://relay.example/")));
	});
});

describe("WebTransport usability by browser", () => {
	it("is unusable without WebTransport, in Safari (and every iOS browser) and in Firefox before 153", () => {
		const g = globalThis as { WebTransport?: unknown };
		const saved = g.WebTransport;
		try {
			delete g.WebTransport;
			assert.equal(webTransportUnusable("Mozilla/5.0 Chrome/140.0 Safari/537.36"), true);
			g.WebTransport = class {};
			const chrome =
				"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36";
			const edge = `${chrome} Edg/140.0`;
			const safari = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Safari/605.1.15";
			const chromeIos =
				"Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/140.0 Mobile/15E148 Safari/604.1";
			assert.equal(webTransportUnusable(chrome), false);
			assert.equal(webTransportUnusable(edge), false);
			assert.equal(webTransportUnusable(safari), true);
			assert.equal(webTransportUnusable(chromeIos), true);
			assert.equal(webTransportUnusable("Mozilla/5.0 (X11; rv:152.0) Gecko/20100101 Firefox/152.0"), true);
			assert.equal(webTransportUnusable("Mozilla/5.0 (X11; rv:153.0) Gecko/20100101 Firefox/153.0"), false);
		} finally {
			if (saved === undefined) delete g.WebTransport;
			else g.WebTransport = saved;
		}
	});
});
