// soap: a JSON API in front of a SOAP service. The client POSTs a JSON object; the upstream gets a SOAP 1.1 (or
// 1.2) envelope whose Body holds the `operation` element (in `namespace`) with the object's members as children,
// and the SOAPAction. The answer's first Body child comes back as JSON; a Fault as problem+json (502, or
// `faultStatus`) with its code and string. Both bodies are read whole, up to the route's maxBodySize.
import { z } from 'zod';
import { ERRORS, type ErrorCode } from '../errors.ts';
import { PROBLEM_TYPE, problemReply } from '../pipeline/problem.ts';
import { hasRequestBody, readRequestBody, replaceRequestBody, setRequestHeaderOnce } from '../pipeline/request-body.ts';
import type { Reply, RequestContext } from '../request-context.ts';
import { answers, continues } from './explain-support.ts';
import { envelope, envelopeParts, readEnvelope, SoapInputError, XML_NAME } from './soap-xml.ts';
import { definePlugin } from './types.ts';

const schema = z.strictObject({
  action: z
    .string()
    .regex(/^[^"\\\u0000-\u001f\u007f]*$/, { message: 'expected a URI without quotes or control characters' })
    .default('')
    .meta({
      description: 'the SOAPAction (1.1: the header; 1.2: the action parameter of the type)',
      examples: ['urn:GetQuote'],
    }),
  namespace: z
    .string()
    .min(1)
    .meta({ description: 'the namespace of the operation element', examples: ['urn:quotes'] }),
  operation: z
    .string()
    .regex(XML_NAME, { message: 'expected an XML element name (letters, digits, _ . -)' })
    .meta({ description: 'the element the JSON members go in, the first child of the Body', examples: ['GetQuote'] }),
  version: z
    .enum(['1.1', '1.2'])
    .default('1.1')
    .meta({ description: 'the SOAP version', examples: ['1.2'] }),
  faultStatus: z
    .number()
    .int()
    .min(400)
    .max(599)
    .default(502)
    .meta({ description: 'the status of the problem a SOAP Fault becomes', examples: [500] }),
});

const XML_TYPE = /^\s*(text\/xml|application\/([a-z0-9.+-]+\+)?xml)\s*(;|$)/i;

function problem(code: ErrorCode, detail: string, requestId: string): Reply {
  return problemReply(code, detail, requestId);
}

export const soapPlugin = definePlugin({
  name: 'soap',
  phase: 'transform-request',
  // The answer is unwrapped in transform-response (list order there), so before compress and the cache's tap.
  responsePhase: 'transform-response',
  description:
    'Puts a JSON API in front of a SOAP 1.1/1.2 service: the JSON body becomes the envelope, the answer JSON, a Fault problem+json',
  schema,
  create(config, env) {
    const max = env.maxBodySize;
    const v11 = config.version === '1.1';
    const requestType = v11
      ? 'text/xml; charset=utf-8'
      : `application/soap+xml; charset=utf-8${config.action === '' ? '' : `; action="${config.action}"`}`;
    const parts = envelopeParts(config.version, config.operation, config.namespace);
    const notPost = (requestId: string) =>
      problemReply('TP_METHOD_NOT_ALLOWED', 'the soap plugin takes a POST with a JSON body', requestId, {
        allow: 'POST',
      });

    /** The envelope for the client's JSON body, or the 400 it gets instead. */
    const wrap = (body: Buffer, ctx: RequestContext): Buffer | Reply => {
      const text = body.toString('utf8').trim();
      let args: unknown = {};
      if (text !== '') {
        try {
          args = JSON.parse(text);
        } catch (err) {
          return problem('TP_SOAP_BAD_REQUEST', (err as Error).message, ctx.requestId);
        }
      }
      if (args === null || typeof args !== 'object' || Array.isArray(args))
        return problem('TP_SOAP_BAD_REQUEST', 'the body must be a JSON object', ctx.requestId);
      try {
        return Buffer.from(envelope(parts, args));
      } catch (err) {
        if (err instanceof SoapInputError) return problem('TP_SOAP_BAD_REQUEST', err.message, ctx.requestId);
        throw err;
      }
    };

    /** The answer's JSON, or the problem sent instead (a Fault, an answer that is no envelope). */
    const unwrap = (body: Buffer, ctx: RequestContext): Buffer | Reply => {
      const answer = readEnvelope(body.toString('utf8'));
      if (answer.kind === 'result') return Buffer.from(JSON.stringify(answer.value ?? null));
      if (answer.kind === 'invalid') return problem('TP_SOAP_BAD_RESPONSE', answer.message, ctx.requestId);
      const code: ErrorCode = 'TP_SOAP_FAULT';
      return {
        status: config.faultStatus,
        headers: { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store' },
        body: JSON.stringify({
          type: `urn:turnpike:error:${code}`,
          title: ERRORS[code].title,
          status: config.faultStatus,
          code,
          ...(answer.reason !== '' ? { detail: answer.reason } : {}),
          faultCode: answer.code,
          faultString: answer.reason,
          requestId: ctx.requestId,
        }),
        code,
      };
    };

    return {
      request(ctx) {
        if (ctx.req.method !== 'POST') return notPost(ctx.requestId);
        if (v11) ctx.setRequestHeader('soapaction', `"${config.action}"`);
        setRequestHeaderOnce(ctx, 'accept', v11 ? 'text/xml' : 'application/soap+xml');
        // The answer is parsed here: it must come unencoded; the envelope is sent unencoded.
        setRequestHeaderOnce(ctx, 'accept-encoding', 'identity');
        ctx.removeRequestHeader('content-encoding');
        const apply = (body: Buffer | Reply): Reply | undefined => {
          if (!Buffer.isBuffer(body)) return body; // 413
          const out = wrap(body, ctx);
          if (!Buffer.isBuffer(out)) return out;
          replaceRequestBody(ctx, out, requestType);
          return undefined;
        };
        // No body at all is `{}`: the envelope is sent all the same.
        if (!hasRequestBody(ctx)) return apply(Buffer.alloc(0));
        const body = readRequestBody(ctx, max);
        return Buffer.isBuffer(body) ? apply(body) : body.then(apply);
      },
      response(ctx, head) {
        const body = head.body;
        if (body === null || ctx.req.method === 'HEAD' || head.status === 204 || head.status === 304) return;
        const type = String(head.headers['content-type'] ?? '');
        // An HTTP error that is no SOAP answer (a proxy's 503 page) goes on as it is.
        if (head.status >= 300 && !XML_TYPE.test(type)) return;
        head.headers['content-type'] = 'application/json';
        delete head.headers['content-length'];
        const etag = head.headers.etag;
        if (typeof etag === 'string' && !etag.startsWith('W/')) head.headers.etag = `W/${etag}`;
        delete head.headers['accept-ranges'];
        body.rewrite((whole) => unwrap(whole, ctx));
      },
      explain(ctx) {
        if (ctx.req.method !== 'POST') return answers(notPost(ctx.requestId), 'not a POST');
        return continues(
          `the JSON body as a SOAP ${config.version} ${config.operation} call (namespace ${config.namespace}` +
            `${config.action === '' ? '' : `, action ${config.action}`}); the answer as JSON, a Fault as ${config.faultStatus}`,
          {
            version: config.version,
            operation: config.operation,
            namespace: config.namespace,
            action: config.action,
            faultStatus: config.faultStatus,
          },
        );
      },
    };
  },
});
