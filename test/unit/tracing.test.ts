// The tracing config (the README's example validates verbatim), the export reporter's once-a-minute line, and the
// trace ids (sampled on before any span exists, as the SDK's ratio sampler would).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import {
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import { ConfigError, parseConfigText } from '../../src/config/loader.ts';
import { PooledIdGenerator } from '../../src/observability/trace-ids.ts';
import { ReportingExporter } from '../../src/observability/tracing-export.ts';
import { PLUGIN_SCHEMAS } from '../../src/plugins/registry.ts';

const LISTENER = 'listeners: [{ name: web, protocol: http, port: 0 }]\n';

function parse(text: string) {
  return parseConfigText(LISTENER + text, 'cfg.yaml', { plugins: PLUGIN_SCHEMAS, env: {} });
}

function problems(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

/** The first ```yaml block of the README section titled `heading`. */
function readmeExample(heading: string): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf(`\n${heading}\n`));
  const block = /```yaml(?: fragment)?\n([\s\S]*?)```/.exec(section);
  assert.ok(block, `a yaml block under ${heading}`);
  return block[1]!;
}

describe('tracing config', () => {
  test("the README's Tracing example validates verbatim", () => {
    const example = readmeExample('### Tracing');
    assert.match(example, /^tracing:\n/);
    const config = parse(example);
    assert.deepEqual(config.tracing, {
      otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces', headers: {}, timeout: 10_000 },
      sampleRatio: 0.1,
      serviceName: 'turnpike',
      batchDelay: 5000,
    });
  });

  test('absent, tracing is off; an empty section takes the defaults', () => {
    assert.equal(parse('').tracing, undefined);
    assert.equal(parse('tracing: {}\n').tracing?.sampleRatio, 0.1);
  });

  test('refuses a ratio outside 0..1, a non-HTTP endpoint and unknown keys', () => {
    assert.deepEqual(
      problems('tracing: { sampleRatio: 1.5, otlp: { endpoint: "grpc://collector:4317" }, exporter: zipkin }\n').sort(),
      [
        'tracing.exporter: unknown key "exporter" (allowed here: otlp, sampleRatio, serviceName, batchDelay)',
        'tracing.otlp.endpoint: expected an http:// or https:// URL such as http://127.0.0.1:4318/v1/traces',
        'tracing.sampleRatio: expected at most 1, got the number 1.5',
      ],
    );
  });
});

/** An exporter whose every export fails, as one to an unreachable collector does. */
class FailingExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    done({ code: ExportResultCode.FAILED, error: new Error('connect ECONNREFUSED 127.0.0.1:4318') });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

describe('export reporter', () => {
  test('a failing collector is one warn line a minute, counting the failed exports', () => {
    let now = 1_000_000;
    const lines: { fields: Record<string, unknown>; message: string }[] = [];
    const exporter = new ReportingExporter(
      new FailingExporter(),
      'http://collector/v1/traces',
      (fields, message) => lines.push({ fields: fields as Record<string, unknown>, message }),
      () => now,
    );
    const results: ExportResultCode[] = [];
    const exportOnce = () => exporter.export([], (r) => results.push(r.code));
    exportOnce();
    now += 30_000;
    exportOnce();
    exportOnce();
    assert.equal(lines.length, 1);
    now += 30_000;
    exportOnce();
    assert.equal(lines.length, 2);
    assert.deepEqual(results, Array(4).fill(ExportResultCode.FAILED), 'the processor still hears of each failure');
    assert.equal(lines[0]!.fields.endpoint, 'http://collector/v1/traces');
    assert.equal(lines[0]!.fields.error, 'connect ECONNREFUSED 127.0.0.1:4318');
    assert.equal(lines[0]!.fields.failedExports, 1);
    assert.equal(lines[1]!.fields.failedExports, 3);
    assert.match(lines[0]!.message, /^trace export failed/);
  });
});

describe('trace ids', () => {
  test("a new trace's sampling word is the one the SDK's ratio sampler reads from its hex id", () => {
    const ids = new PooledIdGenerator();
    // More than a pool of ids, so refills (where the bytes start again at 0) are crossed too.
    for (let i = 0; i < 1000; i++) {
      const id = ids.generateTraceId();
      assert.match(id, /^[0-9a-f]{32}$/);
      let word = 0;
      for (let w = 0; w < 32; w += 8) word = (word ^ parseInt(id.slice(w, w + 8), 16)) >>> 0;
      assert.equal(ids.lastTraceWord, word, id);
      for (const ratio of [0.1, 0.5]) {
        const sdk = new TraceIdRatioBasedSampler(ratio).shouldSample(ROOT_CONTEXT, id).decision;
        const ours = ids.lastTraceWord < Math.floor(ratio * (2 ** 32 - 1));
        assert.equal(ours, sdk === SamplingDecision.RECORD_AND_SAMPLED, `${id} at ${ratio}`);
      }
    }
  });
});
