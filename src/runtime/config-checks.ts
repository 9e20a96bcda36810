// The checks `start` makes before serving, run by every load (`turnpike validate`, `start`, a reload): files
// exist and parse (certificates, keys, CAs, JWT keys), keys match their certificates, the access log can be
// opened, and each plugin's own `check` (secrets long enough, a store or consumer it names is configured).
// `readFiles: false` (`validate --no-files`, for CI jobs without the certificates) skips every file: TLS
// certificates, keys and CAs, the access-log path, and plugins' key files (jwt `file:`).
// They read the document as written, piece by piece: a piece the schema refuses is reported by the schema and
// skipped here, so one run lists every problem, each at its key path.
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { acmeSettings } from '../config/acme-schema.ts';
import { tlsSettings } from '../config/listener-schema.ts';
import type { CheckEnv, CheckProblem, LoadOptions } from '../config/loader.ts';
import { ROUTE_TERMINALS } from '../config/schema.ts';
import { kindOf, upstreamTls } from '../config/upstream-schema.ts';
import { errorPageProblems } from '../pipeline/error-pages.ts';
import { versioningProblems } from '../config/versioning-schema.ts';
import { PLUGIN_SCHEMAS, PLUGINS } from '../plugins/registry.ts';
import type { PluginCheckEnv } from '../plugins/types.ts';
import { TERMINALS } from '../terminals/registry.ts';
import { checkListenerTlsFiles, checkUpstreamTlsFiles } from '../tls/check-files.ts';

type Loose = Record<string, unknown>;
type Path = (string | number)[];
const isObject = (v: unknown): v is Loose => v !== null && typeof v === 'object' && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** What every load of a config file uses: the plugins' schemas, and these checks. */
export const LOAD_OPTIONS: LoadOptions = { plugins: PLUGIN_SCHEMAS, check: checkConfig };

export function checkConfig(raw: unknown, env: CheckEnv): CheckProblem[] {
  if (!isObject(raw)) return [];
  const problems: CheckProblem[] = [];
  list(raw.listeners).forEach((l, i) => {
    if (!isObject(l) || (l.protocol !== 'https' && l.protocol !== 'tcp') || l.tls === undefined) return;
    const tls = tlsSettings.safeParse(l.tls);
    if (!tls.success) return;
    for (const p of checkListenerTlsFiles(tls.data, env.configDir, env.readFiles)) {
      problems.push({ path: ['listeners', i, 'tls', ...p.path], message: p.message, code: 'TP_TLS_CONFIG' });
    }
  });
  problems.push(...acmeProblems(raw, env));
  // Upstream TLS settings are only files (a CA, a client certificate and key).
  if (isObject(raw.upstreams) && env.readFiles) {
    for (const [name, u] of Object.entries(raw.upstreams)) {
      if (!isObject(u) || u.tls === undefined) continue;
      const tls = upstreamTls.safeParse(u.tls);
      if (!tls.success) continue;
      for (const p of checkUpstreamTlsFiles(tls.data, env.configDir)) {
        problems.push({ path: ['upstreams', name, 'tls', ...p.path], message: p.message, code: 'TP_TLS_CONFIG' });
      }
    }
  }
  problems.push(...redisDiscoveryProblems(raw));
  // stores.redis.tls takes the upstreams' shape: the same file checks.
  const redis = isObject(raw.stores) && isObject(raw.stores.redis) ? raw.stores.redis : {};
  const redisTls = isObject(redis.tls) && env.readFiles ? upstreamTls.safeParse(redis.tls) : undefined;
  if (redisTls?.success)
    for (const p of checkUpstreamTlsFiles(redisTls.data, env.configDir))
      problems.push({ path: ['stores', 'redis', 'tls', ...p.path], message: p.message, code: 'TP_TLS_CONFIG' });
  const log = isObject(raw.accessLog) ? raw.accessLog : {};
  const output = typeof log.output === 'string' && log.output !== 'stdout' && log.output !== 'stderr' ? log.output : '';
  if (log.enabled !== false && output !== '' && env.readFiles) {
    const problem = accessLogProblem(output, env.configDir);
    if (problem !== undefined)
      problems.push({ path: ['accessLog', 'output'], message: problem, code: 'TP_CONFIG_FILE' });
  }
  // GET /metrics is served on the admin listener: metrics without one would be collected for nobody.
  if (isObject(raw.metrics) && raw.metrics.enabled !== false && (raw as { admin?: unknown }).admin === undefined)
    problems.push({
      path: ['metrics'],
      message: 'metrics are served on the admin listener: add admin: (or set metrics.enabled: false)',
      code: 'TP_CONFIG_INVALID',
    });
  const upstreams = upstreamKinds(raw);
  const pluginEnv = pluginCheckEnv(raw, env, upstreams);
  checkPlugins(raw.plugins, ['plugins'], pluginEnv, problems);
  list(raw.routes).forEach((route, i) => {
    if (!isObject(route)) return;
    checkPlugins(route.plugins, ['routes', i, 'plugins'], pluginEnv, problems);
  });
  checkTerminals(raw, env, upstreams, pluginEnv.upstreamProblem, problems);
  if (env.readFiles)
    for (const p of errorPageProblems(raw.errorPages, env.configDir))
      problems.push({ path: ['errorPages', ...p.path], message: p.message, code: 'TP_CONFIG_FILE' });
  problems.push(...versioningProblems(raw));
  return problems;
}

/** `discover: { redis: ... }` reads the registrations in the top-level stores.redis, which must be there. */
function redisDiscoveryProblems(raw: Loose): CheckProblem[] {
  const stores = isObject(raw.stores) ? raw.stores : {};
  if ((stores.redis !== undefined && stores.redis !== null) || !isObject(raw.upstreams)) return [];
  return Object.entries(raw.upstreams)
    .filter(([, u]) => isObject(u) && isObject(u.discover) && u.discover.redis !== undefined)
    .map(([name]) => ({
      path: ['upstreams', name, 'discover', 'redis'],
      message:
        'redis discovery needs the top-level stores.redis, which is not configured: add stores: { redis: { url: redis://HOST:PORT } }',
      code: 'TP_CONFIG_INVALID' as const,
    }));
}

/** Each upstream by name, with the kind of its first target's URL (http, tcp, udp), when there is one. */
function upstreamKinds(raw: Loose): Map<string, string | undefined> {
  const upstreams = new Map<string, string | undefined>();
  if (isObject(raw.upstreams))
    for (const [name, u] of Object.entries(raw.upstreams)) {
      const url = isObject(u) ? list(u.targets).find((t) => isObject(t) && typeof t.url === 'string') : undefined;
      upstreams.set(name, isObject(url) ? kindOf(url.url as string) : undefined);
    }
  return upstreams;
}

/** Why a terminal or plugin cannot send HTTP requests to upstream `name`, or undefined. */
function upstreamProblemIn(upstreams: ReadonlyMap<string, string | undefined>): (name: string) => string | undefined {
  return (name) => {
    if (!upstreams.has(name))
      return `names upstream "${name}", which is not defined under upstreams (defined: ${[...upstreams.keys()].join(', ') || 'none'})`;
    const scheme = upstreams.get(name);
    return scheme === undefined || scheme === 'http'
      ? undefined
      : `needs an upstream with http:// or https:// targets, but "${name}" has ${scheme}:// targets`;
  };
}

/** Each route's terminal whose config the schema accepts goes through the terminal's own `check`. */
function checkTerminals(
  raw: Loose,
  env: CheckEnv,
  upstreams: ReadonlyMap<string, string | undefined>,
  upstreamProblem: (name: string) => string | undefined,
  problems: CheckProblem[],
): void {
  list(raw.routes).forEach((route, i) => {
    if (!isObject(route)) return;
    for (const [key, kind] of TERMINALS) {
      if (kind.check === undefined || route[key] === undefined) continue;
      const parsed = ROUTE_TERMINALS[key as keyof typeof ROUTE_TERMINALS].safeParse(route[key]);
      if (!parsed.success) continue;
      const who = typeof route.name === 'string' && route.name !== '' ? `route "${route.name}"` : `routes[${i}]`;
      const found = kind.check(parsed.data, {
        who,
        upstreams,
        configDir: env.configDir,
        readFiles: env.readFiles,
        upstreamProblem,
      });
      for (const p of found) problems.push({ ...p, path: ['routes', i, key, ...p.path] });
    }
  });
}

function pluginCheckEnv(raw: Loose, env: CheckEnv, upstreams: ReadonlyMap<string, string | undefined>): PluginCheckEnv {
  const consumerNames = new Set<string>();
  const consumerGroups = new Set<string>();
  for (const c of list(raw.consumers)) {
    if (!isObject(c)) continue;
    if (typeof c.name === 'string') consumerNames.add(c.name);
    for (const g of list(c.groups)) if (typeof g === 'string') consumerGroups.add(g);
  }
  const stores = isObject(raw.stores) ? raw.stores : {};
  return {
    configDir: env.configDir,
    readFiles: env.readFiles,
    redisConfigured: stores.redis !== undefined && stores.redis !== null,
    consumerNames,
    consumerGroups,
    upstreamProblem: upstreamProblemIn(upstreams),
  };
}

/** Each plugin entry whose config its schema accepts goes through the plugin's own `check`. */
function checkPlugins(entries: unknown, at: Path, env: PluginCheckEnv, problems: CheckProblem[]): void {
  list(entries).forEach((entry, j) => {
    if (!isObject(entry) || Object.keys(entry).length !== 1) return;
    const [name, config] = Object.entries(entry)[0]!;
    const plugin = PLUGINS.get(name);
    if (plugin?.check === undefined) return;
    const parsed = plugin.schema.safeParse(config ?? {});
    if (!parsed.success) return;
    const where: Path = [...at, j, name];
    try {
      for (const p of plugin.check(parsed.data, env)) problems.push({ ...p, path: [...where, ...p.path] });
    } catch (err) {
      problems.push({
        path: where,
        message: `the ${name} plugin could not check its config (${(err as Error).message})`,
      });
    }
  });
}

/**
 * Whether the access log can be opened for appending where the gateway will open it (relative to the config
 * file's folder, as every path in the config), without creating or truncating anything: an existing file must be writable, a missing one needs
 * its nearest existing folder writable (missing folders are created at start).
 */
function accessLogProblem(output: string, configDir: string): string | undefined {
  const file = resolve(configDir, output);
  const shown = output === file ? output : `${output} (${file})`;
  const existing = stat(file);
  if (existing === 'missing') {
    for (let dir = dirname(file); ; dir = dirname(dir)) {
      const st = stat(dir);
      if (st === 'missing') {
        if (dir === dirname(dir)) return `${shown} cannot be created: no folder of its path exists`;
        continue;
      }
      if (typeof st === 'string') return `${shown} cannot be created: ${dir}: ${st}`;
      if (!st.isDirectory()) return `${shown} cannot be created: ${dir} is a file, not a folder`;
      if (!accessible(dir, constants.W_OK | constants.X_OK))
        return `${shown} cannot be created: the folder ${dir} is not writable`;
      return undefined;
    }
  }
  if (typeof existing === 'string') return `${shown}: ${existing}`;
  if (existing.isDirectory()) return `${shown} is a folder, not a file`;
  if (!accessible(file, constants.W_OK)) return `${shown} cannot be appended to: permission denied`;
  return undefined;
}

function stat(path: string): Stats | 'missing' | string {
  try {
    return statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
    return code === 'EACCES' ? 'permission denied' : (err as Error).message;
  }
}

function accessible(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** `acme: { storage: redis }` needs stores.redis; `acme.ca` must be readable. */
function acmeProblems(raw: Loose, env: CheckEnv): CheckProblem[] {
  const problems: CheckProblem[] = [];
  const redis = isObject(raw.stores) && raw.stores.redis !== undefined && raw.stores.redis !== null;
  list(raw.listeners).forEach((l, i) => {
    if (!isObject(l) || l.protocol !== 'https' || !isObject(l.acme)) return;
    const acme = acmeSettings.safeParse(l.acme);
    if (!acme.success) return;
    if (acme.data.storage === 'redis' && !redis)
      problems.push({
        path: ['listeners', i, 'acme', 'storage'],
        message:
          'redis needs the top-level stores.redis, which is not configured: add stores: { redis: { url: redis://HOST:PORT } } or name a folder',
        code: 'TP_CONFIG_BAD_REFERENCE',
      });
    if (acme.data.ca !== undefined && env.readFiles) {
      const file = resolve(env.configDir, acme.data.ca);
      try {
        accessSync(file, constants.R_OK);
      } catch {
        problems.push({
          path: ['listeners', i, 'acme', 'ca'],
          message: `cannot read ${acme.data.ca === file ? file : `${acme.data.ca} (${file})`}`,
          code: 'TP_CONFIG_FILE',
        });
      }
    }
  });
  return problems;
}
