// The `{...}` placeholders of an aggregate call's path, query and headers, parsed once at load: the request's
// `{params.id}`, `{query.q}`, `{headers.accept-language}`, `{consumer.name}`, and an earlier call's answer
// `{user.status}`, `{user.headers.etag}`, `{user.body.tierId}` (a JSON path: `.key` and `[0]`).

export type TemplateRef =
  | { readonly from: 'params' | 'query' | 'headers'; readonly name: string }
  | { readonly from: 'consumer' }
  | { readonly from: 'call'; readonly call: string; readonly field: 'status' }
  | { readonly from: 'call'; readonly call: string; readonly field: 'headers'; readonly name: string }
  | {
      readonly from: 'call';
      readonly call: string;
      readonly field: 'body';
      readonly path: readonly (string | number)[];
    };

/** Literal text and placeholders, in order. */
export type Template = readonly (string | TemplateRef)[];

/** Names a call may not take: they start the request's own placeholders. */
export const RESERVED_CALL_NAMES: ReadonlySet<string> = new Set(['params', 'query', 'headers', 'consumer']);

const NAME = /^[A-Za-z0-9_.~-]+$/;

/** Parses `text`; a string is the reason it is not a template. */
export function parseTemplate(text: string): Template | string {
  const parts: (string | TemplateRef)[] = [];
  let at = 0;
  while (at < text.length) {
    const open = text.indexOf('{', at);
    const strayClose = text.indexOf('}', at);
    if (strayClose !== -1 && (open === -1 || strayClose < open))
      return `"}" at ${strayClose + 1} closes no "{" (placeholders are written {params.id}, {user.body.id}...)`;
    if (open === -1) {
      parts.push(text.slice(at));
      break;
    }
    if (open > at) parts.push(text.slice(at, open));
    const close = text.indexOf('}', open);
    if (close === -1) return `"{" at ${open + 1} is not closed`;
    const ref = parseRef(text.slice(open + 1, close));
    if (typeof ref === 'string') return ref;
    parts.push(ref);
    at = close + 1;
  }
  return parts;
}

function parseRef(expr: string): TemplateRef | string {
  const dot = expr.indexOf('.');
  const head = dot === -1 ? expr : expr.slice(0, dot);
  const rest = dot === -1 ? '' : expr.slice(dot + 1);
  if (head === 'consumer') {
    if (rest !== 'name') return `{${expr}}: the consumer offers only {consumer.name}`;
    return { from: 'consumer' };
  }
  if (head === 'params' || head === 'query' || head === 'headers') {
    if (!NAME.test(rest)) return `{${expr}}: expected {${head}.NAME}`;
    return { from: head, name: head === 'headers' ? rest.toLowerCase() : rest };
  }
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(head))
    return `{${expr}}: expected {params.NAME}, {query.NAME}, {headers.NAME}, {consumer.name} or {CALL.status|headers.NAME|body.PATH}`;
  if (rest === 'status') return { from: 'call', call: head, field: 'status' };
  if (rest.startsWith('headers.') && NAME.test(rest.slice(8)))
    return { from: 'call', call: head, field: 'headers', name: rest.slice(8).toLowerCase() };
  if (rest === 'body' || rest.startsWith('body.') || rest.startsWith('body[')) {
    const path = parseJsonPath(rest.slice(4));
    if (typeof path === 'string') return `{${expr}}: ${path}`;
    return { from: 'call', call: head, field: 'body', path };
  }
  return `{${expr}}: a call's answer offers {${head}.status}, {${head}.headers.NAME} and {${head}.body.PATH}`;
}

/** `.a.b[0].c` → ['a', 'b', 0, 'c']. */
function parseJsonPath(text: string): (string | number)[] | string {
  const path: (string | number)[] = [];
  const step = /\.([A-Za-z0-9_$-]+)|\[(\d+)\]/y;
  let at = 0;
  while (at < text.length) {
    step.lastIndex = at;
    const m = step.exec(text);
    if (m === null) return `expected a JSON path of .key and [index] steps at "${text.slice(at)}"`;
    path.push(m[1] !== undefined ? m[1] : Number(m[2]));
    at = step.lastIndex;
  }
  return path;
}

/** The calls a template reads the answers of. */
export function callsOf(template: Template): string[] {
  const out: string[] = [];
  for (const p of template) if (typeof p !== 'string' && p.from === 'call' && !out.includes(p.call)) out.push(p.call);
  return out;
}
