// xml: JSON <-> XML bodies with fast-xml-parser, either way on each side (a JSON client in front of an XML
// backend, and back). Attributes are `@_name` members, text beside attributes `#text`, repeated elements arrays
// (`arrays` names elements that are arrays even when alone). A document with a DOCTYPE is refused (no entity
// definitions, so no XXE and no entity expansion bomb); only XML's own entities and character references expand.
// Bodies are held whole within the route's maxBodySize; one that does not parse answers 400 (request) or 502
// (response) with the parser's message. Its response hook runs in the transform-response phase in list order.
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { z } from 'zod';
import { askForWholeBody, isJsonType, isXmlType, rewritableBody, rewriteRequest } from './body-support.ts';
import { continues } from './explain-support.ts';
import { parsePath } from './json-path.ts';
import { definePlugin } from './types.ts';

const XML_NAME = /^[\p{L}_][\p{L}\p{N}_.-]*(:[\p{L}_][\p{L}\p{N}_.-]*)?$/u;
const DOCTYPE = /<!DOCTYPE/i;
const ATTRIBUTE = '@_';
const TEXT = '#text';

const direction = z.enum(['json-to-xml', 'xml-to-json']);

const schema = z
  .strictObject({
    request: direction.optional().meta({ description: 'how the request body is converted before it goes upstream' }),
    response: direction.optional().meta({ description: 'how the response body is converted for the client' }),
    root: z
      .string()
      // ASCII here: the JSON Schema's pattern drops the u flag that \p{L} needs.
      .regex(/^[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_.-]*)?$/, { message: 'expected an XML element name' })
      .optional()
      .meta({
        description:
          'the root element: JSON is wrapped in it on the way to XML, and unwrapped from it on the way to JSON (without it, the JSON has the root element as its one member)',
        examples: ['order'],
      }),
    arrays: z
      .array(
        z.string().superRefine((text, ctx) => {
          try {
            if (parsePath(text).some((s) => !('name' in s))) throw new Error('names only');
          } catch (err) {
            ctx.addIssue({
              code: 'custom',
              message: `expected a path of names such as $.items: ${(err as Error).message}`,
            });
          }
        }),
      )
      .default([])
      .meta({
        description: 'elements that are JSON arrays even when they occur once (paths in the JSON)',
        examples: [['$.items']],
      }),
  })
  .refine((c) => c.request !== undefined || c.response !== undefined, {
    message: 'xml needs request, response or both',
  });

type XmlConfig = z.infer<typeof schema>;

/** Refuses what the builder would write as broken or injected XML: names that are not XML names, nested attributes. */
function checkNames(value: unknown, where: string): void {
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkNames(v, `${where}[${i}]`));
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key === TEXT) continue;
    if (key.startsWith(ATTRIBUTE)) {
      if (!XML_NAME.test(key.slice(ATTRIBUTE.length)))
        throw new Error(`${where}: "${key}" is not an XML attribute name`);
      if (typeof v === 'object' && v !== null)
        throw new Error(`${where}.${key}: an attribute takes a string, number or boolean`);
      continue;
    }
    if (!XML_NAME.test(key)) throw new Error(`${where}: "${key}" is not an XML element name`);
    checkNames(v, `${where}.${key}`);
  }
}

export function compileXml(config: Pick<XmlConfig, 'root' | 'arrays'>, maxExpandedLength: number) {
  const root = config.root;
  const arrays = new Set(
    config.arrays.map((p) =>
      [...(root === undefined ? [] : [root]), ...parsePath(p).map((s) => (s as { name: string }).name)].join('.'),
    ),
  );
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: ATTRIBUTE,
    textNodeName: TEXT,
    ignoreDeclaration: true,
    ignorePiTags: true,
    htmlEntities: false,
    // "00042" stays a string (a customer number), as does 0x1F.
    numberParseOptions: { hex: false, leadingZeros: false, eNotation: true },
    processEntities: { enabled: true, maxTotalExpansions: 10_000, maxExpandedLength },
    isArray: (_name, jPath, _leaf, isAttribute) => !isAttribute && arrays.has(String(jPath)),
  });
  const builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: ATTRIBUTE,
    textNodeName: TEXT,
    suppressBooleanAttributes: false,
    processEntities: true,
  });

  const toJson = (body: Buffer): Buffer => {
    const text = body.toString('utf8');
    if (DOCTYPE.test(text)) throw new Error('a DOCTYPE is not allowed (no entity definitions)');
    let doc = parser.parse(text, true) as Record<string, unknown>;
    if (root !== undefined) {
      const names = Object.keys(doc);
      if (names.length !== 1 || names[0] !== root)
        throw new Error(`expected the root element <${root}>, found <${names.join('>, <') || 'nothing'}>`);
      const inner = doc[root];
      // <order/> (or only text) is not an object: it is the JSON document as it is.
      doc = inner as Record<string, unknown>;
    }
    return Buffer.from(JSON.stringify(doc));
  };

  const toXml = (body: Buffer): Buffer => {
    const doc: unknown = JSON.parse(body.toString('utf8'));
    let wrapped: Record<string, unknown>;
    if (root !== undefined) wrapped = { [root]: doc };
    else {
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || Object.keys(doc).length !== 1)
        throw new Error('expected an object with one member, the root element (or set root)');
      wrapped = doc as Record<string, unknown>;
    }
    if (Array.isArray(wrapped[Object.keys(wrapped)[0]!]))
      throw new Error('the root element cannot be an array (XML has one root)');
    checkNames(wrapped, '$');
    return Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(wrapped) as string}`);
  };
  return { toJson, toXml };
}

const JSON_TYPE = 'application/json';
const XML_TYPE = 'application/xml';

export const xmlPlugin = definePlugin({
  name: 'xml',
  phase: 'transform-request',
  responsePhase: 'transform-response',
  description:
    'Converts JSON to XML or XML to JSON on request and response bodies (attributes as @_name; DOCTYPE refused; bodies held whole within maxBodySize)',
  schema,
  create(config, env) {
    const max = env.maxBodySize;
    const { toJson, toXml } = compileXml(config, max);
    const requestStage =
      config.request === undefined
        ? null
        : config.request === 'json-to-xml'
          ? (body: Buffer) => ({ body: toXml(body), type: XML_TYPE })
          : (body: Buffer) => ({ body: toJson(body), type: JSON_TYPE });
    const requestTakes = config.request === 'json-to-xml' ? isJsonType : isXmlType;
    const toClient = config.response;
    const responseTakes = (type: string | undefined) =>
      type !== undefined && (toClient === 'xml-to-json' ? isXmlType(type) : isJsonType(type));
    const summary = [
      config.request !== undefined ? `request bodies ${config.request}` : '',
      toClient !== undefined ? `response bodies ${toClient}` : '',
    ]
      .filter((p) => p !== '')
      .join(', ');
    return {
      request(ctx) {
        if (toClient !== undefined) {
          askForWholeBody(ctx);
          // The upstream speaks the other format: it is asked for that one.
          ctx.setRequestHeader('accept', toClient === 'xml-to-json' ? XML_TYPE : JSON_TYPE);
        }
        if (requestStage === null) return undefined;
        return rewriteRequest(ctx, max, requestTakes, requestStage);
      },
      response:
        toClient === undefined
          ? undefined
          : (ctx, head) => {
              const body = rewritableBody(ctx, head, responseTakes);
              if (body === null) return;
              head.headers['content-type'] = toClient === 'xml-to-json' ? JSON_TYPE : `${XML_TYPE}; charset=utf-8`;
              body.rewrite(toClient === 'xml-to-json' ? toJson : toXml);
            },
      explain: () =>
        continues(`${summary}${config.root !== undefined ? `, root <${config.root}>` : ''}`, { maxBodySize: max }),
    };
  },
});
