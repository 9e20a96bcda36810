// Shared by the micro benchmarks: nanoseconds per call of a function, and a bare RequestContext for plugin hooks.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestContext } from '../../src/request-context.ts';

/** Nanoseconds per call of `fn`, after 10,000 warm-up calls. */
export function nsPerCall(iterations: number, fn: (i: number) => void): number {
  for (let i = 0; i < 10_000; i++) fn(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  return Number(process.hrtime.bigint() - start) / iterations;
}

/** A request context without a socket: what a plugin hook reads (method, headers, client address, scheme). */
export function bareContext(
  options: {
    method?: string;
    headers?: Record<string, string>;
    clientIp?: string;
    trusted?: boolean;
    scheme?: string;
  } = {},
): RequestContext {
  const req = {
    headers: { host: 'x', ...options.headers },
    method: options.method ?? 'GET',
  } as unknown as IncomingMessage;
  return new RequestContext(
    req,
    {} as ServerResponse,
    '127.0.0.1',
    options.trusted ?? false,
    options.clientIp ?? '127.0.0.1',
    options.scheme ?? 'http',
    'id',
    '/',
    '',
  );
}
