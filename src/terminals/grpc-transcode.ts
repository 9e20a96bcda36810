// grpcTranscode: a JSON/HTTP API in front of a gRPC service (Envoy's grpc-json transcoder). The proto is loaded
// when the config is; each request is matched to a google.api.http rule, its path, query and JSON body become the
// request message, and the call goes to a target the upstream's pool picks, through @grpc/grpc-js (HTTP/2, h2c or
// TLS). Unary answers are JSON; server streams NDJSON, or SSE when the client accepts text/event-stream. A gRPC
// error status becomes its HTTP status with the message in problem+json.
import type * as Grpc from '@grpc/grpc-js';
import type * as Protobuf from 'protobufjs';
import type { GrpcTranscodeConfig } from '../config/grpc-transcode-schema.ts';
import { TurnpikeError } from '../errors.ts';
import { buildBindings, findBinding, requestObject, type Binding, type BindingProblem } from '../grpc/bindings.ts';
import { GrpcChannels, grpc } from '../grpc/channels.ts';
import { BadMessageError, toJson, type JsonOptions } from '../grpc/json-mapping.ts';
import { loadService, ProtoLoadError } from '../grpc/proto-load.ts';
import { grpcStatusName, httpStatusOfGrpc, targetFailed } from '../grpc/status.ts';
import { readBody } from '../http/read-body.ts';
import type { Chain } from '../pipeline/chain.ts';
import { failInternally } from '../pipeline/guard.ts';
import { PROBLEM_TYPE } from '../pipeline/problem.ts';
import { openProducedBody } from '../pipeline/produced-body.ts';
import { sendProblem, sendReply } from '../pipeline/reply.ts';
import { upstreamRequestHeaders, type UpstreamHeaderPolicy } from '../proxy/headers.ts';
import type { RequestContext } from '../request-context.ts';
import type { Lease, UpstreamPool } from '../upstream/pool.ts';
import { defineTerminal } from './terminal.ts';

/** Client headers that describe the JSON exchange, not the call: never sent as gRPC metadata. */
const NOT_METADATA = new Set([
  'host',
  'content-type',
  'content-length',
  'accept',
  'accept-encoding',
  'te',
  'user-agent',
  'transfer-encoding',
]);

interface Plan {
  readonly bindings: readonly Binding[];
  readonly pool: UpstreamPool;
  readonly channels: GrpcChannels;
  readonly chain: Chain;
  readonly maxBodySize: number;
  readonly deadlineMs: number;
  readonly json: JsonOptions;
  readonly headers: UpstreamHeaderPolicy;
}

export const grpcTranscodeTerminal = defineTerminal<GrpcTranscodeConfig>({
  key: 'grpcTranscode',
  check(config, env) {
    const problems: {
      path: (string | number)[];
      message: string;
      code?: 'TP_CONFIG_BAD_REFERENCE' | 'TP_CONFIG_FILE';
    }[] = [];
    const upstream = env.upstreamProblem(config.upstream);
    if (upstream !== undefined)
      problems.push({ path: ['upstream'], message: upstream, code: 'TP_CONFIG_BAD_REFERENCE' });
    if (!env.readFiles) return problems;
    try {
      const found: BindingProblem[] = [];
      buildBindings(loadService(config.proto, env.configDir, config.service), config, found);
      for (const p of found) problems.push({ ...p, code: 'TP_CONFIG_BAD_REFERENCE' });
    } catch (err) {
      if (!(err instanceof ProtoLoadError)) throw err;
      problems.push(
        err.missingService
          ? { path: ['service'], message: err.message, code: 'TP_CONFIG_BAD_REFERENCE' }
          : { path: ['proto'], message: err.message, code: 'TP_CONFIG_FILE' },
      );
    }
    return problems;
  },
  compile(config, env) {
    let bindings: Binding[];
    try {
      const problems: BindingProblem[] = [];
      bindings = buildBindings(loadService(config.proto, env.configDir, config.service), config, problems);
      if (problems.length > 0) throw new ProtoLoadError(problems[0]!.message);
    } catch (err) {
      if (!(err instanceof ProtoLoadError)) throw err;
      throw new TurnpikeError('TP_CONFIG_FILE', `route "${env.routeName}": grpcTranscode: ${err.message}`);
    }
    const pool = env.upstreams.get(config.upstream)!;
    const plan: Plan = {
      bindings,
      pool,
      channels: new GrpcChannels(pool.connections.tls),
      chain: env.chain,
      maxBodySize: env.maxBodySize,
      // The route's whole-exchange timeout, else its request timeout: sent as grpc-timeout.
      deadlineMs: env.route.timeouts?.total ?? env.requestTimeout,
      json: {
        preserveProtoFieldNames: config.preserveProtoFieldNames,
        alwaysPrintPrimitiveFields: config.alwaysPrintPrimitiveFields,
      },
      headers: {
        preserveHost: true,
        requestIdHeader: env.requestIdHeader,
        consumerNameHeader: env.consumerHeaders.name,
        consumerGroupsHeader: env.consumerHeaders.groups,
        overrideHeaders: null,
      },
    };
    grpc(); // loaded now, not on the first request
    return {
      run: (ctx) =>
        void transcode(ctx, plan).catch((err: unknown) => failInternally(ctx, plan.chain.echoRequestId, err)),
      upstreamName: config.upstream,
      forward: null,
      close: () => plan.channels.close(),
    };
  },
});

async function transcode(ctx: RequestContext, plan: Plan): Promise<void> {
  const found = findBinding(plan.bindings, ctx.req.method ?? 'GET', ctx.path);
  if (found === null)
    return sendProblem(ctx, plan.chain, 'TP_ROUTE_NOT_FOUND', 'no method of the service has this path');
  if (Array.isArray(found))
    return sendProblem(ctx, plan.chain, 'TP_METHOD_NOT_ALLOWED', undefined, { allow: [...new Set(found)].join(', ') });
  let body: Buffer | null = null;
  if (found.binding.rule.body !== '') {
    if (ctx.req.headers.expect !== undefined) ctx.res.writeContinue();
    const read = await readBody(ctx.req, plan.maxBodySize);
    if ('tooLarge' in read)
      return sendProblem(ctx, plan.chain, 'TP_BODY_TOO_LARGE', `the body may be at most ${plan.maxBodySize} bytes`);
    if ('failed' in read) return void ctx.res.destroy();
    body = read.body;
    ctx.bytesIn = body.length;
  }
  const binding = found.binding;
  let message: Protobuf.Message;
  try {
    message = binding.requestType.fromObject(requestObject(found, ctx.query, body));
  } catch (err) {
    if (!(err instanceof BadMessageError) && !(err instanceof TypeError)) throw err;
    return sendProblem(ctx, plan.chain, 'TP_GRPC_BAD_REQUEST', (err as Error).message);
  }
  const lease = plan.pool.beginRequest(ctx);
  if (typeof lease === 'string') {
    // A stored answer or a fallback may stand in for an upstream that cannot be used (as in the forwarder).
    const stored = ctx.overrideUpstream(0, null);
    ctx.errorCode = lease;
    if (stored !== undefined) return sendReply(ctx, plan.chain, stored);
    const retryAfter = plan.pool.retryAfterSeconds();
    return sendProblem(ctx, plan.chain, lease, undefined, retryAfter > 0 ? { 'retry-after': String(retryAfter) } : {});
  }
  ctx.target = lease.target.key;
  ctx.attempts = 1;
  const client = plan.channels.client(lease.target);
  const metadata = requestMetadata(ctx, plan.headers);
  const options: Grpc.CallOptions = { deadline: Date.now() + plan.deadlineMs };
  const serialize = (m: Protobuf.Message) => Buffer.from(binding.requestType.encode(m).finish());
  const deserialize = (b: Buffer) => binding.responseType.decode(b);
  const started = performance.now();
  if (!binding.serverStreaming) {
    let head: Grpc.Metadata | null = null;
    const call = client.makeUnaryRequest(
      binding.path,
      serialize,
      deserialize,
      message,
      metadata,
      options,
      (err, value) => {
        ctx.upstreamHeadersMs = performance.now() - started;
        lease.observe(err !== null && targetFailed(err.code));
        lease.end();
        if (err !== null) return sendGrpcError(ctx, plan, err, lease);
        let text: string;
        try {
          text = JSON.stringify(answerJson(binding, value!, plan.json));
        } catch (e) {
          return failInternally(ctx, plan.chain.echoRequestId, e);
        }
        const headers = {
          ...responseHeaders(head, plan.pool),
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        };
        const sink = openProducedBody(ctx, plan.chain, 200, headers);
        if (sink === null) return;
        ctx.bytesOut = Buffer.byteLength(text);
        sink.end(ctx.req.method === 'HEAD' ? undefined : text);
      },
    );
    call.on('metadata', (m) => (head = m));
    ctx.res.once('close', () => {
      if (!ctx.res.writableFinished) call.cancel();
    });
    return;
  }
  const call = client.makeServerStreamRequest(binding.path, serialize, deserialize, message, metadata, options);
  streamAnswer(ctx, plan, binding, lease, call, started);
}

/** A server stream as NDJSON (one JSON object a line) or SSE (`data:` events), written as messages arrive. */
function streamAnswer(
  ctx: RequestContext,
  plan: Plan,
  binding: Binding,
  lease: Lease,
  call: Grpc.ClientReadableStream<Protobuf.Message>,
  started: number,
): void {
  const sse = /\btext\/event-stream\b/.test(ctx.req.headers.accept ?? '');
  let head: Grpc.Metadata | null = null;
  let sink: NodeJS.WritableStream | null = null;
  let status: Grpc.StatusObject | null = null;
  let ended = false;
  let done = false;
  const open = (): NodeJS.WritableStream | null => {
    if (sink !== null || done) return sink;
    const headers = {
      ...responseHeaders(head, plan.pool),
      'content-type': sse ? 'text/event-stream' : 'application/x-ndjson',
      'cache-control': 'no-cache',
    };
    sink = openProducedBody(ctx, plan.chain, 200, headers);
    if (sink === null) {
      done = true;
      call.cancel();
    }
    return sink;
  };
  const write = (text: string) => {
    const out = open();
    if (out === null) return;
    ctx.bytesOut += Buffer.byteLength(text);
    if (!out.write(text)) {
      call.pause();
      out.once('drain', () => call.resume());
    }
  };
  const finish = () => {
    if (done || status === null) return;
    done = true;
    lease.observe(targetFailed(status.code));
    lease.end();
    if (status.code !== 0 && sink === null) return sendGrpcError(ctx, plan, status, lease);
    if (status.code !== 0) {
      ctx.errorCode = 'TP_GRPC_STATUS';
      const error = JSON.stringify({
        error: { code: status.code, status: grpcStatusName(status.code), message: safeDetails(status, lease) },
      });
      sink!.write(sse ? `event: error\ndata: ${error}\n\n` : `${error}\n`);
    }
    open()?.end();
  };
  call.on('metadata', (m) => {
    head = m;
    ctx.upstreamHeadersMs = performance.now() - started;
  });
  call.on('data', (m: Protobuf.Message) => {
    if (done) return;
    try {
      const text = JSON.stringify(answerJson(binding, m, plan.json));
      write(sse ? `data: ${text}\n\n` : `${text}\n`);
    } catch (err) {
      done = true;
      call.cancel();
      lease.end();
      failInternally(ctx, plan.chain.echoRequestId, err);
    }
  });
  call.on('error', () => undefined); // the status event says it all
  call.on('status', (s) => {
    status = s;
    if (ended) finish();
  });
  call.on('end', () => {
    ended = true;
    finish();
  });
  ctx.res.once('close', () => {
    if (done) return;
    done = true;
    call.cancel();
    lease.end();
  });
}

function answerJson(binding: Binding, message: Protobuf.Message, options: JsonOptions): unknown {
  const json = toJson(binding.responseType, message, options);
  const field = binding.rule.responseBody;
  if (field === '') return json;
  const f = binding.responseType.fields[field];
  return (
    (f === undefined
      ? undefined
      : json[options.preserveProtoFieldNames ? f.name : (f.options?.json_name ?? camel(f.name))]) ?? null
  );
}

function camel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A gRPC error status as problem+json: its HTTP status, code TP_GRPC_STATUS, the status name and message. */
function sendGrpcError(
  ctx: RequestContext,
  plan: Plan,
  status: Pick<Grpc.StatusObject, 'code' | 'details'>,
  lease: Lease,
): void {
  const http = httpStatusOfGrpc(status.code);
  // UNAVAILABLE and DEADLINE_EXCEEDED: the service could not be reached or did not answer in time.
  if (status.code === 14 || status.code === 4) {
    const stored = ctx.overrideUpstream(0, null);
    if (stored !== undefined) {
      ctx.errorCode = 'TP_GRPC_STATUS';
      return sendReply(ctx, plan.chain, stored);
    }
  }
  const body = JSON.stringify({
    type: 'urn:turnpike:error:TP_GRPC_STATUS',
    title: `The gRPC service answered ${grpcStatusName(status.code)}`,
    status: http,
    code: 'TP_GRPC_STATUS',
    grpcStatus: grpcStatusName(status.code),
    detail: safeDetails(status, lease),
    requestId: ctx.requestId,
  });
  sendReply(ctx, plan.chain, {
    status: http,
    headers: { 'content-type': PROBLEM_TYPE, 'cache-control': 'no-store' },
    body,
    code: 'TP_GRPC_STATUS',
  });
}

/**
 * The status message, unless grpc-js made it up itself naming the target (a refused connection, a deadline with
 * its remote_addr): backend addresses never reach clients.
 */
function safeDetails(status: Pick<Grpc.StatusObject, 'code' | 'details'>, lease: Lease): string {
  const origin = lease.target.origin;
  const d = status.details ?? '';
  if (
    d.includes(origin.host) ||
    d.includes(origin.hostname) ||
    d.includes('remote_addr') ||
    /\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]/i.test(d)
  )
    return status.code === 14
      ? 'the gRPC service could not be reached'
      : status.code === 4
        ? 'the gRPC call did not finish before its deadline'
        : `the gRPC call failed (${grpcStatusName(status.code)})`;
  return d;
}

/** The client's headers as gRPC metadata, with X-Forwarded-*, the request id and consumer headers as forwarded. */
function requestMetadata(ctx: RequestContext, policy: UpstreamHeaderPolicy): Grpc.Metadata {
  const metadata = new (grpc().Metadata)();
  const list = upstreamRequestHeaders(ctx, policy, '', false);
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (NOT_METADATA.has(name) || name.startsWith('grpc-') || name.endsWith('-bin')) continue;
    try {
      metadata.add(name, list[i + 1]!);
    } catch {
      // A header name gRPC metadata cannot carry: left out.
    }
  }
  return metadata;
}

/** The service's initial metadata as response headers (ASCII ones, minus gRPC's own and the upstream's hidden). */
function responseHeaders(head: Grpc.Metadata | null, pool: UpstreamPool): Record<string, string> {
  const out: Record<string, string> = {};
  if (head === null) return out;
  for (const [name, value] of Object.entries(head.getMap())) {
    if (typeof value !== 'string' || name === 'content-type' || name.startsWith('grpc-') || pool.hidden.has(name))
      continue;
    out[name] = value;
  }
  return out;
}
