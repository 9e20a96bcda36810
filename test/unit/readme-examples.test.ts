// The README's config examples validate verbatim. The rule, by the fence's info string:
//   ```yaml            a complete config: validated as it is.
//   ```yaml fragment   one section of a config: its top-level keys are laid over a minimal config (one http
//                      listener), and every upstream it names without defining gets a stub target.
//   ```yaml not-config YAML that is not a Turnpike config (Kubernetes, Prometheus...): skipped.
// Any other word after `yaml` fails, so a typo cannot skip a block. Blocks are checked as `turnpike validate
// --no-files` does (the README names certificate files nobody has), with every `${VAR}` the README uses set.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { ConfigError, formatProblem, loadConfigText } from '../../src/config/loader.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';

const README = join(import.meta.dirname, '..', '..', 'README.md');

interface Block {
  readonly line: number;
  readonly kind: string;
  readonly text: string;
}

/** Every ```yaml block, indented ones (in list items) too, without their indentation. */
function yamlBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```yaml(?:\s+(\S+))?\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && lines[j]!.trimEnd() !== `${indent}\`\`\``; j++)
      body.push(lines[j]!.slice(indent.length));
    assert.ok(j < lines.length, `README.md:${i + 1}: the yaml block is not closed`);
    blocks.push({ line: i + 1, kind: open[2] ?? 'config', text: body.join('\n') + '\n' });
    i = j;
  }
  return blocks;
}

const MINIMAL = { listeners: [{ name: 'web', protocol: 'http', port: 8080 }] };

/** A fragment laid over the minimal config, with a stub for each upstream it names but does not define. */
function completed(text: string): string {
  const fragment = (parse(text) ?? {}) as Record<string, unknown>;
  const config: Record<string, unknown> = { ...MINIMAL, ...fragment };
  const upstreams = { ...((fragment.upstreams as Record<string, unknown>) ?? {}) };
  for (const r of (config.routes as { upstream?: string }[] | undefined) ?? [])
    if (r.upstream !== undefined && !(r.upstream in upstreams))
      upstreams[r.upstream] = { targets: [{ url: 'http://127.0.0.1:9000' }] };
  if (Object.keys(upstreams).length > 0) config.upstreams = upstreams;
  return stringify(config);
}

/** What `turnpike validate --no-files` says of each config block of `markdown` (empty: all valid). */
function problemsOf(markdown: string): string[] {
  const blocks = yamlBlocks(markdown);
  // Every variable the markdown uses, set as CI would (long enough for tokens, keys and secrets).
  const env = Object.fromEntries(
    [...markdown.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => [
      m[1]!,
      `${m[1]!.toLowerCase()}-0123456789abcdef`,
    ]),
  );
  const failures: string[] = [];
  for (const b of blocks) {
    if (!['config', 'fragment', 'not-config'].includes(b.kind)) {
      failures.push(`line ${b.line}: unknown kind "yaml ${b.kind}" (config, fragment or not-config)`);
      continue;
    }
    if (b.kind === 'not-config') continue;
    const text = b.kind === 'fragment' ? completed(b.text) : b.text;
    try {
      loadConfigText(text, `README.md:${b.line}`, { ...LOAD_OPTIONS, env, readFiles: false });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      failures.push(...err.problems.map((p) => `${b.kind} at line ${b.line}: ${formatProblem(p)}`));
    }
  }
  return failures;
}

test('every yaml example of README.md validates verbatim (fragments over a minimal config)', () => {
  const readme = readFileSync(README, 'utf8');
  assert.ok(yamlBlocks(readme).length >= 10, 'the yaml blocks of README.md are not found');
  assert.deepEqual(problemsOf(readme), []);
});

test('the rule: complete configs as they are, fragments completed, non-config skipped, unknown kinds refused', () => {
  const fence = (kind: string, text: string, indent = '') =>
    [`${indent}\`\`\`${kind}`, ...text.split('\n').map((l) => indent + l), `${indent}\`\`\``].join('\n');
  const md = [
    fence('yaml', 'listeners: [{ name: web, protocol: http, port: 8080 }]'),
    fence('yaml fragment', 'routes: [{ match: { path: /a }, upstream: app }]', '  '),
    fence('yaml not-config', 'apiVersion: v1\nkind: Service'),
  ].join('\n\ntext\n\n');
  assert.deepEqual(problemsOf(md), []);
  const bad = problemsOf(
    [
      fence('yaml', 'routes: [{ match: { path: /a }, respond: {} }]'),
      fence('yaml fragment', 'limits: { headerTimeout: 10 }'),
      fence('yaml fragmnet', 'x: 1'),
    ].join('\n'),
  );
  assert.equal(bad.length, 3, bad.join('\n'));
  assert.match(bad[0]!, /^config at line 1: .*listeners.*TP_CONFIG_INVALID/);
  assert.match(bad[1]!, /^fragment at line 4: .*limits\.headerTimeout: a bare number/);
  assert.match(bad[2]!, /unknown kind "yaml fragmnet"/);
});
