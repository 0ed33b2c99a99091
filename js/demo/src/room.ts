/**
 * The room page: everyone who joins room R publishes `room/R/<name>.hang` (camera, screen, or
 * nothing but chat); every member announced under `room/R` appears as a <hang-watch> tile. Text
 * chat rides on its own `chat` track in each member's broadcast — live data that is not media,
 * through the same relay: one group per message, one JSON frame `{name, text, time}`.
 *
 * `?room=` and `?name=` pre-fill the form; `&join` joins at once.
 */

import { registerElements } from "@moqx/hang";
import { type BroadcastProducer, Connection, type TrackProducer } from "@moqx/lite";
import { byId, params, randomName, relayUrl, setParam, showRelay, transportParam } from "./common.ts";

registerElements();
showRelay();

/** The chat track's name in each member's broadcast. */
const CHAT_TRACK = "chat";
/** Subscriber priority of chat: below the catalog (100), above audio (80) and video (60). */
const CHAT_PRIORITY = 90;
/** Longest message accepted from the wire or the input. */
const MAX_MESSAGE = 1000;

interface Message {
	name: string;
	text: string;
	time: number;
}

const joinForm = byId<HTMLFormElement>("join");
const roomInput = byId<HTMLInputElement>("room");
const nameInput = byId<HTMLInputElement>("name");
const source = byId<HTMLSelectElement>("source");
const tiles = byId<HTMLDivElement>("tiles");
const messages = byId<HTMLOListElement>("messages");
const chatForm = byId<HTMLFormElement>("chat");
const text = byId<HTMLInputElement>("text");

roomInput.value = params.get("room") ?? "demo";
nameInput.value = params.get("name") ?? randomName("guest");
source.value = params.get("source") ?? "camera";

let chat: TrackProducer | undefined;
let me = "";

function show(message: Message, mine = false): void {
	const li = document.createElement("li");
	const who = document.createElement("b");
	who.textContent = mine ? `${message.name} (you)` : message.name;
	li.append(who, document.createTextNode(message.text));
	li.title = new Date(message.time).toLocaleTimeString();
	messages.append(li);
	messages.scrollTop = messages.scrollHeight;
}

function parse(payload: Uint8Array): Message | undefined {
	// A member's frame may be up to the client's frame limit (MiBs); chat messages are short.
	if (payload.byteLength > MAX_MESSAGE * 4 + 256) return undefined;
	try {
		const value = JSON.parse(new TextDecoder().decode(payload)) as Partial<Message>;
		if (typeof value.name !== "string" || typeof value.text !== "string") return undefined;
		return {
			name: value.name.slice(0, 64),
			text: value.text.slice(0, MAX_MESSAGE),
			time: Number(value.time) || Date.now(),
		};
	} catch {
		return undefined;
	}
}

/** Our chat track lives in whichever broadcast the publisher currently has (it restarts on reconnect). */
function attachChat(
	broadcast: BroadcastProducer | undefined,
	element: HTMLElement & { setCatalogSection?: (k: string, v: unknown) => void },
): void {
	if (!broadcast) return;
	chat = broadcast.createTrack(CHAT_TRACK, { priority: CHAT_PRIORITY });
	element.setCatalogSection?.("chat", { track: CHAT_TRACK });
	text.disabled = false;
	(chatForm.querySelector("button") as HTMLButtonElement).disabled = false;
}

function tile(path: string, label: string): HTMLElement {
	const div = document.createElement("div");
	div.className = "tile";
	div.dataset.path = path;
	const name = document.createElement("div");
	name.className = "name";
	name.textContent = label;
	div.append(name);
	tiles.append(div);
	return div;
}

/** Read one member's chat until they leave. */
async function follow(connection: Connection, path: string, gone: AbortSignal): Promise<void> {
	const track = connection.consume(path).subscribe(CHAT_TRACK, { priority: CHAT_PRIORITY });
	gone.addEventListener("abort", () => track.close());
	try {
		for (;;) {
			const group = await track.nextGroup();
			if (!group) return;
			const frame = await group.readFrame();
			group.close();
			const message = frame && parse(frame.payload);
			if (message) show(message);
		}
	} catch {
		// The member left or has no chat track (e.g. a plain publisher under the same prefix).
	}
}

async function join(room: string, name: string): Promise<void> {
	setParam("room", room);
	setParam("name", name);
	me = name;
	joinForm.querySelector("button")?.setAttribute("disabled", "");
	const prefix = `room/${room}`;
	const mine = `${prefix}/${name}.hang`;

	const publisher = document.createElement("hang-publish") as HTMLElement & {
		broadcast?: BroadcastProducer;
		setCatalogSection?: (k: string, v: unknown) => void;
	};
	publisher.addEventListener("broadcast", (event) =>
		attachChat((event as CustomEvent<BroadcastProducer>).detail, publisher),
	);
	publisher.setAttribute("url", relayUrl());
	publisher.setAttribute("transport", transportParam());
	publisher.setAttribute("path", mine);
	if (source.value === "none") {
		publisher.setAttribute("source", "none");
		publisher.setAttribute("noaudio", "");
	} else {
		publisher.setAttribute("source", source.value);
	}
	tile(mine, `${name} (you)`).append(publisher);
	if (!chat) attachChat(publisher.broadcast, publisher);

	const members = new Map<string, { element: HTMLElement; gone: AbortController }>();
	for (;;) {
		try {
			const connection = await Connection.connect(relayUrl(), { transport: transportParam() });
			for await (const { path, active } of connection.announced(prefix)) {
				if (path === mine || !path.endsWith(".hang")) continue;
				const member = members.get(path);
				if (!active) {
					member?.element.remove();
					member?.gone.abort();
					members.delete(path);
					continue;
				}
				if (member) continue;
				const label = path.slice(prefix.length + 1, -".hang".length);
				const element = tile(path, label);
				const watch = document.createElement("hang-watch");
				watch.setAttribute("url", relayUrl());
				watch.setAttribute("transport", transportParam());
				watch.setAttribute("path", path);
				watch.setAttribute("latency", "200");
				element.append(watch);
				const gone = new AbortController();
				members.set(path, { element, gone });
				void follow(connection, path, gone.signal);
			}
		} catch (err) {
			console.warn("room: discovery failed, retrying", err);
		}
		for (const member of members.values()) {
			member.element.remove();
			member.gone.abort();
		}
		members.clear();
		await new Promise((resolve) => setTimeout(resolve, 2000));
	}
}

joinForm.addEventListener("submit", (event) => {
	event.preventDefault();
	const room = roomInput.value.trim().replace(/[/\s]+/g, "-");
	const name = nameInput.value.trim().replace(/[/\s]+/g, "-");
	if (room && name) void join(room, name);
});

chatForm.addEventListener("submit", (event) => {
	event.preventDefault();
	const value = text.value.trim().slice(0, MAX_MESSAGE);
	if (!value || !chat) return;
	const message: Message = { name: me, text: value, time: Date.now() };
	chat.writeFrame(new TextEncoder().encode(JSON.stringify(message)));
	show(message, true);
	text.value = "";
});

if (params.has("join")) joinForm.requestSubmit();
