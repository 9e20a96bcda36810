// Whether an upstream try got a new connection, and how long it waited for it (the access log's upstreamConnectMs),
// learned from each undici pool's own connector: no diagnostics channel, nothing process-wide, nothing per request
// but a property read.
//
// undici does not tell a request handler which socket it got. But when a connector hands a new socket over, undici
// writes the requests that waited for it in that same call (client.js connect → resume → writeH1/writeH2 → the
// handler's onRequestStart), while a request on a connection already open is written from dispatch() or when that
// connection frees up, never inside a connector's callback. So the clock is open only during that callback: a try
// whose onRequestStart runs then is on the new connection. The window is per pool (one clock per undici Pool), so
// a try started on another pool from inside it (a retry elsewhere) reads its own, closed clock. This leans on
// undici's internals: test/e2e/upstream-connect-timing.test.ts fails if an update makes the write asynchronous.
import { createRequire } from 'node:module';
import type { buildConnector as BuildConnector } from 'undici';

// Only the connector module (the Pool loads it anyway), not undici's index (see target.ts).
const buildConnector = createRequire(import.meta.url)('undici/lib/core/connect.js') as typeof BuildConnector;

export class ConnectClock {
  /**
   * While the connector hands undici a new connection: performance.now() when that connection's connect began.
   * -1 the rest of the time.
   */
  private since = -1;
  /** The `connect` option of the pool: undici's own connector (TCP, TLS with `options`), timed. */
  readonly connector: BuildConnector.connector;

  constructor(options: BuildConnector.BuildOptions) {
    const base = buildConnector(options);
    this.connector = (opts, callback) => {
      const started = performance.now();
      base(opts, (err, socket) => {
        if (err !== null) return callback(err, null);
        this.since = started;
        try {
          callback(null, socket);
        } finally {
          this.since = -1;
        }
      });
    };
  }

  /**
   * From a try's onRequestStart: how long the try waited for a new connection (from the later of its own start and
   * the connection's), or -1 when its request went on a connection already open.
   */
  waited(tryStarted: number): number {
    const since = this.since;
    return since < 0 ? -1 : performance.now() - Math.max(since, tryStarted);
  }
}
