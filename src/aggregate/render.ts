// Fills a call's placeholders for one request: from the request (params, query, headers, consumer) and from the
// answers of the calls it waited for. A request value that is absent is empty; an answer value that is absent
// fails the call (calling /tiers/ for a user without a tier would ask another question).
import type { Template, TemplateRef } from '../config/aggregate-template.ts';
import { queryValue } from '../http/query.ts';
import type { RequestContext } from '../request-context.ts';
import type { CallAnswer } from './call.ts';

/** The rendered text, or `{ missing }` naming the answer value that was not there. */
export type Rendered = string | { readonly missing: string };

export function render(
  template: Template,
  ctx: RequestContext,
  answers: ReadonlyMap<string, CallAnswer>,
  encode: (value: string) => string,
): Rendered {
  if (template.length === 1 && typeof template[0] === 'string') return template[0];
  let out = '';
  for (const part of template) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const value = valueOf(part, ctx, answers);
    if (typeof value !== 'string') return value;
    out += encode(value);
  }
  return out;
}

function valueOf(ref: TemplateRef, ctx: RequestContext, answers: ReadonlyMap<string, CallAnswer>): Rendered {
  switch (ref.from) {
    case 'params':
      return ctx.params[ref.name] ?? '';
    case 'query':
      return queryValue(ctx.query, ref.name) ?? '';
    case 'headers': {
      const v = ctx.req.headers[ref.name];
      return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
    }
    case 'consumer':
      return ctx.identity?.consumer?.name ?? '';
    case 'call': {
      const answer = answers.get(ref.call);
      if (answer === undefined) return { missing: `the answer of "${ref.call}"` };
      if (ref.field === 'status') return String(answer.status);
      if (ref.field === 'headers') {
        const v = answer.headers[ref.name];
        if (v === undefined) return { missing: `header ${ref.name} in the answer of "${ref.call}"` };
        return Array.isArray(v) ? String(v[0]) : String(v);
      }
      let v: unknown = answer.body;
      for (const step of ref.path) {
        if (v === null || typeof v !== 'object') {
          v = undefined;
          break;
        }
        v = Object.hasOwn(v, step) ? (v as Record<string | number, unknown>)[step] : undefined;
      }
      if (v === undefined || v === null)
        return {
          missing: `body${ref.path.map((s) => (typeof s === 'number' ? `[${s}]` : `.${s}`)).join('')} in the answer of "${ref.call}"`,
        };
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
  }
}

/** Header values: as they are, but never a line break or NUL (a header cannot be split through a placeholder). */
export function headerSafe(value: string): string {
  return value.replace(/[\r\n\0]/g, '');
}
