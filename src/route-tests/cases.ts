// The cases file of `turnpike test`: its schema, and a loader that reports problems as the config loader does
// (file:line:col key.path: message [CODE]), including names that the config does not define.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, parseYaml, type ConfigProblem } from '../config/loader.ts';
import { duration, headerName, httpMethod, stringMatcher } from '../config/primitives.ts';
import { problemsFromIssue, type Locator } from '../config/problems.ts';
import type { Config } from '../config/schema.ts';
import { readSigningKey, type SigningKey } from './case-jwt.ts';

const headerValue = z.union([z.string(), z.number().transform(String)], { error: 'expected a header value' });

/** An expected header: an exact value, `{ regex }`, or null for "must be absent". */
const expectedHeaders = z.record(headerName, z.union([stringMatcher, z.null()]));

const jwt = z
  .strictObject({
    key: z.string().min(1).optional().meta({
      description: 'a private key to sign with: a PEM (PKCS#8) or JWK file, relative to the cases file',
    }),
    secret: z.string().min(1).optional().meta({ description: 'an HS256/384/512 secret to sign with' }),
    alg: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'default: from the key (RS256, ES256/384/512, EdDSA, HS256)' }),
    kid: z.string().min(1).optional(),
    claims: z.record(z.string(), z.unknown()).default({}),
    expiresIn: duration.prefault('5m').meta({ description: 'exp = now + this, unless claims set exp' }),
    header: headerName.default('authorization'),
    scheme: z.string().default('Bearer').meta({ description: 'the prefix before the token ("" for none)' }),
  })
  .refine((j) => (j.key === undefined) !== (j.secret === undefined), {
    message: 'a jwt is signed with either key (a private key file) or secret',
  });

const request = z.strictObject({
  method: httpMethod.default('GET'),
  url: z.string().refine((u) => /^https?:\/\//i.test(u) && URL.canParse(u), {
    message: 'expected an absolute http:// or https:// URL such as http://api.example.com/users/7',
  }),
  headers: z.record(headerName, headerValue).default({}),
  body: z.string().optional(),
  listener: z.string().min(1).optional().meta({ description: 'the listener to send to (default: by scheme and port)' }),
  jwt: jwt.optional(),
});

const upstreamAnswer = z.strictObject({
  status: z.number().int().min(200).max(599).default(200),
  headers: z.record(headerName, headerValue).default({}),
  body: z.string().default(''),
});

const expect = z.strictObject({
  route: z.string().min(1).nullable().optional(),
  status: z.number().int().min(100).max(599).optional(),
  upstream: z.string().min(1).nullable().optional(),
  target: z.string().min(1).optional(),
  upstreamRequest: z
    .strictObject({
      method: httpMethod.optional(),
      path: z.string().optional(),
      query: z.string().optional(),
      headers: expectedHeaders.optional(),
      body: z.string().optional(),
    })
    .nullable()
    .optional(),
  response: z
    .strictObject({
      headers: expectedHeaders.optional(),
      body: z.string().optional(),
    })
    .optional(),
});

const testCase = z.strictObject({
  name: z.string().min(1),
  request,
  upstreamAnswer: upstreamAnswer.optional(),
  repeat: z.number().int().min(1).max(10_000).default(1).meta({
    description: 'send the request this many times (a rate limit); expect applies to the last answer',
  }),
  expect,
});

export const casesSchema = z.strictObject({ cases: z.array(testCase).min(1) });

export type TestCase = z.output<typeof testCase> & {
  /** Where the case starts in its file, for reports. */
  readonly line: number;
};
export type Expectations = TestCase['expect'];
export type ExpectedHeaders = z.output<typeof expectedHeaders>;

export interface LoadedCases {
  readonly file: string;
  readonly dir: string;
  readonly cases: readonly TestCase[];
  /** The private keys the cases sign with, by absolute path. */
  readonly keys: ReadonlyMap<string, SigningKey>;
}

const NO_PLUGINS = new Map<string, z.ZodType>();

export function loadCasesFile(file: string, config: Config): LoadedCases {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError([
      { code: 'TP_CONFIG_NOT_FOUND', file, line: 0, column: 0, path: '', message: `cannot read cases: ${reason}` },
    ]);
  }
  const dir = dirname(resolve(file));
  const keys = new Map<string, SigningKey>();
  return { file, dir, cases: parseCases(text, file, config, dir, keys), keys };
}

/** Parses and checks cases; the signing keys they name are read (relative to `dir`) into `keys`. */
export function parseCases(
  text: string,
  file: string,
  config: Config,
  dir: string,
  keys: Map<string, SigningKey>,
): TestCase[] {
  const { doc, lineCounter, at } = parseYaml(text, file);
  const raw: unknown = doc.toJS() ?? {};
  const result = casesSchema.safeParse(raw);
  const problems = result.success
    ? [...checkNames(result.data.cases, config, at), ...readKeys(result.data.cases, dir, keys, at)]
    : result.error.issues.flatMap((issue) => problemsFromIssue(issue, at, casesSchema, NO_PLUGINS));
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new ConfigError(problems);
  }
  return result.data!.cases.map((c, i) => ({ ...c, line: lineCounter.linePos(at.nodeOffset(['cases', i])).line }));
}

/** Names a case expects that the config does not have: a typo would otherwise fail every run with a vague diff. */
function checkNames(cases: readonly z.output<typeof testCase>[], config: Config, at: Locator): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const routes = config.routes.map((r, i) => r.name ?? `routes[${i}]`);
  const upstreams = Object.keys(config.upstreams);
  const web = config.listeners.filter((l) => l.protocol === 'http' || l.protocol === 'https');
  const bad = (path: (string | number)[], message: string) =>
    problems.push(at.problem('TP_CONFIG_BAD_REFERENCE', path, message));
  cases.forEach((c, i) => {
    const e = c.expect;
    if (typeof e.route === 'string' && !routes.includes(e.route))
      bad(['cases', i, 'expect', 'route'], `no route is named "${e.route}" (routes: ${routes.join(', ') || 'none'})`);
    if (typeof e.upstream === 'string' && !upstreams.includes(e.upstream))
      bad(
        ['cases', i, 'expect', 'upstream'],
        `no upstream is named "${e.upstream}" (upstreams: ${upstreams.join(', ') || 'none'})`,
      );
    if (e.target !== undefined) {
      const names = typeof e.upstream === 'string' ? [e.upstream] : upstreams;
      const targets = names.flatMap((n) => config.upstreams[n]?.targets.map((t) => t.url) ?? []);
      if (!targets.some((t) => sameOrigin(t, e.target!)))
        bad(
          ['cases', i, 'expect', 'target'],
          `no target ${e.target} in ${typeof e.upstream === 'string' ? `upstream "${e.upstream}"` : 'any upstream'} (targets: ${targets.join(', ') || 'none'})`,
        );
    }
    const scheme = new URL(c.request.url).protocol.slice(0, -1);
    if (c.request.listener !== undefined) {
      const l = web.find((x) => x.name === c.request.listener);
      if (l === undefined)
        bad(
          ['cases', i, 'request', 'listener'],
          `no http or https listener is named "${c.request.listener}" (listeners: ${web.map((x) => x.name).join(', ') || 'none'})`,
        );
      else if (l.protocol !== scheme)
        bad(['cases', i, 'request', 'url'], `listener "${l.name}" is ${l.protocol}, the URL is ${scheme}`);
    } else if (!web.some((l) => l.protocol === scheme)) {
      bad(['cases', i, 'request', 'url'], `the config has no ${scheme} listener to send this URL to`);
    }
  });
  return problems;
}

function readKeys(
  cases: readonly z.output<typeof testCase>[],
  dir: string,
  keys: Map<string, SigningKey>,
  at: Locator,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  cases.forEach((c, i) => {
    const name = c.request.jwt?.key;
    if (name === undefined) return;
    const path = resolve(dir, name);
    if (keys.has(path)) return;
    try {
      keys.set(path, readSigningKey(path));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const reason = e.code === 'ENOENT' ? 'no such file' : e.message.split('\n')[0];
      problems.push(
        at.problem('TP_CONFIG_FILE', ['cases', i, 'request', 'jwt', 'key'], `cannot use ${path} to sign: ${reason}`),
      );
    }
  });
  return problems;
}

/** Two URLs with the same origin (http://host:80 and http://host are one). */
export function sameOrigin(a: string, b: string): boolean {
  return URL.canParse(a) && URL.canParse(b) && new URL(a).origin === new URL(b).origin;
}
