// The reference elements, configured from the query string:
//   ?mode=watch&url=http://localhost:PORT/anon&name=pattern.hang    <moq-watch> with a <canvas>
//   ?mode=publish&url=...&name=ref-camera.hang                      <moq-publish source=camera>
const params = new URLSearchParams(location.search);
const mode = params.get("mode") ?? "watch";
const element = document.createElement(mode === "publish" ? "moq-publish" : "moq-watch");
element.setAttribute("url", params.get("url") ?? "");
element.setAttribute("name", params.get("name") ?? "");
if (mode === "publish") {
	element.setAttribute("source", "camera");
	element.append(Object.assign(document.createElement("video"), { muted: true, autoplay: true }));
} else {
	// Download video whatever the canvas position; audio plays muted-free (autoplay is allowed).
	element.setAttribute("visible", "always");
	element.append(document.createElement("canvas"));
}
document.body.append(element);
