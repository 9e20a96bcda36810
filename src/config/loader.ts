// Reads a YAML or JSON config, expands the environment, validates it, and resolves cross-references.
// Every error names the file, line and column, the key path and what was expected.
import { adminProblems } from './admin-schema.ts';
import { kindOf } from './upstream-schema.ts';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { TurnpikeError } from '../errors.ts';
import { expandEnv } from './env.ts';
import {
  formatProblem,
  Locator,
  problemsFromIssue,
  type CheckProblem,
  type ConfigCheck,
  type ConfigProblem,
} from './problems.ts';
import { buildConfigSchema, type Config, type PluginSchemas } from './schema.ts';

export {
  formatPath,
  formatProblem,
  type CheckEnv,
  type CheckProblem,
  type ConfigCheck,
  type ConfigProblem,
} from './problems.ts';

export class ConfigError extends TurnpikeError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems[0]?.code ?? 'TP_CONFIG_INVALID', problems.map(formatProblem).join('\n'));
    this.problems = problems;
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  readonly plugins: PluginSchemas;
  readonly env?: NodeJS.ProcessEnv;
  /** The checks `start` makes before serving (files, keys, stores...); their problems join the schema's. */
  readonly check?: ConfigCheck;
  /** Where relative paths start: the config file's folder (set by loadConfigFile), else the working directory. */
  readonly configDir?: string;
  /** false: the checks leave alone the files a config names (certificates, keys, log paths): `validate --no-files`. */
  readonly readFiles?: boolean;
  /**
   * Warnings on a valid config (`validate --strict`): placed at their lines, returned, never thrown. `written` is
   * the document before `${VAR}` expansion.
   */
  readonly lint?: (config: Config, written: unknown) => readonly CheckProblem[];
}

export interface LoadedConfig {
  readonly file: string;
  readonly config: Config;
  /** What `lint` found (empty without one). */
  readonly warnings: readonly ConfigProblem[];
}

export function loadConfigFile(file: string, options: LoadOptions): LoadedConfig {
  return loadConfigFileText(file, readConfigFile(file), options);
}

/** The text of a config file, or a ConfigError (TP_CONFIG_NOT_FOUND) saying why it cannot be read. */
export function readConfigFile(file: string): string {
  try {
    return readFileSync(resolve(file), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new ConfigError([
      { code: 'TP_CONFIG_NOT_FOUND', file, line: 0, column: 0, path: '', message: `cannot read config: ${reason}` },
    ]);
  }
}

/** A config file's text read earlier (a worker gets its primary's last good copy): paths resolve as the file's. */
export function loadConfigFileText(file: string, text: string, options: LoadOptions): LoadedConfig {
  const path = resolve(file);
  return { ...loadConfigText(text, file, { configDir: dirname(path), ...options }), file: path };
}

export function parseConfigText(text: string, file: string, options: LoadOptions): Config {
  return loadConfigText(text, file, options).config;
}

/**
 * Parses one YAML document for a Turnpike file (a config, a `turnpike test` cases file): duplicate keys refused,
 * the first syntax errors thrown as a ConfigError at their line (after one mistake the parser's later complaints
 * are mostly echoes of it).
 */
export function parseYaml(text: string, file: string): { doc: Document; lineCounter: LineCounter; at: Locator } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = new Locator(doc, lineCounter, file);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.slice(0, 3).map((e): ConfigProblem => {
        const duplicate = e.code === 'DUPLICATE_KEY' ? at.keyAt(e.pos[0]) : undefined;
        if (duplicate)
          return at.problem(
            'TP_CONFIG_SYNTAX',
            [...duplicate.path, duplicate.key],
            `key "${duplicate.key}" is given twice in the same map`,
            e.pos[0],
          );
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          code: 'TP_CONFIG_SYNTAX',
          file,
          line: pos.line,
          column: pos.col,
          path: '',
          message: e.message.split('\n')[0]!,
        };
      }),
    );
  }
  return { doc, lineCounter, at };
}

/** Parses and checks a config given as text (`file` names it in problems); throws a ConfigError listing every problem. */
export function loadConfigText(text: string, file: string, options: LoadOptions): LoadedConfig {
  const { doc, lineCounter, at } = parseYaml(text, file);
  const written: unknown = options.lint === undefined ? undefined : doc.toJS();
  const unset = expandEnv(doc, options.env ?? process.env);
  if (unset.length > 0) {
    throw new ConfigError(
      unset.map((u) =>
        at.problem(
          'TP_CONFIG_ENV_UNSET',
          u.path,
          `environment variable ${u.name} is not set and has no default (write \${${u.name}:-default} to give one)`,
          u.offset,
        ),
      ),
    );
  }
  const raw: unknown = doc.toJS() ?? {};
  const schema = buildConfigSchema(options.plugins);
  const result = schema.safeParse(raw);
  // Cross-references and the injected checks run on the raw document too, so one run lists every problem.
  const issues = result.success ? [] : withoutEchoes(result.error.issues);
  const checkEnv = { configDir: options.configDir ?? process.cwd(), readFiles: options.readFiles ?? true };
  const checked = (options.check?.(raw, checkEnv) ?? []).map((p) =>
    at.problem(p.code ?? 'TP_CONFIG_INVALID', p.path, p.message),
  );
  const problems = [
    ...issues.flatMap((issue) => problemsFromIssue(issue, at, schema, options.plugins)),
    ...checkReferences(raw, at),
    ...checked,
  ];
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new ConfigError(problems);
  }
  const config = result.data as unknown as Config;
  const warnings = (options.lint?.(config, written) ?? []).map((p) =>
    at.problem(p.code ?? 'TP_CONFIG_INVALID', p.path, p.message),
  );
  warnings.sort((a, b) => a.line - b.line || a.column - b.column);
  return { file, config, warnings };
}

/** Drops a map's own rule ("needs one of ...") when the map also has an unknown key: usually the same typo. */
function withoutEchoes(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const typoAt = new Set(issues.filter((i) => i.code === 'unrecognized_keys').map((i) => JSON.stringify(i.path)));
  return issues.filter((i) => !(i.code === 'custom' && typoAt.has(JSON.stringify(i.path))));
}

type Loose = Record<string, unknown>;
const isObject = (v: unknown): v is Loose => v !== null && typeof v === 'object' && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Routes naming upstreams that do not exist, duplicate route and listener names, two listeners on one address,
 *  access-log skips naming no route. */
function checkReferences(raw: unknown, at: Locator): ConfigProblem[] {
  if (!isObject(raw)) return [];
  const problems: ConfigProblem[] = [];
  const upstreams = isObject(raw.upstreams) ? Object.keys(raw.upstreams) : [];
  const upstreamKind = (name: string): string | undefined => {
    const u = isObject(raw.upstreams) ? raw.upstreams[name] : undefined;
    if (isObject(u) && u.discover !== undefined) return 'http'; // discovered targets are http:// or https://
    const url = isObject(u)
      ? list(u.targets)
          .map((t) => (isObject(t) ? t.url : undefined))
          .find((x) => typeof x === 'string')
      : undefined;
    return typeof url === 'string' ? kindOf(url) : undefined;
  };
  /** A listener or route naming an upstream that is missing or speaks another protocol. */
  const checkUpstream = (path: (string | number)[], who: string, name: unknown, want: 'http' | 'tcp' | 'udp') => {
    if (typeof name !== 'string' || name === '') return;
    if (!upstreams.includes(name)) {
      problems.push(
        at.problem(
          'TP_CONFIG_BAD_REFERENCE',
          path,
          `${who} names upstream "${name}", which is not defined under upstreams (defined: ${upstreams.join(', ') || 'none'})`,
        ),
      );
      return;
    }
    const kind = upstreamKind(name);
    if (kind !== undefined && kind !== want) {
      const scheme = want === 'http' ? 'http:// or https://' : `${want}://`;
      problems.push(
        at.problem(
          'TP_CONFIG_BAD_REFERENCE',
          path,
          `${who} needs an upstream with ${scheme} targets, but "${name}" has ${kind}:// targets`,
        ),
      );
    }
  };
  const routeNames = new Map<string, number>();
  list(raw.routes).forEach((route, i) => {
    if (!isObject(route)) return;
    const name = typeof route.name === 'string' && route.name ? route.name : undefined;
    const who = name ? `route "${name}"` : `routes[${i}]`;
    checkUpstream(['routes', i, 'upstream'], who, route.upstream, 'http');
    if (isObject(route.bridge)) checkUpstream(['routes', i, 'bridge', 'upstream'], who, route.bridge.upstream, 'http');
    // gRPC-Web is translated for a gRPC server, which speaks HTTP/2 only.
    const up =
      isObject(raw.upstreams) && typeof route.upstream === 'string' ? raw.upstreams[route.upstream] : undefined;
    if (route.protocol === 'grpc-web' && isObject(up) && up.http2 !== true)
      problems.push(
        at.problem(
          'TP_CONFIG_BAD_REFERENCE',
          ['routes', i, 'upstream'],
          `protocol grpc-web needs a gRPC upstream, but "${String(route.upstream)}" does not set http2: true`,
        ),
      );
    if (name === undefined) return;
    const first = routeNames.get(name);
    if (first !== undefined)
      problems.push(
        at.problem(
          'TP_CONFIG_DUPLICATE',
          ['routes', i, 'name'],
          `route name "${name}" is already used by routes[${first}]`,
        ),
      );
    else routeNames.set(name, i);
  });
  // accessLog.skip.routes: a name that matches no route would silently skip nothing.
  const skip = isObject(raw.accessLog) && isObject(raw.accessLog.skip) ? raw.accessLog.skip : {};
  list(skip.routes).forEach((name, i) => {
    if (typeof name === 'string' && !routeNames.has(name))
      problems.push(
        at.problem(
          'TP_CONFIG_BAD_REFERENCE',
          ['accessLog', 'skip', 'routes', i],
          `no route is named "${name}" (routes: ${[...routeNames.keys()].join(', ') || 'none'})`,
        ),
      );
  });
  const listenerNames = new Map<string, number>();
  const binds = new Map<string, number>();
  list(raw.listeners).forEach((l, i) => {
    if (!isObject(l)) return;
    if (typeof l.name === 'string') {
      const first = listenerNames.get(l.name);
      if (first !== undefined)
        problems.push(
          at.problem(
            'TP_CONFIG_DUPLICATE',
            ['listeners', i, 'name'],
            `listener name "${l.name}" is already used by listeners[${first}]`,
          ),
        );
      else listenerNames.set(l.name, i);
    }
    const who = `listener "${typeof l.name === 'string' ? l.name : i}"`;
    if (l.protocol === 'tcp' || l.protocol === 'udp')
      checkUpstream(['listeners', i, 'upstream'], who, l.upstream, l.protocol);
    if (l.protocol === 'tcp')
      list(l.sni).forEach(
        (e, j) => isObject(e) && checkUpstream(['listeners', i, 'sni', j, 'upstream'], who, e.upstream, 'tcp'),
      );
    if (typeof l.port !== 'number' || l.port === 0) return;
    // UDP and TCP ports are separate spaces: a udp and a tcp listener may share a number.
    const bind = `${l.protocol === 'udp' ? 'udp ' : ''}${typeof l.address === 'string' ? l.address : '0.0.0.0'}:${l.port}`;
    const firstBind = binds.get(bind);
    if (firstBind !== undefined)
      problems.push(
        at.problem(
          'TP_CONFIG_DUPLICATE',
          ['listeners', i, 'port'],
          `address ${bind} is already used by listeners[${firstBind}]`,
        ),
      );
    else binds.set(bind, i);
  });
  for (const p of adminProblems(raw))
    problems.push(at.problem(p.duplicate ? 'TP_CONFIG_DUPLICATE' : 'TP_CONFIG_INVALID', p.path, p.message));
  const consumerNames = new Map<string, number>();
  const keys = new Map<string, number>();
  list(raw.consumers).forEach((c, i) => {
    if (!isObject(c)) return;
    if (typeof c.name === 'string') {
      const first = consumerNames.get(c.name);
      if (first !== undefined)
        problems.push(
          at.problem(
            'TP_CONFIG_DUPLICATE',
            ['consumers', i, 'name'],
            `consumer name "${c.name}" is already used by consumers[${first}]`,
          ),
        );
      else consumerNames.set(c.name, i);
    }
    const credentials = isObject(c.credentials) ? c.credentials : {};
    list(credentials.apiKeys).forEach((k, j) => {
      if (typeof k !== 'string') return;
      const first = keys.get(k);
      // The message must not print the key itself.
      if (first !== undefined)
        problems.push(
          at.problem(
            'TP_CONFIG_DUPLICATE',
            ['consumers', i, 'credentials', 'apiKeys', j],
            `this API key is already given to consumers[${first}]`,
          ),
        );
      else keys.set(k, i);
    });
  });
  return problems;
}
