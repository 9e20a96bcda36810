// The HTTP/2 limits (global `limits` and per listener): defaults, exact validation errors, and the listener's
// value winning over the global one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, formatProblem, parseConfigText } from '../../src/config/loader.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';

const parse = (text: string) => parseConfigText(text, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env: {} });

function problem(text: string): string {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems.length, 1, err.problems.map(formatProblem).join('\n'));
    return formatProblem(err.problems[0]!);
  }
  assert.fail('expected the config to be rejected');
}

const LISTENER = 'listeners:\n  - { name: web, protocol: http, port: 0, h2c: true';

test('the HTTP/2 limits default to 128 streams, 200 resets/s, 1000 control frames/s and a 60 s stream idle timeout', () => {
  const config = parse(`${LISTENER} }\n`);
  assert.equal(config.limits.h2MaxConcurrentStreams, 128);
  assert.equal(config.limits.h2MaxResetsPerSecond, 200);
  assert.equal(config.limits.h2MaxControlFramesPerSecond, 1000);
  assert.equal(config.limits.h2StreamIdleTimeout, 60_000);
});

test('a listener may set its own HTTP/2 limits', () => {
  const config = parse(`${LISTENER}, limits: { h2MaxConcurrentStreams: 10, h2StreamIdleTimeout: 5s } }\n`);
  const limits = (config.listeners[0] as { limits?: Record<string, unknown> }).limits;
  assert.deepEqual(limits, { h2MaxConcurrentStreams: 10, h2StreamIdleTimeout: 5000 });
});

test('invalid HTTP/2 limits are refused with the key and the reason', () => {
  assert.equal(
    problem(`${LISTENER} }\nlimits: { h2MaxConcurrentStreams: 0 }\n`),
    'cfg.yaml:3:35 limits.h2MaxConcurrentStreams: expected at least 1, got the number 0 [TP_CONFIG_INVALID]',
  );
  assert.equal(
    problem(`${LISTENER} }\nlimits: { h2MaxResetsPerSecond: 1.5 }\n`),
    'cfg.yaml:3:33 limits.h2MaxResetsPerSecond: expected an integer, got the number 1.5 [TP_CONFIG_INVALID]',
  );
  assert.equal(
    problem(`${LISTENER} }\nlimits: { h2StreamIdleTimeout: soon }\n`),
    'cfg.yaml:3:32 limits.h2StreamIdleTimeout: expected a duration such as 250ms, 5s, 1m, 1h, 1d or 1y, got "soon" [TP_CONFIG_INVALID]',
  );
  assert.equal(
    problem(`${LISTENER}, limits: { h2MaxControlFramesPerSecond: -1 } }\n`),
    'cfg.yaml:2:93 listeners[0].limits.h2MaxControlFramesPerSecond: expected at least 1, got the number -1 [TP_CONFIG_INVALID]',
  );
  assert.match(
    problem(`${LISTENER} }\nlimits: { h2MaxStreams: 5 }\n`),
    /limits\.h2MaxStreams: unknown key .*TP_CONFIG_UNKNOWN_KEY/,
  );
});
