// Per-request cost of the traces subscriber, without a server: `node bench/micro/tracing.ts`.
// Publishes one request's events (start, route, attempt start with its header list, attempt end, end) as the
// listener and forwarder do, without tracing and with sampleRatio ~0 (every request unsampled), 0.1 and 1. The
// exporter points at a closed port: batches are serialised and fail off this loop, and the queue drops what does
// not fit, so the sampled figures are a floor. Prints CPU ns per request; the behaviour is tested in
// test/e2e/tracing.test.ts.
import {
  newGateway,
  publishAttemptEnd,
  publishAttemptStart,
  publishRequest,
  CHANNELS,
} from '../../src/observability/events.ts';
import { Tracing } from '../../src/observability/tracing.ts';
import { bareContext } from './ns-per-call.ts';

/** CPU nanoseconds (user + system) per call after a warm-up: steadier than wall time on a shared machine. */
function cpuNsPerCall(iterations: number, fn: () => void): number {
  for (let i = 0; i < 20_000; i++) fn();
  const start = process.cpuUsage();
  for (let i = 0; i < iterations; i++) fn();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / iterations;
}

const gateway = newGateway();

function oneRequest(): void {
  const ctx = bareContext();
  ctx.gateway = gateway;
  publishRequest(CHANNELS.requestStart, ctx);
  publishRequest(CHANNELS.routeMatched, ctx, { route: 'all' });
  publishAttemptStart(ctx, 'http://127.0.0.1:9001', 1);
  publishAttemptEnd(ctx, 'app', 'http://127.0.0.1:9001', 1, 200, 1, null);
  ctx.status = 200;
  publishRequest(CHANNELS.requestEnd, ctx);
}

const N = 200_000;
console.log(`no tracing: ${cpuNsPerCall(N, oneRequest).toFixed(0)} CPU ns per request`);
for (const sampleRatio of [1e-9, 0.1, 1]) {
  const tracing = Tracing.start(
    gateway,
    {
      otlp: { endpoint: 'http://127.0.0.1:9/v1/traces', headers: {}, timeout: 1000 },
      sampleRatio,
      serviceName: 'bench',
      batchDelay: 5000,
    },
    () => {},
  )!;
  console.log(`sampleRatio ${sampleRatio}: ${cpuNsPerCall(N, oneRequest).toFixed(0)} CPU ns per request`);
  await tracing.close();
}
