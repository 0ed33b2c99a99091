// Bundled by scripts/install-peers.sh (esbuild) into the npm peer's cache directory as
// moq-reference.js: the public reference player and publisher as custom elements.
import "@moq/watch/element";
import "@moq/publish/element";
