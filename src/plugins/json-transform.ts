// json-transform: edits JSON bodies on the way up (request) and down (response): remove, rename, move, then set,
// with paths in a small JSONPath subset (json-path.ts). The body is held whole within the route's maxBodySize;
// a body that does not parse answers 400 (request) or 502 (response) with the parser's message. Its response hook
// runs in the transform-response phase in list order, so an `xml` listed before it has made the JSON already.
import { z } from 'zod';
import { askForWholeBody, isJsonType, rewritableBody, rewriteRequest } from './body-support.ts';
import { continues } from './explain-support.ts';
import { isDefinite, parsePath, removeAt, renameAt, setAt, getAt, type JsonPath } from './json-path.ts';
import { definePlugin } from './types.ts';

const path = z
  .string()
  .superRefine((text, ctx) => {
    try {
      parsePath(text);
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a path such as $.a.b, $.a[*].b or $.a[0]: ${(err as Error).message}`,
      });
    }
  })
  .meta({ examples: ['$.items[*].cost'] });

const side = z
  .strictObject({
    remove: z
      .array(path)
      .default([])
      .meta({ description: 'members removed', examples: [['$.internalId']] }),
    rename: z
      .record(path, path)
      .default({})
      .meta({
        description: 'members renamed in place (the new path differs in its last name only)',
        examples: [{ '$.custNo': '$.customerId' }],
      }),
    move: z
      .record(path, path)
      .default({})
      .meta({
        description: 'a value moved elsewhere (paths without [*]); objects on the way are created',
        examples: [{ '$.meta.id': '$.id' }],
      }),
    set: z
      .record(path, z.unknown().meta({ description: 'any JSON value', examples: ['gateway'] }))
      .default({})
      .meta({
        description: 'values set (objects on a path without [*] are created)',
        examples: [{ '$.source': 'gateway' }],
      }),
  })
  .superRefine((side, ctx) => {
    for (const [from, to] of Object.entries(side.rename)) {
      const a = safeParse(from);
      const b = safeParse(to);
      if (a === null || b === null) continue;
      const last = b[b.length - 1]!;
      if (
        a.length !== b.length ||
        !('name' in last) ||
        !('name' in a[a.length - 1]!) ||
        JSON.stringify(a.slice(0, -1)) !== JSON.stringify(b.slice(0, -1))
      )
        ctx.addIssue({
          code: 'custom',
          path: ['rename', from],
          message: `"${to}" must differ from "${from}" in its last name only (use move to put a value elsewhere)`,
        });
    }
    for (const [from, to] of Object.entries(side.move)) {
      const a = safeParse(from);
      const b = safeParse(to);
      if (a !== null && b !== null && (!isDefinite(a) || !isDefinite(b)))
        ctx.addIssue({ code: 'custom', path: ['move', from], message: 'move takes paths without [*]' });
    }
  });

const schema = z
  .strictObject({
    request: side.optional().meta({ description: 'edits of the JSON request body sent upstream' }),
    response: side.optional().meta({ description: 'edits of the JSON response body the client gets' }),
  })
  .refine((c) => c.request !== undefined || c.response !== undefined, {
    message: 'json-transform needs request, response or both',
  });

type Side = z.infer<typeof side>;

function safeParse(text: string): JsonPath | null {
  try {
    return parsePath(text);
  } catch {
    return null;
  }
}

/** The edits of one side, compiled: the paths parsed once. */
function compileSide(config: Side): (doc: unknown) => void {
  const remove = config.remove.map(parsePath);
  const rename = Object.entries(config.rename).map(([from, to]) => {
    const last = parsePath(to).at(-1) as { name: string };
    return { from: parsePath(from), to: last.name };
  });
  const move = Object.entries(config.move).map(([from, to]) => ({ from: parsePath(from), to: parsePath(to) }));
  const set = Object.entries(config.set).map(([at, value]) => ({ at: parsePath(at), value }));
  return (doc) => {
    for (const p of remove) removeAt(doc, p);
    for (const r of rename) renameAt(doc, r.from, r.to);
    for (const m of move) {
      const value = getAt(doc, m.from);
      if (value === undefined) continue;
      removeAt(doc, m.from);
      setAt(doc, m.to, value);
    }
    for (const s of set) setAt(doc, s.at, s.value);
  };
}

/** Parses, edits and serialises one body; a parse failure throws the parser's message. */
export function editJson(edit: (doc: unknown) => void, body: Buffer): Buffer {
  const doc: unknown = JSON.parse(body.toString('utf8'));
  edit(doc);
  return Buffer.from(JSON.stringify(doc));
}

function describe(config: Side): string {
  const parts = [
    config.remove.length > 0 ? `remove ${config.remove.join(', ')}` : '',
    Object.keys(config.rename).length > 0
      ? `rename ${Object.entries(config.rename)
          .map(([a, b]) => `${a} -> ${b}`)
          .join(', ')}`
      : '',
    Object.keys(config.move).length > 0
      ? `move ${Object.entries(config.move)
          .map(([a, b]) => `${a} -> ${b}`)
          .join(', ')}`
      : '',
    Object.keys(config.set).length > 0 ? `set ${Object.keys(config.set).join(', ')}` : '',
  ].filter((p) => p !== '');
  return parts.length === 0 ? 'no edits' : parts.join('; ');
}

export const jsonTransformPlugin = definePlugin({
  name: 'json-transform',
  phase: 'transform-request',
  responsePhase: 'transform-response',
  description:
    'Edits JSON request and response bodies: remove, rename, move, set, with paths $.a.b, $.a[*].b, $.a[0] (bodies held whole within maxBodySize)',
  schema,
  create(config, env) {
    const max = env.maxBodySize;
    const editRequest = config.request === undefined ? null : compileSide(config.request);
    const editResponse = config.response === undefined ? null : compileSide(config.response);
    const requestStage =
      editRequest === null ? null : (body: Buffer) => ({ body: editJson(editRequest, body), type: null });
    const responseStage = editResponse === null ? null : (body: Buffer) => editJson(editResponse, body);
    const summary = [
      config.request !== undefined ? `JSON request bodies: ${describe(config.request)}` : '',
      config.response !== undefined ? `JSON response bodies: ${describe(config.response)}` : '',
    ]
      .filter((p) => p !== '')
      .join('; ');
    return {
      request(ctx) {
        if (responseStage !== null) askForWholeBody(ctx);
        if (requestStage === null) return undefined;
        return rewriteRequest(ctx, max, isJsonType, requestStage);
      },
      response:
        responseStage === null
          ? undefined
          : (ctx, head) => {
              const body = rewritableBody(ctx, head, (type) => type !== undefined && isJsonType(type));
              if (body !== null) body.rewrite(responseStage);
            },
      explain: () => continues(summary, { maxBodySize: max }),
    };
  },
});
