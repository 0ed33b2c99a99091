/**
 * Side-effect entry: importing this module registers `<hang-watch>` and `<hang-publish>`.
 * (`@moqx/hang` itself registers nothing; call {@link registerElements} from it instead.)
 */

import { registerElements } from "./element/index.ts";

registerElements();

export { HangPublishElement, HangWatchElement, registerElements } from "./element/index.ts";
