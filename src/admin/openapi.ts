// The OpenAPI 3.1 document of the admin listener, built from the endpoint registry: each endpoint's path, method,
// auth and the zod schema that validates its body (z.toJSONSchema), so the document cannot drift from the calls.
import { z } from 'zod';
import type { AdminEndpoint } from './endpoint.ts';

const problem = {
  description: 'problem details (RFC 9457) with a stable code',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

/** `/api/upstreams/:name/targets/:target/drain` → `/api/upstreams/{name}/targets/{target}/drain`. */
function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const out = path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: out, params };
}

function operation(e: AdminEndpoint): Record<string, unknown> {
  const { params } = openApiPath(e.path);
  const op: Record<string, unknown> = {
    summary: e.summary ?? `${e.method} ${e.path}`,
    operationId: `${e.method.toLowerCase()}${e.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string = '') => c.toUpperCase())}`,
    responses: {
      '200': { description: 'success' },
      ...(e.auth === 'token' ? { '401': problem } : {}),
      '500': problem,
    },
  };
  if (e.auth === 'token') op.security = [{ bearer: [] }];
  else op.security = [];
  const parameters = [
    ...params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
    ...(e.query ?? []).map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } })),
  ];
  if (parameters.length > 0) op.parameters = parameters;
  if (e.body !== undefined) {
    const schema = z.toJSONSchema(e.body, { io: 'input', unrepresentable: 'any' });
    delete (schema as Record<string, unknown>).$schema;
    const types =
      (schema as { type?: string }).type === 'string' ? ['application/yaml', 'application/json'] : ['application/json'];
    op.requestBody = { required: true, content: Object.fromEntries(types.map((t) => [t, { schema }])) };
    (op.responses as Record<string, unknown>)['400'] = problem;
  }
  return op;
}

export function openApiDocument(endpoints: readonly AdminEndpoint[]): object {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const e of endpoints) {
    const { path } = openApiPath(e.path);
    (paths[path] ??= {})[e.method.toLowerCase()] = operation(e);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Turnpike admin API',
      version: '1',
      description: 'The admin listener (admin.address:admin.port): health probes, metrics and the admin API.',
    },
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'one of admin.auth.tokens' } },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'code'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            code: { type: 'string' },
            detail: { type: 'string' },
          },
        },
      },
    },
  };
}
