// The soap plugin's XML: a JSON object written as the operation element of a SOAP envelope, and an envelope read
// back (its Body's first child as JSON, or its Fault). Pure functions, no I/O.
import { XMLParser } from 'fast-xml-parser';

export const ENVELOPE_NS = {
  '1.1': 'http://schemas.xmlsoap.org/soap/envelope/',
  '1.2': 'http://www.w3.org/2003/05/soap-envelope',
} as const;
export type SoapVersion = keyof typeof ENVELOPE_NS;

/** What the client sent cannot become XML (a name that is not an XML name, a character XML 1.0 cannot carry). */
export class SoapInputError extends Error {}

/** An element or attribute name: XML's Name without `:` (namespaces are the operation's) and without non-ASCII. */
export const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;
/** Characters XML 1.0 cannot carry at all, even escaped. */
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;
const MAX_DEPTH = 64;

function escapeText(s: string): string {
  if (NOT_XML.test(s)) throw new SoapInputError('a value holds a control character XML cannot carry');
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttribute(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}

function checkName(name: string): string {
  if (!XML_NAME.test(name)) throw new SoapInputError(`"${name.slice(0, 64)}" is not an XML element name`);
  return name;
}

function scalar(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}

/**
 * `value` as the content of an element: members become child elements (arrays repeat the element), `@_name`
 * members attributes of the element, `#text` its text, null an empty element; scalars are text.
 */
function content(value: unknown, depth: number): { attributes: string; children: string } {
  if (depth > MAX_DEPTH) throw new SoapInputError(`nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) return { attributes: '', children: '' };
  if (typeof value !== 'object') return { attributes: '', children: escapeText(scalar(value)) };
  let attributes = '';
  let children = '';
  for (const [key, member] of Object.entries(value as Record<string, unknown>)) {
    if (key.startsWith('@_')) {
      if (member !== null && typeof member === 'object')
        throw new SoapInputError(`the attribute "${key}" must be a string, number or boolean`);
      attributes += ` ${checkName(key.slice(2))}="${escapeAttribute(scalar(member))}"`;
    } else if (key === '#text') {
      if (member !== null) children += escapeText(scalar(member));
    } else if (Array.isArray(member)) {
      for (const item of member) children += element(key, item, depth + 1);
    } else {
      children += element(key, member, depth + 1);
    }
  }
  return { attributes, children };
}

function element(name: string, value: unknown, depth: number): string {
  checkName(name);
  const { attributes, children } = content(value, depth);
  return children === '' ? `<${name}${attributes}/>` : `<${name}${attributes}>${children}</${name}>`;
}

/** The envelope text before and after the operation element's content, made once per plugin instance. */
export function envelopeParts(version: SoapVersion, operation: string, namespace: string): [string, string] {
  const open =
    `<?xml version="1.0" encoding="utf-8"?>` +
    `<soap:Envelope xmlns:soap="${ENVELOPE_NS[version]}"><soap:Body>` +
    `<${operation} xmlns="${escapeAttribute(namespace)}"`;
  return [open, `</${operation}></soap:Body></soap:Envelope>`];
}

/** The envelope for a JSON object `args` (the members of the operation element). */
export function envelope(parts: readonly [string, string], args: object): string {
  const { attributes, children } = content(args, 0);
  return `${parts[0]}${attributes}>${children}${parts[1]}`;
}

export type SoapAnswer =
  | { readonly kind: 'result'; readonly value: unknown }
  | { readonly kind: 'fault'; readonly code: string; readonly reason: string }
  | { readonly kind: 'invalid'; readonly message: string };

// Namespace prefixes dropped (soap:, soapenv:, env: all read alike), attributes as `@_name`, values kept as
// text here and typed below (numbers only when the text is exactly the number's own spelling).
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  // Character references (&#65;) are decoded only with this (and a fixed table of HTML names, no expansion).
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
});

/** Reads a SOAP envelope: the first child of its Body as JSON, its Fault, or why it is no envelope. */
export function readEnvelope(text: string): SoapAnswer {
  // No DOCTYPE means no entity declarations: only the five predefined entities and character references (no XXE,
  // no entity expansion).
  if (/<!DOCTYPE/i.test(text)) return { kind: 'invalid', message: 'a DOCTYPE is not accepted' };
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(text, true) as Record<string, unknown>;
  } catch (err) {
    return { kind: 'invalid', message: (err as Error).message };
  }
  const env = doc.Envelope;
  if (env === null || typeof env !== 'object' || Array.isArray(env))
    return { kind: 'invalid', message: 'no SOAP Envelope element' };
  const body = (env as Record<string, unknown>).Body;
  if (body === '' || body === undefined) {
    if (body === undefined) return { kind: 'invalid', message: 'no SOAP Body element' };
    return { kind: 'result', value: null }; // an empty Body: a one-way operation's answer
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return { kind: 'invalid', message: 'no SOAP Body element' };
  const first = Object.keys(body).find((k) => !k.startsWith('@_') && k !== '#text');
  if (first === undefined) return { kind: 'result', value: null };
  const child = (body as Record<string, unknown>)[first];
  const value = Array.isArray(child) ? child[0] : child;
  if (first === 'Fault') return fault(value);
  return { kind: 'result', value: typed(value) };
}

/** SOAP 1.1 faultcode/faultstring, or SOAP 1.2 Code/Value and Reason/Text (the first one). */
function fault(value: unknown): SoapAnswer {
  const f = (value !== null && typeof value === 'object' ? value : {}) as Record<string, unknown>;
  if ('Code' in f || 'Reason' in f) {
    const code = f.Code as Record<string, unknown> | undefined;
    const reason = f.Reason as Record<string, unknown> | undefined;
    return { kind: 'fault', code: text(code?.Value), reason: text(reason?.Text) };
  }
  return { kind: 'fault', code: text(f.faultcode), reason: text(f.faultstring) };
}

/** An element's text (the first of repeated ones; `#text` of one with attributes, such as xml:lang). */
function text(value: unknown): string {
  if (Array.isArray(value)) return text(value[0]);
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return text((value as Record<string, unknown>)['#text']);
  return String(value);
}

const NUMBER = /^-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?$/;

/** Text leaves as JSON values: `true`/`false`, numbers spelled as JSON spells them; namespace declarations dropped. */
function typed(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value === 'true') return true;
    if (value === 'false') return false;
    if (NUMBER.test(value)) {
      const n = Number(value);
      if (String(n) === value) return n; // 1.50 or 0.10000000000000001 stay text: no digit is lost
    }
    return value;
  }
  if (Array.isArray(value)) return value.map(typed);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(value)) {
    if (key === '@_xmlns' || key.startsWith('@_xmlns:')) continue;
    out[key] = typed(member);
  }
  return out;
}
