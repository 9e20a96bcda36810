// The config of the grpcTranscode terminal: a JSON/HTTP API in front of a gRPC service (Envoy's grpc-json
// transcoder). Its proto file, service and methods are checked by the terminal's own check (src/terminals/).
import { z } from 'zod';

const pathTemplate = z
  .string()
  .startsWith('/', { message: 'expected a path template starting with /' })
  .meta({
    description: 'a google.api.http path template: literals, {field}, {field=a/*}, * and **',
    examples: ['/v1/things/{name}'],
  });

const httpRule = z
  .strictObject({
    get: pathTemplate.optional(),
    put: pathTemplate.optional(),
    post: pathTemplate.optional(),
    delete: pathTemplate.optional(),
    patch: pathTemplate.optional(),
    body: z
      .string()
      .optional()
      .meta({
        description: '"*": the JSON body is the request message; a field name: the body fills that field',
        examples: ['*'],
      }),
    responseBody: z
      .string()
      .optional()
      .meta({
        description: 'the field of the response message that is the HTTP body (default: the whole message)',
        examples: ['items'],
      }),
  })
  .refine((r) => ['get', 'put', 'post', 'delete', 'patch'].filter((v) => r[v as 'get'] !== undefined).length === 1, {
    message: 'expected exactly one of get, put, post, delete or patch',
  })
  .meta({
    description: 'a google.api.http rule: one method with its path template, and where the body goes',
    examples: [{ post: '/v1/greeter/hello', body: '*' }],
  });

export const grpcTranscode = z
  .strictObject({
    upstream: z
      .string()
      .min(1)
      .meta({
        description: 'the upstream serving the gRPC service (h2c on http://, TLS on https://; HTTP/2 is implied)',
        examples: ['greeter'],
      }),
    proto: z
      .string()
      .min(1)
      .meta({
        description: 'the .proto file (relative to the config file); google/api/annotations.proto is built in',
        examples: ['protos/greeter.proto'],
      }),
    service: z
      .string()
      .min(1)
      .meta({ description: 'the full name of the service', examples: ['helloworld.Greeter'] }),
    methods: z
      .array(
        z
          .strictObject({
            method: z
              .string()
              .min(1)
              .meta({ description: 'a method of the service', examples: ['SayHello'] }),
            http: httpRule,
          })
          .meta({
            description: 'one method and its HTTP rule',
            examples: [{ method: 'SayHello', http: { post: '/v1/greeter/hello', body: '*' } }],
          }),
      )
      .default([])
      .meta({
        description:
          "HTTP rules for methods whose proto has no google.api.http option (a method listed here uses this rule, not the proto's)",
        examples: [[{ method: 'SayHello', http: { post: '/v1/greeter/hello', body: '*' } }]],
      }),
    preserveProtoFieldNames: z
      .boolean()
      .default(false)
      .meta({ description: 'answer with the proto field names (snake_case) instead of their JSON (lowerCamel) names' }),
    alwaysPrintPrimitiveFields: z
      .boolean()
      .default(false)
      .meta({ description: 'print fields at their default value (0, "", false, [], {}) instead of leaving them out' }),
  })
  .meta({
    description:
      'answer JSON/HTTP requests by calling a gRPC service: unary calls answer JSON, server streaming NDJSON or SSE',
    examples: [{ upstream: 'greeter', proto: 'protos/greeter.proto', service: 'helloworld.Greeter' }],
  });

export type GrpcTranscodeConfig = z.output<typeof grpcTranscode>;
