// One @grpc/grpc-js client per target origin of an upstream, made on first use by a grpcTranscode route. The
// pool still chooses the target (balancer, health, breaker, in-flight counts); grpc-js owns the HTTP/2 connection
// to it (h2c on http://, TLS with the upstream's CA, client certificate and server name on https://), its framing,
// trailers and `grpc-timeout` deadlines. Closed with the snapshot that made them.
import { createRequire } from 'node:module';
import type * as Grpc from '@grpc/grpc-js';
import type { Target } from '../upstream/target.ts';

const require = createRequire(import.meta.url);
let grpcJs: typeof Grpc | undefined;

/** @grpc/grpc-js, loaded the first time a grpcTranscode route is compiled. */
export function grpc(): typeof Grpc {
  return (grpcJs ??= require('@grpc/grpc-js') as typeof Grpc);
}

export class GrpcChannels {
  private readonly clients = new Map<string, Grpc.Client>();
  private readonly tls: Record<string, unknown> | null;
  private closed = false;

  /** `tls`: the upstream's TLS options as its undici pools get them (ca, cert, key, servername, rejectUnauthorized). */
  constructor(tls: Record<string, unknown> | null) {
    this.tls = tls;
  }

  client(target: Target): Grpc.Client {
    let client = this.clients.get(target.key);
    if (client === undefined) {
      const g = grpc();
      const origin = target.origin;
      const secure = origin.protocol === 'https:';
      const tls = this.tls ?? {};
      const credentials = secure
        ? g.credentials.createSsl(
            (tls.ca as Buffer | undefined) ?? null,
            (tls.key as Buffer | undefined) ?? null,
            (tls.cert as Buffer | undefined) ?? null,
            tls.rejectUnauthorized === false
              ? { rejectUnauthorized: false, checkServerIdentity: () => undefined }
              : undefined,
          )
        : g.credentials.createInsecure();
      const options: Grpc.ClientOptions = {
        // The gateway retries nothing it was not asked to: one try per client request, as the forwarder.
        'grpc.enable_retries': 0,
        ...(secure && typeof tls.servername === 'string' ? { 'grpc.ssl_target_name_override': tls.servername } : {}),
      };
      const port = origin.port || (secure ? '443' : '80');
      client = new g.Client(`${origin.hostname}:${port}`, credentials, options);
      if (this.closed) client.close();
      this.clients.set(target.key, client);
    }
    return client;
  }

  /** Closes every channel (calls in flight finish first: grpc-js closes a channel once its calls end). */
  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
