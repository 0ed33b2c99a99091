/** Registration of the custom elements. */

import { HangPublishElement } from "./publish.ts";
import { HangWatchElement } from "./watch.ts";

/**
 * Define `<hang-watch>` and `<hang-publish>` (idempotent; a no-op outside the browser).
 * Call it once before using the elements.
 */
export function registerElements(): void {
	if (typeof customElements === "undefined") return;
	if (!customElements.get("hang-watch")) customElements.define("hang-watch", HangWatchElement);
	if (!customElements.get("hang-publish")) customElements.define("hang-publish", HangPublishElement);
}

export { HangPublishElement, HangWatchElement };
