// request-validation: refuses requests that do not match an API description before they reach the service.
// `openapi: FILE` (OpenAPI 3.0 or 3.1) checks the operation (404, 405 with Allow), path, query, header and cookie
// parameters, the content type and a JSON body; `schema: FILE` checks a JSON body against a JSON Schema. Both are
// compiled once at load with ajv. A bad request answers 400 with up to 20 errors. `response: true` also holds an
// upstream JSON response whole (within maxBodySize) and answers 502 with a log line when it breaks the contract.
import { z } from 'zod';
import { ERRORS } from '../errors.ts';
import { PROBLEM_TYPE, problemBody, problemReply } from '../pipeline/problem.ts';
import { hasRequestBody, readRequestBody, replaceRequestBody } from '../pipeline/request-body.ts';
import type { Reply, RequestContext, ResponseHead } from '../request-context.ts';
import { askForWholeBody, isJsonType, requestContentType } from './body-support.ts';
import { answers, continues } from './explain-support.ts';
import {
  checkJson,
  checkParams,
  findOperation,
  mediaFor,
  mediaType,
  type ValidationError,
} from './openapi/check-request.ts';
import { compileSpec, type CompiledSpec, type MediaValidator, type Operation } from './openapi/compile.ts';
import { loadSpec, SpecError } from './openapi/spec.ts';
import { definePlugin } from './types.ts';

/** At most this many errors are listed in a 400 (errorCount says how many there were). */
const MAX_ERRORS = 20;
/** Without an API description of the operation, these methods must carry the body `schema:` describes. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

const schema = z
  .strictObject({
    openapi: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'an OpenAPI 3.0 or 3.1 document (YAML or JSON; relative to the config file)',
        examples: ['specs/checkout.yaml'],
      }),
    schema: z
      .string()
      .min(1)
      .optional()
      .meta({
        description: 'a JSON Schema (draft-07 or 2020-12) for the JSON request body (YAML or JSON)',
        examples: ['schemas/order.json'],
      }),
    response: z.boolean().default(false).meta({
      description:
        "also check upstream JSON responses against the OpenAPI document (502 and a log line when they don't match)",
    }),
  })
  .refine((c) => (c.openapi === undefined) !== (c.schema === undefined), {
    message: 'request-validation takes one of openapi or schema',
  })
  .refine((c) => !(c.response && c.schema !== undefined), {
    message: 'response: true needs openapi (a JSON Schema describes the request body only)',
    path: ['response'],
  });

type Config = z.infer<typeof schema>;

function load(config: Config, configDir: string): CompiledSpec {
  return config.openapi !== undefined
    ? compileSpec(loadSpec(config.openapi, configDir, 'openapi'))
    : compileSpec(loadSpec(config.schema!, configDir, 'schema'));
}

function invalid(errors: readonly ValidationError[], requestId: string): Reply {
  const problem = JSON.parse(
    problemBody('TP_REQUEST_INVALID', `${errors.length} error(s) against the API description`, requestId),
  ) as Record<string, unknown>;
  return {
    status: ERRORS.TP_REQUEST_INVALID.status,
    headers: { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store' },
    body: JSON.stringify({ ...problem, errorCount: errors.length, errors: errors.slice(0, MAX_ERRORS) }),
    code: 'TP_REQUEST_INVALID',
  };
}

/** The body's errors, once it is read whole (the read body is what goes upstream), or a 413. */
async function bodyErrors(
  ctx: RequestContext,
  max: number,
  check: (body: Buffer) => ValidationError[],
): Promise<ValidationError[] | Reply> {
  const body = await readRequestBody(ctx, max);
  if (!Buffer.isBuffer(body)) return body;
  replaceRequestBody(ctx, body, null);
  return check(body);
}

/** What a request's content type and body owe the operation (the body itself is read only when it is JSON). */
function checkBody(
  ctx: RequestContext,
  operation: Operation,
  max: number,
): ValidationError[] | Promise<ValidationError[] | Reply> {
  const spec = operation.body;
  if (spec === null) return [];
  if (!hasRequestBody(ctx)) return spec.required ? [{ in: 'body', pointer: '', message: 'is required' }] : [];
  const type = mediaType(requestContentType(ctx));
  const media = mediaFor(spec.media, type);
  if (media === undefined) {
    const expected = spec.media.map((m) => m.range).join(', ');
    return [
      {
        in: 'header',
        pointer: '/content-type',
        message: type === '' ? `is missing; expected one of: ${expected}` : `${type} is not one of: ${expected}`,
      },
    ];
  }
  if (media.validate === null || !isJsonType(type)) return [];
  const validate = media.validate;
  return bodyErrors(ctx, max, (body) => checkJson(validate, body, 'body'));
}

/** The response's media types by status: exact, then `2XX`, then `default`; undefined when undocumented. */
function responseMedia(operation: Operation, status: number): readonly MediaValidator[] | undefined {
  const r = operation.responses;
  return r.get(String(status)) ?? r.get(`${Math.floor(status / 100)}XX`) ?? r.get('DEFAULT');
}

export const requestValidationPlugin = definePlugin({
  name: 'request-validation',
  phase: 'transform-request',
  responsePhase: 'transform-response',
  description:
    'Checks requests against an OpenAPI 3.0/3.1 document (operation, parameters, content type, JSON body) or a JSON Schema for the body: 400 with every error; `response: true` checks upstream responses too (502)',
  schema,
  check(config, env) {
    if (!env.readFiles) return [];
    try {
      load(config, env.configDir);
      return [];
    } catch (err) {
      const message = err instanceof SpecError ? err.message : `cannot load: ${(err as Error).message}`;
      return [{ path: [config.openapi !== undefined ? 'openapi' : 'schema'], message, code: 'TP_CONFIG_FILE' }];
    }
  },
  create(config, env) {
    const spec = load(config, env.configDir);
    const max = env.maxBodySize;
    const file = config.openapi ?? config.schema!;
    /** The operation of each request whose response is checked. */
    const operations = config.response ? new WeakMap<RequestContext, Operation>() : null;

    const contractBroken = (
      ctx: RequestContext,
      operation: Operation,
      status: number,
      errors: readonly ValidationError[],
    ): Reply => {
      env.logThrottled(
        `request-validation:${env.routeName}:${operation.label}`,
        'an upstream response does not match the API description',
        {
          route: env.routeName,
          operation: operation.label,
          status,
          errors: errors.slice(0, MAX_ERRORS),
          requestId: ctx.requestId,
        },
      );
      return problemReply(
        'TP_UPSTREAM_CONTRACT',
        `the ${status} response does not match ${operation.label}`,
        ctx.requestId,
      );
    };

    /** Finds the operation and checks its parameters: a Reply, or the operation and the errors so far. */
    const locate = (ctx: RequestContext): Reply | { operation: Operation; errors: ValidationError[] } => {
      const found = findOperation(spec, ctx.req.method ?? 'GET', ctx.path);
      if (found.kind === 'no-path')
        return problemReply('TP_OPERATION_NOT_FOUND', `${ctx.path} is not a path of ${file}`, ctx.requestId);
      if (found.kind === 'no-method')
        return problemReply(
          'TP_METHOD_NOT_ALLOWED',
          `${ctx.req.method} is not an operation of this path`,
          ctx.requestId,
          {
            allow: found.allow,
          },
        );
      return { operation: found.operation, errors: checkParams(ctx, found.operation, found.pathParams) };
    };

    const checkSchemaBody = (ctx: RequestContext): ValidationError[] | Promise<ValidationError[] | Reply> => {
      if (!hasRequestBody(ctx))
        return BODY_METHODS.has(ctx.req.method ?? '') ? [{ in: 'body', pointer: '', message: 'is required' }] : [];
      const type = requestContentType(ctx);
      if (type === undefined || !isJsonType(type))
        return [
          { in: 'header', pointer: '/content-type', message: `${mediaType(type) || 'a missing type'} is not JSON` },
        ];
      return bodyErrors(ctx, max, (body) => checkJson(spec.bodySchema!, body, 'body'));
    };

    /** The verdict once the body's errors are known (a Reply: the body was too large). */
    const verdict = (
      ctx: RequestContext,
      errors: ValidationError[],
      body: ValidationError[] | Reply,
    ): Reply | undefined => {
      if (!Array.isArray(body)) return body;
      errors.push(...body);
      return errors.length === 0 ? undefined : invalid(errors, ctx.requestId);
    };

    // Synchronous unless a JSON body must be read.
    const request = (ctx: RequestContext): Reply | undefined | Promise<Reply | undefined> => {
      let errors: ValidationError[];
      let body: ValidationError[] | Promise<ValidationError[] | Reply>;
      if (spec.kind === 'schema') {
        errors = [];
        body = checkSchemaBody(ctx);
      } else {
        const located = locate(ctx);
        if (!('operation' in located)) return located;
        errors = located.errors;
        body = checkBody(ctx, located.operation, max);
        if (operations !== null) {
          operations.set(ctx, located.operation);
          askForWholeBody(ctx);
        }
      }
      return Array.isArray(body) ? verdict(ctx, errors, body) : body.then((b) => verdict(ctx, errors, b));
    };

    const response =
      operations === null
        ? undefined
        : (ctx: RequestContext, head: ResponseHead): void => {
            const operation = operations.get(ctx);
            const body = head.body;
            if (operation === undefined || body === null || ctx.req.method === 'HEAD') return;
            if (head.status === 204 || head.status === 304 || head.status < 200) return;
            const media = responseMedia(operation, head.status);
            // An undocumented status, or one documented without content: nothing to hold the body against.
            if (media === undefined || media.length === 0) return;
            const type = mediaType(
              head.headers['content-type'] === undefined ? undefined : String(head.headers['content-type']),
            );
            const status = head.status;
            const matched = mediaFor(media, type);
            const coding = head.headers['content-encoding'];
            const problem: ValidationError | null =
              matched === undefined
                ? {
                    in: 'header',
                    pointer: '/content-type',
                    message: `${type || 'a missing type'} is not one of: ${media.map((m) => m.range).join(', ')}`,
                  }
                : coding !== undefined && String(coding) !== 'identity'
                  ? {
                      in: 'header',
                      pointer: '/content-encoding',
                      message: `${String(coding)}: an encoded body cannot be checked`,
                    }
                  : null;
            if (problem !== null) {
              body.rewrite(() => contractBroken(ctx, operation, status, [problem]));
              return;
            }
            const validate = matched!.validate;
            if (validate === null || !isJsonType(type)) return;
            body.rewrite((buf) => {
              const errors = checkJson(validate, buf, 'body');
              return errors.length === 0 ? buf : contractBroken(ctx, operation, status, errors);
            });
          };

    const kindLine = config.openapi !== undefined ? `OpenAPI ${file}` : `JSON Schema ${file} (request body)`;
    return {
      request,
      response,
      explain(ctx) {
        if (spec.kind === 'schema')
          return continues(`checks a JSON request body against ${kindLine}`, { schema: file, maxBodySize: max });
        const located = locate(ctx);
        if (!('operation' in located)) return answers(located, 'not an operation of the API description');
        if (located.errors.length > 0)
          return answers(invalid(located.errors, ctx.requestId), 'parameters do not match');
        const op = located.operation;
        const checks = [
          'parameters match',
          op.body !== null ? 'the content type and a JSON body are checked when the body arrives' : '',
          config.response ? 'JSON responses are checked (502 when they do not match)' : '',
        ].filter((p) => p !== '');
        return continues(
          `operation ${op.label}${op.operationId !== null ? ` (${op.operationId})` : ''} of ${kindLine}: ${checks.join('; ')}`,
          {
            openapi: file,
            operation: op.label,
            operationId: op.operationId,
            response: config.response,
          },
        );
      },
    };
  },
});
