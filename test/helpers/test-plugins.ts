// Import first (before anything that loads the plugin registry): makes the test-only plugins of
// test/fixtures/plugins/test-plugins.ts known, here and in gateway processes this test spawns.
import { fileURLToPath } from 'node:url';

process.env.TURNPIKE_TEST_PLUGINS = fileURLToPath(new URL('../fixtures/plugins/test-plugins.ts', import.meta.url));
