/**
 * The publish page: camera+microphone or screen → <hang-publish> → the relay, under the broadcast
 * path in the form (`?path=` or a random `*.hang` name), with a link to watch it. `?renditions=`
 * (e.g. `640x360@1200,320x180@300`) publishes those simulcast renditions.
 */
import { registerElements } from "@moqx/hang";
import { byId, params, randomName, relayUrl, setParam, showRelay, transportParam } from "./common.ts";

registerElements();
showRelay();

const form = byId<HTMLFormElement>("form");
const pathInput = byId<HTMLInputElement>("path");
const source = byId<HTMLSelectElement>("source");
const link = byId<HTMLAnchorElement>("watch-link");
const publisher = byId<HTMLElement>("publisher");

pathInput.value = params.get("path") ?? `${randomName("cam")}.hang`;
source.value = params.get("source") ?? "camera";

function start(): void {
	const path = pathInput.value.trim();
	if (!path) return;
	setParam("path", path);
	setParam("source", source.value);
	publisher.replaceChildren();
	const element = document.createElement("hang-publish");
	element.setAttribute("url", relayUrl());
	element.setAttribute("path", path);
	element.setAttribute("source", source.value);
	const versions = params.get("versions");
	if (versions) element.setAttribute("versions", versions);
	const renditions = params.get("renditions");
	if (renditions) element.setAttribute("renditions", renditions);
	element.setAttribute("transport", transportParam());
	publisher.append(element);
	link.href = `./?path=${encodeURIComponent(path)}`;
	link.textContent = `watch ${path} ↗`;
	link.hidden = false;
}

form.addEventListener("submit", (event) => {
	event.preventDefault();
	start();
});
if (params.has("autostart")) start();
