// google.api.http rules (google/api/http.proto): which HTTP method and path template call which gRPC method, and
// where the request message's fields come from (path variables, the body, the query). Templates are compiled
// once into a regular expression with one group per variable.
import { percentDecode } from '../http/percent.ts';

export const HTTP_VERBS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** A rule as the proto option or the route's `methods:` list writes it. */
export interface HttpRuleSpec {
  readonly get?: string;
  readonly put?: string;
  readonly post?: string;
  readonly delete?: string;
  readonly patch?: string;
  readonly custom?: { readonly kind: string; readonly path: string };
  readonly body?: string;
  readonly responseBody?: string;
}

export interface CompiledRule {
  /** Upper case (GET, POST ...), or a custom kind as written. */
  readonly verb: string;
  readonly template: string;
  readonly regex: RegExp;
  /** The field path each capture group sets ("name", "book.shelf"). */
  readonly variables: readonly string[];
  /** Multi-segment variables keep `/` between their segments. */
  readonly multiSegment: readonly boolean[];
  /** '' (no body), '*' (the body is the message) or the field the body fills. */
  readonly body: string;
  /** '' (the whole response message) or the field of the response that is the HTTP body. */
  readonly responseBody: string;
}

/** The rules of a proto method option (`(google.api.http)`), additional bindings included. */
export function rulesFromOption(option: Record<string, unknown>): HttpRuleSpec[] {
  const rule: HttpRuleSpec = {
    ...pick(option, HTTP_VERBS),
    ...(isRecord(option.custom) ? { custom: option.custom as { kind: string; path: string } } : {}),
    ...(typeof option.body === 'string' ? { body: option.body } : {}),
    ...(typeof option.response_body === 'string' ? { responseBody: option.response_body } : {}),
  };
  const more = option.additional_bindings;
  const extra = Array.isArray(more) ? more : isRecord(more) ? [more] : [];
  return [rule, ...extra.filter(isRecord).flatMap((b) => rulesFromOption(b))];
}

/** Compiles one rule; throws an Error whose message says what is wrong with the template. */
export function compileRule(spec: HttpRuleSpec): CompiledRule {
  const verbs = HTTP_VERBS.filter((v) => spec[v] !== undefined);
  const count = verbs.length + (spec.custom ? 1 : 0);
  if (count !== 1) throw new Error(`a rule needs exactly one of ${HTTP_VERBS.join(', ')} or custom (found ${count})`);
  const verb = verbs.length === 1 ? verbs[0]!.toUpperCase() : spec.custom!.kind;
  const template = verbs.length === 1 ? spec[verbs[0]!]! : spec.custom!.path;
  const variables: string[] = [];
  const multiSegment: boolean[] = [];
  const source = compileTemplate(template, variables, multiSegment);
  return {
    verb,
    template,
    regex: new RegExp(`^${source}$`),
    variables,
    multiSegment,
    body: spec.body ?? '',
    responseBody: spec.responseBody ?? '',
  };
}

/** The variables' values when `path` matches the rule's template (decoded), else null. */
export function matchRule(rule: CompiledRule, path: string): Map<string, string> | null {
  const m = rule.regex.exec(path);
  if (m === null) return null;
  const out = new Map<string, string>();
  for (let i = 0; i < rule.variables.length; i++) {
    const raw = m[i + 1] ?? '';
    // A single-segment variable is decoded whole; a multi-segment one keeps its `/` (and any escaped %2F).
    out.set(
      rule.variables[i]!,
      rule.multiSegment[i]
        ? raw
            .split('/')
            .map((s) => percentDecode(s, false))
            .join('/')
        : percentDecode(raw, false),
    );
  }
  return out;
}

const LITERAL = /^[A-Za-z0-9._~!$&'()+,;=@%-]+$/;

function compileTemplate(template: string, variables: string[], multiSegment: boolean[]): string {
  if (!template.startsWith('/')) throw new Error(`the path template "${template}" must start with /`);
  let rest = template.slice(1);
  let verb = '';
  // The verb is a ':' after the last segment (outside any {variable}).
  const lastClose = rest.lastIndexOf('}');
  const colon = rest.indexOf(':', lastClose + 1);
  if (colon !== -1 && rest.indexOf('/', colon) === -1) {
    verb = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!LITERAL.test(verb)) throw new Error(`the verb ":${verb}" in "${template}" is not a literal`);
  }
  let out = '';
  for (const segment of splitSegments(rest, template)) {
    if (segment.startsWith('{')) {
      const inner = segment.slice(1, -1);
      const eq = inner.indexOf('=');
      const field = eq === -1 ? inner : inner.slice(0, eq);
      if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(field))
        throw new Error(`"${field}" in "${template}" is not a field path`);
      const sub = eq === -1 ? '*' : inner.slice(eq + 1);
      const parts = sub.split('/');
      variables.push(field);
      multiSegment.push(parts.length > 1 || parts.includes('**'));
      out += `/(${parts.map((p) => segmentSource(p, template)).join('/')})`;
    } else out += `/${segmentSource(segment, template)}`;
  }
  return out + (verb === '' ? '' : `:${escape(verb)}`);
}

/** Segments split on `/`, a `{...}` variable (which may hold `/`) kept whole. */
function splitSegments(path: string, template: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= path.length) {
    if (path[i] === '{') {
      const close = path.indexOf('}', i);
      if (close === -1) throw new Error(`"${template}" has a { without its }`);
      out.push(path.slice(i, close + 1));
      i = close + 1;
      if (i < path.length && path[i] !== '/') throw new Error(`"${template}": a variable must be a whole segment`);
      i++;
      continue;
    }
    const slash = path.indexOf('/', i);
    const end = slash === -1 ? path.length : slash;
    out.push(path.slice(i, end));
    i = end + 1;
  }
  return out;
}

function segmentSource(segment: string, template: string): string {
  if (segment === '*') return '[^/]+';
  if (segment === '**') return '.*';
  if (!LITERAL.test(segment)) throw new Error(`"${template}" has an empty or invalid segment "${segment}"`);
  return escape(segment);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function pick(o: Record<string, unknown>, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (typeof o[k] === 'string') out[k] = o[k];
  return out;
}
