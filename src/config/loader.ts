// Reads a YAML or JSON config, expands the environment, validates it, and resolves cross-references.
// Every error names the file, line and column, the key path and what was expected.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { TurnpikeError, type ErrorCode } from '../errors.ts';
import { expandEnv } from './env.ts';
import { buildConfigSchema, type Config, type PluginSchemas } from './schema.ts';

export interface ConfigProblem {
  readonly code: ErrorCode;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends TurnpikeError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems[0]?.code ?? 'TP_CONFIG_INVALID', problems.map(formatProblem).join('\n'));
    this.problems = problems;
    this.name = 'ConfigError';
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.column}`;
  return `${where} ${p.path ? p.path + ': ' : ''}${p.message} [${p.code}]`;
}

/** `routes[1].plugins[0].rewrite` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

export interface LoadOptions {
  readonly plugins: PluginSchemas;
  readonly env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  readonly file: string;
  readonly config: Config;
}

export function loadConfigFile(file: string, options: LoadOptions): LoadedConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError([{ code: 'TP_CONFIG_NOT_FOUND', file, line: 0, column: 0, path: '', message: `cannot read config: ${reason}` }]);
  }
  return { file: path, config: parseConfigText(text, file, options) };
}

export function parseConfigText(text: string, file: string, options: LoadOptions): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => lineCounter.linePos(offset);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = at(e.pos[0]);
        return { code: 'TP_CONFIG_SYNTAX', file, line: pos.line, column: pos.col, path: '', message: e.message.split('\n')[0]! };
      }),
    );
  }
  const unset = expandEnv(doc, options.env ?? process.env);
  if (unset.length > 0) {
    throw new ConfigError(
      unset.map((u) => {
        const pos = at(u.offset);
        return {
          code: 'TP_CONFIG_ENV_UNSET',
          file, line: pos.line, column: pos.col,
          path: pathOfOffset(doc, u.offset),
          message: `environment variable ${u.name} is not set and has no default (write \${${u.name}:-default} to give one)`,
        };
      }),
    );
  }
  const raw = doc.toJS() ?? {};
  const result = buildConfigSchema(options.plugins).safeParse(raw);
  if (!result.success) throw new ConfigError(result.error.issues.map((issue) => problemFromIssue(issue, doc, lineCounter, file)));
  const config = result.data as unknown as Config;
  const refProblems = checkReferences(config, doc, lineCounter, file);
  if (refProblems.length > 0) throw new ConfigError(refProblems);
  return config;
}

function problemFromIssue(issue: z.core.$ZodIssue, doc: Document, lc: LineCounter, file: string): ConfigProblem {
  let path = issue.path as PropertyKey[];
  let code: ErrorCode = 'TP_CONFIG_INVALID';
  let message = issue.message;
  let offset: number | undefined;
  if (issue.code === 'unrecognized_keys') {
    code = 'TP_CONFIG_UNKNOWN_KEY';
    const key = issue.keys[0]!;
    offset = keyOffset(doc, path, key);
    path = [...path, key];
    message = `unknown key "${key}"`;
  } else if (issue.code === 'custom' && issue.params?.turnpikeCode) {
    code = issue.params.turnpikeCode as ErrorCode;
    const atKey = issue.params.atKey as string | undefined;
    if (atKey) {
      offset = keyOffset(doc, path, atKey);
      path = [...path, atKey];
    }
  } else if (issue.code === 'invalid_type' && issue.input === undefined) {
    message = `missing required key (expected ${issue.expected})`;
  } else if (issue.code === 'invalid_union') {
    message = `invalid value: ${unionHint(issue)}`;
  }
  offset ??= nodeOffset(doc, path);
  const pos = lc.linePos(offset);
  return { code, file, line: pos.line, column: pos.col, path: formatPath(path), message };
}

function unionHint(issue: z.core.$ZodIssueInvalidUnion): string {
  const messages = new Set<string>();
  for (const branch of issue.errors) for (const i of branch) messages.add(i.path.length ? `${formatPath(i.path as PropertyKey[])}: ${i.message}` : i.message);
  return [...messages].slice(0, 4).join('; or ');
}

/** Offset of the deepest node that exists along `path`. */
function nodeOffset(doc: Document, path: readonly PropertyKey[]): number {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return node.range[0];
  }
  return 0;
}

function keyOffset(doc: Document, path: readonly PropertyKey[], key: string): number {
  const parent = path.length === 0 ? doc.contents : doc.getIn(path as unknown[], true);
  if (isMap(parent)) {
    for (const item of parent.items) {
      if (isPair(item) && isScalar(item.key) && String(item.key.value) === key && item.key.range) return item.key.range[0];
    }
  }
  return nodeOffset(doc, path);
}

function pathOfOffset(doc: Document, offset: number): string {
  let found: PropertyKey[] = [];
  const walk = (node: unknown, path: PropertyKey[]) => {
    if (isScalar(node)) {
      if (node.range && node.range[0] === offset) found = path;
      return;
    }
    const items = (node as { items?: unknown[] } | null)?.items;
    if (!items) return;
    items.forEach((item, i) => {
      if (isPair(item)) walk(item.value, [...path, isScalar(item.key) ? String(item.key.value) : String(i)]);
      else walk(item, [...path, i]);
    });
  };
  walk(doc.contents, []);
  return formatPath(found);
}

function checkReferences(config: Config, doc: Document, lc: LineCounter, file: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const problem = (code: ErrorCode, path: PropertyKey[], message: string) => {
    const pos = lc.linePos(nodeOffset(doc, path));
    problems.push({ code, file, line: pos.line, column: pos.col, path: formatPath(path), message });
  };
  const upstreamNames = Object.keys(config.upstreams);
  config.routes.forEach((route, i) => {
    if (route.upstream !== undefined && !(route.upstream in config.upstreams)) {
      const where = route.name ? `route "${route.name}"` : `routes[${i}]`;
      problem('TP_CONFIG_BAD_REFERENCE', ['routes', i, 'upstream'],
        `${where} names upstream "${route.upstream}", which is not defined under upstreams (defined: ${upstreamNames.join(', ') || 'none'})`);
    }
  });
  const seen = new Map<string, number>();
  config.routes.forEach((route, i) => {
    if (!route.name) return;
    const first = seen.get(route.name);
    if (first !== undefined) problem('TP_CONFIG_DUPLICATE', ['routes', i, 'name'], `route name "${route.name}" is already used by routes[${first}]`);
    else seen.set(route.name, i);
  });
  const listenerNames = new Map<string, number>();
  const binds = new Map<string, number>();
  config.listeners.forEach((l, i) => {
    const first = listenerNames.get(l.name);
    if (first !== undefined) problem('TP_CONFIG_DUPLICATE', ['listeners', i, 'name'], `listener name "${l.name}" is already used by listeners[${first}]`);
    else listenerNames.set(l.name, i);
    const bind = `${l.address}:${l.port}`;
    const firstBind = binds.get(bind);
    if (l.port !== 0 && firstBind !== undefined) problem('TP_CONFIG_DUPLICATE', ['listeners', i, 'port'], `address ${bind} is already used by listeners[${firstBind}]`);
    else binds.set(bind, i);
  });
  return problems;
}
