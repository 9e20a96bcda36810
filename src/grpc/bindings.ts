// A grpcTranscode route's table: each HTTP rule bound to its gRPC method, built once per snapshot from the proto
// (google.api.http options) and the route's `methods:` list; and the request message built from one request's
// path variables, query and JSON body as the rule says.
import type * as Protobuf from 'protobufjs';
import type { GrpcTranscodeConfig } from '../config/grpc-transcode-schema.ts';
import { parseQuery } from '../http/query.ts';
import { compileRule, matchRule, rulesFromOption, type CompiledRule, type HttpRuleSpec } from './http-rule.ts';
import { BadMessageError, coversField, fieldOf, fromJson, setFromString } from './json-mapping.ts';
import type { LoadedService } from './proto-load.ts';

export interface Binding {
  readonly rule: CompiledRule;
  /** The gRPC path: /package.Service/Method. */
  readonly path: string;
  readonly methodName: string;
  readonly requestType: Protobuf.Type;
  readonly responseType: Protobuf.Type;
  readonly serverStreaming: boolean;
}

/** A problem with the route's methods, at a key path under grpcTranscode (for the config check). */
export interface BindingProblem {
  readonly path: (string | number)[];
  readonly message: string;
}

/** Every rule of the service's methods; `problems` gets what is wrong (unknown methods, bad templates ...). */
export function buildBindings(
  loaded: LoadedService,
  config: Pick<GrpcTranscodeConfig, 'methods' | 'proto'>,
  problems: BindingProblem[],
): Binding[] {
  const service = loaded.service;
  const fullName = service.fullName.replace(/^\./, '');
  const fromConfig = new Map<string, { spec: HttpRuleSpec; at: (string | number)[] }[]>();
  config.methods.forEach((m, i) => {
    const method = service.methods[m.method];
    if (method === undefined) {
      problems.push({
        path: ['methods', i, 'method'],
        message: `${fullName} has no method "${m.method}" (methods: ${Object.keys(service.methods).join(', ')})`,
      });
      return;
    }
    const list = fromConfig.get(m.method) ?? [];
    list.push({ spec: m.http, at: ['methods', i, 'http'] });
    fromConfig.set(m.method, list);
  });
  const bindings: Binding[] = [];
  for (const method of service.methodsArray) {
    const listed = fromConfig.get(method.name);
    const specs =
      listed ??
      (method.parsedOptions as Record<string, unknown>[] | undefined)
        ?.map((o) => o['(google.api.http)'])
        .filter((o): o is Record<string, unknown> => o !== null && typeof o === 'object')
        .flatMap((o) => rulesFromOption(o).map((spec) => ({ spec, at: ['proto'] as (string | number)[] }))) ??
      [];
    if (specs.length === 0) continue;
    if (method.requestStream) {
      problems.push({
        path: listed ? specs[0]!.at.slice(0, -1) : ['service'],
        message: `${fullName}.${method.name} streams its requests: only unary and server-streaming methods can be transcoded`,
      });
      continue;
    }
    const requestType = method.resolvedRequestType!;
    const responseType = method.resolvedResponseType!;
    for (const { spec, at } of specs) {
      const where = listed ? '' : `${config.proto}: ${method.name}: `;
      let rule: CompiledRule;
      try {
        rule = compileRule(spec);
        for (const v of rule.variables) checkFieldPath(requestType, v, 'the path variable');
        if (rule.body !== '' && rule.body !== '*') checkFieldPath(requestType, rule.body, 'body');
        if (rule.responseBody !== '') checkFieldPath(responseType, rule.responseBody, 'responseBody');
      } catch (err) {
        problems.push({ path: at, message: where + (err as Error).message });
        continue;
      }
      bindings.push({
        rule,
        path: `/${fullName}/${method.name}`,
        methodName: method.name,
        requestType,
        responseType,
        serverStreaming: method.responseStream === true,
      });
    }
  }
  if (bindings.length === 0 && problems.length === 0)
    problems.push({
      path: ['service'],
      message: `no method of ${fullName} has a google.api.http option: list them under methods`,
    });
  return bindings;
}

function checkFieldPath(type: Protobuf.Type, path: string, what: string): void {
  let t: Protobuf.Type | null = type;
  for (const name of path.split('.')) {
    const field: Protobuf.Field | undefined = t === null ? undefined : fieldOf(t, name);
    if (field === undefined) throw new Error(`${what} "${path}" is not a field of ${type.name}`);
    const next: Protobuf.ReflectionObject | null = field.resolvedType;
    t = next !== null && 'fieldsArray' in next ? (next as Protobuf.Type) : null;
  }
}

export interface Found {
  readonly binding: Binding;
  readonly variables: Map<string, string>;
}

/** The binding for this method and path; or the methods the path takes (405), or null (404). */
export function findBinding(bindings: readonly Binding[], method: string, path: string): Found | string[] | null {
  let allowed: string[] | null = null;
  for (const binding of bindings) {
    const variables = matchRule(binding.rule, path);
    if (variables === null) continue;
    if (binding.rule.verb === method) return { binding, variables };
    (allowed ??= []).push(binding.rule.verb);
  }
  return allowed;
}

/** The request message as an object fromObject takes: body, then path variables, then the query. */
export function requestObject(found: Found, query: string, body: Buffer | null): Record<string, unknown> {
  const { binding, variables } = found;
  const type = binding.requestType;
  const bodyField = binding.rule.body;
  let object: Record<string, unknown> = {};
  if (bodyField !== '' && body !== null && body.length > 0) {
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new BadMessageError(`the body is not JSON: ${(err as Error).message}`);
    }
    object = bodyField === '*' ? fromJson(type, json) : fromJson(type, { [bodyField]: json });
  }
  for (const [field, value] of variables) setFromString(type, object, field, value, 'path variable');
  if (bodyField !== '*' && query.length > 1) {
    const bound = [...variables.keys(), ...(bodyField === '' ? [] : [bodyField])];
    for (const [name, values] of parseQuery(query)) {
      if (coversField(bound, name)) continue;
      for (const v of values) setFromString(type, object, name, v, 'query parameter');
    }
  }
  return object;
}
