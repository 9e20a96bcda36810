// The `aggregate` terminal's config: calls to upstreams made in parallel (or after the calls they depend on),
// merged into one JSON answer. Names, dependencies and placeholders are checked here; the upstreams the calls
// name are checked with the rest of the config's references (the terminal's check).
import { z } from 'zod';
import { RESERVED_CALL_NAMES, callsOf, parseTemplate } from './aggregate-template.ts';
import { duration, headerName } from './primitives.ts';

const template = (what: string) =>
  z.string().superRefine((text, ctx) => {
    const parsed = parseTemplate(text);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: `${what}: ${parsed}` });
  });

const call = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, { message: 'expected a name of letters, digits, _ and - (not first)' })
    .refine((n) => !RESERVED_CALL_NAMES.has(n), {
      message: `params, query, headers and consumer name the request's own placeholders: choose another name`,
    })
    .meta({
      description: 'the key of its answer in the merged object, and how later calls name it',
      examples: ['user'],
    }),
  upstream: z
    .string()
    .min(1)
    .meta({
      description: 'the upstream it is sent to (a name under upstreams), through its pool',
      examples: ['users'],
    }),
  path: template('path')
    .refine((p) => p.startsWith('/'), { message: 'expected a path starting with /' })
    .meta({
      description:
        "the path and query sent upstream; {params.NAME}, {query.NAME}, {headers.NAME}, {consumer.name} and an earlier call's {CALL.status}, {CALL.headers.NAME}, {CALL.body.PATH} are filled in (percent-encoded)",
      examples: ['/users/{params.id}', '/tiers/{user.body.tierId}'],
    }),
  method: z
    .enum(['GET', 'HEAD', 'DELETE', 'OPTIONS'])
    .default('GET')
    .meta({ description: 'the method of the call (calls carry no body)', examples: ['DELETE'] }),
  query: z
    .record(z.string().min(1), template('query value'))
    .default({})
    .meta({
      description: 'query parameters added to the path (placeholders as in path)',
      examples: [{ lang: '{query.lang}' }],
    }),
  headers: z
    .record(headerName, template('header value'))
    .default({})
    .meta({
      description: 'headers set on the call (placeholders as in path)',
      examples: [{ 'if-none-match': '{user.headers.etag}' }],
    }),
  forwardHeaders: z
    .array(headerName.transform((h) => h.toLowerCase()))
    .default([])
    .meta({
      description:
        'client headers this call gets as sent (Authorization and Cookie reach a call only when listed here); the request id, X-Forwarded-* and consumer headers always go',
      examples: [['authorization', 'accept-language']],
    }),
  after: z
    .array(z.string().min(1))
    .default([])
    .meta({
      description: 'calls that must have answered first (their answers may then be used)',
      examples: [['user']],
    }),
  optional: z.boolean().default(false).meta({
    description: 'a failure leaves its key null and sets X-Turnpike-Partial: true instead of failing the answer',
  }),
  timeout: duration.optional().meta({
    description: "the call's own time, retries included (default: the upstream's response timeout)",
    examples: ['500ms'],
  }),
});

export const aggregate = z
  .strictObject({
    calls: z.array(call).min(1).meta({ description: 'the calls: in parallel, except what after orders' }),
    timeout: duration.optional().meta({
      description:
        "the whole aggregate's time (default: the route's requestTimeout); calls still running then fail as timed out",
      examples: ['2s'],
    }),
    merge: z
      .enum(['keyed', 'root'])
      .default('keyed')
      .meta({
        description:
          'keyed: {"<call>": answer, ...}; root: the answers\' objects merged at the top level, in call order',
        examples: ['root'],
      }),
  })
  .superRefine((a, ctx) => {
    const index = new Map<string, number>();
    a.calls.forEach((c, i) => {
      if (index.has(c.name))
        ctx.addIssue({
          code: 'custom',
          path: ['calls', i, 'name'],
          message: `call name "${c.name}" is already used by calls[${index.get(c.name)}]`,
        });
      else index.set(c.name, i);
    });
    a.calls.forEach((c, i) => {
      c.after.forEach((dep, j) => {
        if (!index.has(dep))
          ctx.addIssue({
            code: 'custom',
            path: ['calls', i, 'after', j],
            message: `names call "${dep}", which is not one of this aggregate's calls (${[...index.keys()].join(', ')})`,
          });
        else if (dep === c.name)
          ctx.addIssue({ code: 'custom', path: ['calls', i, 'after', j], message: 'a call cannot wait for itself' });
      });
      // A placeholder may read only an answer the call waits for.
      const texts: [string | number, string, string][] = [['path', '', c.path]];
      for (const [k, v] of Object.entries(c.query)) texts.push(['query', k, v]);
      for (const [k, v] of Object.entries(c.headers)) texts.push(['headers', k, v]);
      for (const [key, sub, text] of texts) {
        const parsed = parseTemplate(text);
        if (typeof parsed === 'string') continue;
        for (const used of callsOf(parsed)) {
          if (!dependsOn(a.calls, index, c.name, used))
            ctx.addIssue({
              code: 'custom',
              path: sub === '' ? ['calls', i, key] : ['calls', i, key, sub],
              message: `reads the answer of "${used}", which this call does not wait for: add after: [${used}]`,
            });
        }
      }
    });
    const cycle = findCycle(a.calls, index);
    if (cycle !== null)
      ctx.addIssue({
        code: 'custom',
        path: ['calls', index.get(cycle[0]!)!, 'after'],
        message: `calls wait for each other: ${cycle.join(' -> ')}`,
      });
  })
  .meta({
    description:
      'call several upstreams (in parallel, or after the calls whose answers they use) and answer their JSON merged',
    examples: [{ timeout: '2s', calls: [{ name: 'user', upstream: 'users', path: '/users/{params.id}' }] }],
  });

type Call = z.output<typeof call>;

/** Whether `name` waits for `dep`, directly or through the calls it waits for. */
function dependsOn(calls: readonly Call[], index: ReadonlyMap<string, number>, name: string, dep: string): boolean {
  const seen = new Set<string>();
  const stack = [name];
  while (stack.length > 0) {
    const c = calls[index.get(stack.pop()!)!];
    if (c === undefined) continue;
    for (const d of c.after) {
      if (d === dep) return true;
      if (!seen.has(d)) {
        seen.add(d);
        stack.push(d);
      }
    }
  }
  return false;
}

/** A dependency cycle as the names along it (first = last), or null. */
function findCycle(calls: readonly Call[], index: ReadonlyMap<string, number>): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1: on the path, 2: done
  const path: string[] = [];
  const visit = (name: string): string[] | null => {
    const s = state.get(name);
    if (s === 2) return null;
    if (s === 1) return [...path.slice(path.indexOf(name)), name];
    state.set(name, 1);
    path.push(name);
    for (const d of calls[index.get(name)!]!.after) {
      if (!index.has(d) || d === name) continue;
      const found = visit(d);
      if (found !== null) return found;
    }
    path.pop();
    state.set(name, 2);
    return null;
  };
  for (const c of calls) {
    const found = visit(c.name);
    if (found !== null) return found;
  }
  return null;
}

export type AggregateConfig = z.output<typeof aggregate>;
export type AggregateCall = AggregateConfig['calls'][number];
