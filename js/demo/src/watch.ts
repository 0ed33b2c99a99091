/**
 * The watch page: live broadcasts from the relay's announcements on the left, the chosen one
 * playing in a <hang-watch> element. `?path=` picks a broadcast; without it the first live one plays.
 */

import { registerElements } from "@moqx/hang";
import { Connection } from "@moqx/lite";
import { byId, params, relayUrl, setParam, showRelay, transportParam } from "./common.ts";

registerElements();
showRelay();

const list = byId<HTMLUListElement>("broadcasts");
const player = byId<HTMLElement>("player");
const live = new Set<string>();
let current = params.get("path");

function play(path: string): void {
	current = path;
	setParam("path", path);
	let watch = player.querySelector("hang-watch");
	if (!watch) {
		player.replaceChildren();
		watch = document.createElement("hang-watch");
		watch.setAttribute("latency", params.get("latency") ?? "200");
		if (params.has("muted")) watch.setAttribute("muted", "");
		const versions = params.get("versions");
		if (versions) watch.setAttribute("versions", versions);
		watch.setAttribute("transport", transportParam());
		player.append(watch);
	}
	watch.setAttribute("url", relayUrl());
	watch.setAttribute("path", path);
	render();
}

function render(): void {
	if (live.size === 0) {
		list.innerHTML = `<li class="empty">nothing live yet</li>`;
		return;
	}
	list.replaceChildren(
		...[...live].sort().map((path) => {
			const a = document.createElement("a");
			a.href = `?path=${encodeURIComponent(path)}`;
			a.textContent = path;
			if (path === current) a.className = "active";
			a.addEventListener("click", (event) => {
				event.preventDefault();
				play(path);
			});
			const li = document.createElement("li");
			li.append(a);
			return li;
		}),
	);
}

async function discover(): Promise<void> {
	for (;;) {
		try {
			const connection = await Connection.connect(relayUrl(), { transport: transportParam() });
			live.clear();
			render();
			for await (const { path, active } of connection.announced("")) {
				if (!path.endsWith(".hang")) continue;
				if (active) live.add(path);
				else live.delete(path);
				if (active && !current) play(path);
				render();
			}
		} catch (err) {
			list.innerHTML = `<li class="empty">relay unreachable: ${String(err)}</li>`;
		}
		await new Promise((resolve) => setTimeout(resolve, 2000));
	}
}

if (current) play(current);
void discover();
