// `turnpike validate --strict`: warnings on a config the schema accepts, for what is legal but almost surely a
// mistake. Each rule speaks only where the answer is certain; where it is not, it says nothing.
//
// Shadowed routes follow the router's precedence (src/routing/router.ts), which is not config order: an exact
// host beats a wildcard beats no host, an exact path beats a prefix, a longer prefix beats a shorter one. So a
// catch-all `/` listed first never hides `/api`; a route is hidden only by an earlier one with the same host
// table and the same path pattern that takes every method it allows and has no header or query predicate
// (a predicate on the earlier route, or a regex path on either, makes the question undecidable here: no word).
import type { CheckProblem } from './problems.ts';
import type { Config, MatchConfig, RouteConfig } from './schema.ts';

type Path = (string | number)[];

/** Plugins that identify a consumer, by the credential they read. */
const READERS = {
  apiKeys: ['key-auth'],
  basic: ['basic-auth'],
  jwt: ['jwt', 'oauth2-introspection'],
} as const;

/** Warnings for a valid config; `written` is the document before `${VAR}` expansion (for secrets in the file). */
export function lintConfig(config: Config, written: unknown): CheckProblem[] {
  return [...routeProblems(config), ...unusedUpstreams(config), ...unusedConsumers(config), ...urlCredentials(written)];
}

const label = (r: RouteConfig, i: number): string => (r.name !== undefined ? `route "${r.name}"` : `routes[${i}]`);

/** The route's path as the router orders it: kind and pattern, params unnamed; undefined for a regex path. */
function pathKey(match: MatchConfig, caseSensitive: boolean): string | undefined {
  const p = match.path ?? '/';
  if (typeof p !== 'string' && 'regex' in p) return undefined;
  const [kind, source] =
    typeof p === 'string' ? ['prefix', p] : 'exact' in p ? ['exact', p.exact] : ['prefix', p.prefix];
  const pattern = source.replace(/\/:[A-Za-z0-9_]+/g, '/:');
  return `${kind} ${caseSensitive ? pattern : pattern.toLowerCase()}`;
}

/** Host names as the router files them (port and trailing dot dropped); undefined: the routes without a host. */
function hostSet(match: MatchConfig): Set<string> | undefined {
  if (match.host === undefined) return undefined;
  const hosts = typeof match.host === 'string' ? [match.host] : match.host;
  return new Set(hosts.map((h) => h.replace(/:\d+$/, '').replace(/\.$/, '')));
}

/** Methods a route takes (a route allowing GET takes HEAD); undefined: all. */
function methodSet(match: MatchConfig): Set<string> | undefined {
  if (match.methods === undefined) return undefined;
  const set = new Set(match.methods);
  if (set.has('GET')) set.add('HEAD');
  return set;
}

const hasPredicates = (m: MatchConfig): boolean =>
  Object.keys(m.headers ?? {}).length > 0 || Object.keys(m.query ?? {}).length > 0 || m.version !== undefined;

/** Two routes with the same match (the second never gets a request), and routes an earlier one hides. */
function routeProblems(config: Config): CheckProblem[] {
  const problems: CheckProblem[] = [];
  const caseSensitive = config.limits.caseSensitivePaths;
  const seen = new Map<string, number>();
  config.routes.forEach((b, j) => {
    const same = JSON.stringify(normalMatch(b.match, caseSensitive));
    const first = seen.get(same);
    if (first !== undefined) {
      problems.push({
        path: ['routes', j, 'match'],
        code: 'TP_CONFIG_DUPLICATE_MATCH',
        message: `${label(b, j)} has the same match as ${label(config.routes[first]!, first)} (routes[${first}]), which comes first: it never gets a request`,
      });
      return;
    }
    seen.set(same, j);
    const bPath = pathKey(b.match, caseSensitive);
    if (bPath === undefined) return;
    const bHosts = hostSet(b.match);
    const bMethods = methodSet(b.match);
    for (let i = 0; i < j; i++) {
      const a = config.routes[i]!;
      if (hasPredicates(a.match) || pathKey(a.match, caseSensitive) !== bPath) continue;
      const aHosts = hostSet(a.match);
      // The same host table for every host B names: A's hosts include B's (or neither names one).
      if ((aHosts === undefined) !== (bHosts === undefined)) continue;
      if (aHosts !== undefined && ![...bHosts!].every((h) => aHosts.has(h))) continue;
      const aMethods = methodSet(a.match);
      if (aMethods !== undefined && (bMethods === undefined || ![...bMethods].every((m) => aMethods.has(m)))) continue;
      problems.push({
        path: ['routes', j, 'match'],
        code: 'TP_CONFIG_SHADOWED_ROUTE',
        message: `${label(b, j)} can never match: ${label(a, i)} (routes[${i}]) comes first with the same host and path and takes every request it would match`,
      });
      return;
    }
  });
  return problems;
}

function normalMatch(m: MatchConfig, caseSensitive: boolean): unknown {
  const sorted = (s: Set<string> | undefined) => (s === undefined ? null : [...s].sort());
  const p = m.path ?? '/';
  return {
    host: sorted(hostSet(m)),
    path: typeof p !== 'string' && 'regex' in p ? `regex ${p.regex}` : pathKey(m, caseSensitive),
    methods: sorted(methodSet(m)),
    headers: sortedEntries(m.headers),
    query: sortedEntries(m.query),
    version: m.version ?? null,
  };
}

function sortedEntries(map: Record<string, unknown> | undefined): unknown {
  return Object.entries(map ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

/** Upstreams no route (terminal or plugin), tcp/udp listener or SNI entry names. */
function unusedUpstreams(config: Config): CheckProblem[] {
  const used = new Set<string>();
  for (const r of config.routes) if (r.upstream !== undefined) used.add(r.upstream);
  for (const r of config.routes) {
    if (r.bridge !== undefined) used.add(r.bridge.upstream);
    if (r.grpcTranscode !== undefined) used.add(r.grpcTranscode.upstream);
    for (const call of r.aggregate?.calls ?? []) used.add(call.upstream);
    for (const side of r.split ?? []) used.add(side.upstream);
  }
  // A plugin that sends requests of its own (mirror) names its upstream as `upstream:`.
  for (const p of [...config.plugins, ...config.routes.flatMap((r) => r.plugins)]) {
    const named = (p.config as { upstream?: unknown } | null)?.upstream;
    if (typeof named === 'string') used.add(named);
  }
  for (const l of config.listeners) {
    if ('upstream' in l && typeof l.upstream === 'string') used.add(l.upstream);
    if ('sni' in l) for (const e of l.sni ?? []) used.add(e.upstream);
  }
  return Object.keys(config.upstreams)
    .filter((name) => !used.has(name))
    .map((name) => ({
      path: ['upstreams', name],
      code: 'TP_CONFIG_UNUSED' as const,
      message: `upstream "${name}" is named by no route or listener`,
    }));
}

/** Consumers whose credentials no plugin of the config reads: no request can ever be theirs. */
function unusedConsumers(config: Config): CheckProblem[] {
  const plugins = new Set<string>();
  for (const e of config.plugins) plugins.add(e.name);
  for (const r of config.routes) for (const e of r.plugins) plugins.add(e.name);
  const problems: CheckProblem[] = [];
  config.consumers.forEach((c, i) => {
    const held = (Object.keys(READERS) as (keyof typeof READERS)[]).filter((kind) =>
      kind === 'apiKeys' ? c.credentials.apiKeys.length > 0 : c.credentials[kind] !== undefined,
    );
    if (held.some((kind) => READERS[kind].some((p) => plugins.has(p)))) return;
    const wanted =
      held.length === 0
        ? 'it has no credentials'
        : `no ${held.map((k) => READERS[k].join(' or ')).join(', ')} plugin is configured`;
    problems.push({
      path: ['consumers', i],
      code: 'TP_CONFIG_UNUSED',
      message: `consumer "${c.name}" can never be identified: ${wanted}`,
    });
  });
  return problems;
}

const URL_PASSWORD = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#@\s:]*:([^/?#@\s]*)@/;

/** `scheme://user:password@` written in the file (a `${VAR}` password comes from the environment: fine). */
function urlCredentials(written: unknown): CheckProblem[] {
  const problems: CheckProblem[] = [];
  const walk = (v: unknown, path: Path): void => {
    if (typeof v === 'string') {
      const m = URL_PASSWORD.exec(v.trim());
      if (m && m[1] !== '' && !m[1]!.includes('${'))
        problems.push({
          path,
          code: 'TP_CONFIG_URL_CREDENTIALS',
          message:
            'this URL carries a password (user:password@) written in the config: pass it as ${VAR} from the environment',
        });
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(written, []);
  return problems;
}
