// Issue 19's traffic-management example (versioning, deprecated, split + splitSticky, mirror, request-validation,
// forward-auth, fallback, errorPages) validates verbatim as `turnpike validate` checks it, files read (the
// OpenAPI spec, the error pages), once laid into a config with a listener and the upstreams it names:
// examples/traffic-management/turnpike.yaml. `--strict` finds nothing in it either.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, formatProblem, loadConfigFile } from '../../src/config/loader.ts';
import { lintConfig } from '../../src/config/lint.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'traffic-management', 'turnpike.yaml');

test('the traffic-management example validates verbatim, with no --strict warning', () => {
  try {
    const loaded = loadConfigFile(EXAMPLE, {
      ...LOAD_OPTIONS,
      env: { SPLIT_SECRET: 'a-split-secret-of-some-length' },
      lint: lintConfig,
    });
    assert.deepEqual(
      loaded.config.routes.map((r) => r.name),
      ['users-v1', 'users-v2', 'checkout'],
    );
    assert.deepEqual(loaded.warnings.map(formatProblem), []);
  } catch (err) {
    if (err instanceof ConfigError) assert.fail(err.problems.map(formatProblem).join('\n'));
    throw err;
  }
});
