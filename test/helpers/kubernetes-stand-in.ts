// A stand-in for the Kubernetes API server on port 0 (HTTPS with a test CA, or plain HTTP), the subset discovery
// uses: EndpointSlices of discovery.k8s.io/v1 by namespace and `labelSelector=kubernetes.io/service-name=<svc>`,
// listed (with the list's resourceVersion) and watched (`watch=1&resourceVersion=..`: the events after that
// version replayed, then live ones, as JSON lines: ADDED, MODIFIED, DELETED, BOOKMARK, ERROR), ended after
// `timeoutSeconds`. A bearer token is checked. A test changes slices, compacts the history so that a watch from an
// older version gets a 410 Gone (as an HTTP status or as an ERROR event, both of which servers do), ends watches.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface SliceEndpoint {
  readonly ip: string;
  /** conditions.ready: absent means unknown, which counts as ready. */
  readonly ready?: boolean;
}

/** An EndpointSlice of `service` named `name`, as the API shows it. */
export function endpointSlice(
  service: string,
  name: string,
  ports: readonly { name?: string; port: number }[],
  endpoints: readonly SliceEndpoint[],
): Record<string, unknown> {
  return {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    metadata: { name, labels: { 'kubernetes.io/service-name': service } },
    addressType: endpoints.some((e) => e.ip.includes(':')) ? 'IPv6' : 'IPv4',
    endpoints: endpoints.map((e) => ({
      addresses: [e.ip],
      conditions: e.ready === undefined ? {} : { ready: e.ready },
    })),
    ports: ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: 'TCP' })),
  };
}

type Slice = Record<string, unknown> & { metadata: { name: string; labels: Record<string, string> } };
interface Change {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly namespace: string;
  readonly object: Slice;
}

export interface KubernetesStandIn {
  /** http(s)://localhost:<port> */
  readonly url: string;
  /** Every request: its URL and Authorization header. */
  readonly requests: { readonly url: URL; readonly authorization: string | undefined }[];
  /** Creates or replaces a slice in `namespace` (ADDED or MODIFIED to the watches). */
  apply(namespace: string, slice: Record<string, unknown>): void;
  remove(namespace: string, name: string): void;
  /** Ends the open watches, as a server does after timeoutSeconds (their history stays). */
  endWatches(): void;
  /** The token accepted from now on (a rotation). */
  setToken(token: string): void;
  /** Forgets the history: a watch from an older version gets 410 Gone, open watches an ERROR event 410 (`event`)
   *  or have their stream ended so the next watch gets an HTTP 410 (`status`). */
  compact(how: 'event' | 'status'): void;
  /** Resolves when `n` watches are open. */
  whenWatching(n: number): Promise<void>;
  readonly watching: number;
  close(): Promise<void>;
}

const PATH = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/;

export async function startKubernetesStandIn(
  options: { token?: string; tls?: { cert: string; key: string } } = {},
): Promise<KubernetesStandIn> {
  let token = options.token;
  let rv = 100;
  let compactedBelow = 0;
  const slices = new Map<string, { namespace: string; object: Slice }>();
  const history: Change[] = [];
  const requests: { url: URL; authorization: string | undefined }[] = [];
  const watches = new Set<{ send: (c: Change) => void; res: ServerResponse }>();
  const watchWaiters: { n: number; resolve: () => void }[] = [];
  const sockets = new Set<Socket>();

  const status = (res: ServerResponse, code: number, reason: string, message: string) =>
    void res
      .writeHead(code, { 'content-type': 'application/json' })
      .end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }));

  const selects = (selector: string | null, c: { namespace: string; object: Slice }, namespace: string) => {
    if (c.namespace !== namespace) return false;
    const [key, value] = (selector ?? '').split('=');
    return key === undefined || key === '' || c.object.metadata.labels[key] === value;
  };

  function handler(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://kubernetes');
    requests.push({ url, authorization: req.headers.authorization });
    if (token !== undefined && req.headers.authorization !== `Bearer ${token}`)
      return status(res, 401, 'Unauthorized', 'Unauthorized');
    const m = PATH.exec(url.pathname);
    if (req.method !== 'GET' || m === null) return status(res, 404, 'NotFound', 'the server could not find it');
    const namespace = decodeURIComponent(m[1]!);
    const selector = url.searchParams.get('labelSelector');
    const watch = ['1', 'true'].includes(url.searchParams.get('watch') ?? '');
    if (!watch) {
      const items = [...slices.values()].filter((s) => selects(selector, s, namespace)).map((s) => s.object);
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(
        JSON.stringify({
          kind: 'EndpointSliceList',
          apiVersion: 'discovery.k8s.io/v1',
          metadata: { resourceVersion: String(rv) },
          items,
        }),
      );
    }
    const from = Number(url.searchParams.get('resourceVersion') ?? rv);
    if (from < compactedBelow)
      return status(res, 410, 'Expired', `too old resource version: ${from} (${compactedBelow})`);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const line = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
    const entry = {
      res,
      send: (c: Change) => {
        if (selects(selector, c, namespace)) line(c.type, c.object);
        else if (url.searchParams.get('allowWatchBookmarks') === 'true')
          line('BOOKMARK', { kind: 'EndpointSlice', metadata: { resourceVersion: String(c.rv) } });
      },
    };
    for (const c of history) if (c.rv > from) entry.send(c);
    watches.add(entry);
    const seconds = Number(url.searchParams.get('timeoutSeconds') ?? 1800);
    const timer = setTimeout(() => res.end(), seconds * 1000);
    res.on('close', () => {
      clearTimeout(timer);
      watches.delete(entry);
    });
    for (const w of [...watchWaiters])
      if (watches.size >= w.n) {
        watchWaiters.splice(watchWaiters.indexOf(w), 1);
        w.resolve();
      }
  }

  const server = options.tls ? createHttpsServer(options.tls, handler) : createHttpServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  function change(type: Change['type'], namespace: string, object: Slice): void {
    rv++;
    const versioned = { ...object, metadata: { ...object.metadata, resourceVersion: String(rv) } };
    if (type === 'DELETED') slices.delete(`${namespace}/${object.metadata.name}`);
    else slices.set(`${namespace}/${object.metadata.name}`, { namespace, object: versioned });
    const c = { rv, type, namespace, object: versioned };
    history.push(c);
    for (const w of watches) w.send(c);
  }

  return {
    url: `${options.tls ? 'https' : 'http'}://localhost:${port}`,
    requests,
    apply(namespace, slice) {
      const s = slice as Slice;
      change(slices.has(`${namespace}/${s.metadata.name}`) ? 'MODIFIED' : 'ADDED', namespace, s);
    },
    remove(namespace, name) {
      const had = slices.get(`${namespace}/${name}`);
      if (had !== undefined) change('DELETED', namespace, had.object);
    },
    endWatches() {
      for (const w of [...watches]) {
        w.res.end();
        watches.delete(w);
      }
    },
    setToken(next) {
      token = next;
    },
    compact(how) {
      compactedBelow = rv + 1;
      history.length = 0;
      for (const w of [...watches]) {
        if (how === 'event') {
          const message = 'too old resource version';
          w.res.write(
            `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message } })}\n`,
          );
        }
        w.res.end();
        watches.delete(w);
      }
    },
    whenWatching(n) {
      if (watches.size >= n) return Promise.resolve();
      return new Promise((resolve) => watchWaiters.push({ n, resolve }));
    },
    get watching() {
      return watches.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
