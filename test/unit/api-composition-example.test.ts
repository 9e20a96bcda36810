// Issue 18's API composition example (aggregate, xml + json-transform, grpcTranscode, soap, bridge) validates
// verbatim as `turnpike validate` checks it, files read (the proto), once laid into a config with a listener and
// the upstreams it names: examples/api-composition/turnpike.yaml. `--strict` finds nothing in it either: the
// upstreams only an aggregate's calls or a grpcTranscode name count as used.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, formatProblem, loadConfigFile } from '../../src/config/loader.ts';
import { lintConfig } from '../../src/config/lint.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'api-composition', 'turnpike.yaml');

test('the API composition example validates verbatim, with no --strict warning', () => {
  try {
    const loaded = loadConfigFile(EXAMPLE, { ...LOAD_OPTIONS, lint: lintConfig });
    assert.deepEqual(
      [...loaded.config.routes.map((r) => r.name)],
      ['profile', 'legacy-orders', 'greeter', 'quotes-soap', 'ticker', 'orders-ws'],
    );
    assert.deepEqual(loaded.warnings.map(formatProblem), []);
  } catch (err) {
    if (err instanceof ConfigError) assert.fail(err.problems.map(formatProblem).join('\n'));
    throw err;
  }
});
