// Kubernetes discovery: the ready endpoints of a Service, from its EndpointSlices, listed then watched over the
// API's HTTP list+watch (a stream of JSON lines). Plain HTTP with undici rather than @kubernetes/client-node: one
// list and one watch of one resource are all it takes, and that client brings a dozen dependencies.
// The first call lists and answers at once; each later one reads the watch until the set changes (the stream
// stays open between calls, so events that come meanwhile wait in it). A watch that ends is opened again from
// the last resourceVersion; a 410 Gone (the version is too old) lists again.
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { Agent, request } from 'undici';
import type { DiscoverConfig, DiscoverySettings, KubernetesDiscover } from '../config/discovery-schema.ts';
import type { DiscoveredTarget } from './apply.ts';
import type { DiscoveryProvider, ProviderEnv, Resolve } from './provider.ts';

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';
/** How long the API server keeps one watch open before it ends it (then it is opened again). */
const WATCH_SECONDS = 300;

/** The part of a discovery.k8s.io/v1 EndpointSlice that matters here. */
export interface EndpointSlice {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string };
  readonly addressType?: string;
  readonly endpoints?: readonly {
    readonly addresses?: readonly string[];
    readonly conditions?: { readonly ready?: boolean | null } | null;
  }[];
  readonly ports?: readonly { readonly name?: string | null; readonly port?: number | null }[] | null;
}

interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: EndpointSlice & { readonly code?: number; readonly message?: string };
}

/**
 * The targets of some EndpointSlices: each ready endpoint (`ready` unset counts as ready, as the API says) at the
 * slice's port named `port` (or numbered `port`); the first address of an endpoint (the others are the same pod).
 */
export function sliceTargets(slices: Iterable<EndpointSlice>, port: string | number, scheme: string) {
  const targets = new Map<string, DiscoveredTarget>();
  for (const slice of slices) {
    const match = (slice.ports ?? []).find((p) => (typeof port === 'number' ? p.port === port : p.name === port));
    if (typeof match?.port !== 'number') continue;
    for (const endpoint of slice.endpoints ?? []) {
      if (endpoint.conditions?.ready === false) continue;
      const address = endpoint.addresses?.[0];
      if (address === undefined || address === '') continue;
      const url = `${scheme}://${isIP(address) === 6 ? `[${address}]` : address}:${match.port}`;
      targets.set(url, { url, weight: 1, backup: false });
    }
  }
  return [...targets.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

/** The API server, token and CA to use: the settings, else the pod's service account. */
export function connection(settings: DiscoverySettings['kubernetes'], env: NodeJS.ProcessEnv, configDir: string) {
  const path = (p: string) => resolvePath(configDir, p);
  let apiServer = settings.apiServer;
  if (apiServer === undefined) {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    if (!host || !port)
      throw new Error(
        'not in a Kubernetes pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset): set discovery.kubernetes.apiServer',
      );
    apiServer = `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  }
  // A file named in the settings must be there; the service account's are used when present.
  const tokenFile = settings.tokenFile !== undefined ? path(settings.tokenFile) : `${SERVICE_ACCOUNT}/token`;
  const caFile = settings.caFile !== undefined ? path(settings.caFile) : `${SERVICE_ACCOUNT}/ca.crt`;
  const token = settings.tokenFile !== undefined || existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
  const ca = settings.caFile !== undefined || existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined;
  return { apiServer, token, ca };
}

/** The JSON objects of a watch stream, one a line. */
async function* watchEvents(body: AsyncIterable<Buffer>): AsyncGenerator<WatchEvent> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let nl = buffered.indexOf('\n'); nl !== -1; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line !== '') yield JSON.parse(line) as WatchEvent;
    }
  }
  if (buffered.trim() !== '') yield JSON.parse(buffered) as WatchEvent;
}

class Gone extends Error {}

function createKubernetes(settings: DiscoverySettings, discover: DiscoverConfig, env: ProviderEnv): Resolve {
  const block: KubernetesDiscover = discover.kubernetes!;
  const path = `/apis/discovery.k8s.io/v1/namespaces/${block.namespace}/endpointslices`;
  const selector = `kubernetes.io/service-name=${block.service}`;
  const slices = new Map<string, EndpointSlice>();
  let resourceVersion = '';
  let events: AsyncGenerator<WatchEvent> | undefined;
  let last: string | undefined;
  let listed = false;
  let agent: { ca: string | undefined; agent: Agent } | undefined;
  /** When the watch in use opened, and whether it brought an event yet. */
  let opened = 0;
  let sawEvent = false;

  const current = () => sliceTargets(slices.values(), block.port, discover.scheme);

  /** A GET to the API server; the token and CA are read again each time (tokens rotate). */
  async function get(query: URLSearchParams, signal: AbortSignal, watch: boolean) {
    const c = connection(settings.kubernetes, process.env, env.configDir ?? process.cwd());
    if (agent === undefined || agent.ca !== c.ca) {
      void agent?.agent.close();
      const made = new Agent(c.ca !== undefined ? { connect: { ca: c.ca } } : {});
      agent = { ca: c.ca, agent: made };
      signal.addEventListener('abort', () => void made.close(), { once: true });
    }
    const res = await request(new URL(`${path}?${query}`, c.apiServer), {
      dispatcher: agent.agent,
      signal: watch ? signal : AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
      headers: { accept: 'application/json', ...(c.token !== '' ? { authorization: `Bearer ${c.token}` } : {}) },
      // A watch is quiet while nothing changes: the server ends it after WATCH_SECONDS, this ends a dead one.
      bodyTimeout: watch ? (WATCH_SECONDS + 60) * 1000 : 30_000,
    });
    if (res.statusCode === 410) {
      await res.body.dump();
      throw new Gone();
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      // The API answers a Status object; anything else (a proxy's page) is shown as it came.
      let message = text.slice(0, 200).trim();
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {}
      throw new Error(`the Kubernetes API answered ${res.statusCode}: ${message}`);
    }
    return res.body;
  }

  /** Ends the watch stream in use, if any (its body is released). */
  function closeWatch(): void {
    events?.return(undefined).catch(() => {});
    events = undefined;
  }

  async function list(signal: AbortSignal): Promise<void> {
    closeWatch();
    const body = await get(new URLSearchParams({ labelSelector: selector }), signal, false);
    const answer = (await body.json()) as { metadata?: { resourceVersion?: string }; items?: EndpointSlice[] };
    slices.clear();
    for (const item of answer.items ?? []) slices.set(item.metadata?.name ?? '', item);
    resourceVersion = answer.metadata?.resourceVersion ?? '';
  }

  async function watch(signal: AbortSignal): Promise<AsyncGenerator<WatchEvent>> {
    const query = new URLSearchParams({
      labelSelector: selector,
      watch: '1',
      resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(WATCH_SECONDS),
    });
    const stream = watchEvents(await get(query, signal, true));
    sawEvent = false;
    return stream;
  }

  /** Applies one event; a 410 lists again. */
  async function apply(event: WatchEvent, signal: AbortSignal): Promise<void> {
    const name = event.object.metadata?.name ?? '';
    if (event.type === 'ERROR') {
      if (event.object.code === 410) return list(signal);
      throw new Error(`the Kubernetes watch failed (${event.object.code}): ${event.object.message ?? ''}`);
    }
    if (event.type === 'ADDED' || event.type === 'MODIFIED') slices.set(name, event.object);
    if (event.type === 'DELETED') slices.delete(name);
    resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion;
  }

  return async (signal) => {
    try {
      if (!listed) {
        await list(signal);
        listed = true;
        const targets = current();
        last = JSON.stringify(targets);
        return { targets };
      }
      /** Watches in a row that ended with no event within a second of opening. */
      let endedAtOnce = 0;
      for (;;) {
        if (events === undefined) {
          try {
            events = await watch(signal);
            opened = performance.now();
            continue;
          } catch (err) {
            if (!(err instanceof Gone)) throw err;
            await list(signal);
          }
        } else {
          const next = await events.next();
          if (next.done === true) {
            // Ended by the server: watch again from resourceVersion. Ending at once again and again would be a
            // busy loop: a failure instead (the loop retries after its delay, with a list).
            events = undefined;
            if (!sawEvent && performance.now() - opened < 1000 && ++endedAtOnce >= 3)
              throw new Error('the Kubernetes watch keeps ending as soon as it opens');
          } else {
            sawEvent = true;
            endedAtOnce = 0;
            await apply(next.value, signal);
          }
        }
        const targets = current();
        const key = JSON.stringify(targets);
        if (key !== last) {
          last = key;
          return { targets };
        }
      }
    } catch (err) {
      // The next call lists again, so it answers at once when the API is back.
      listed = false;
      closeWatch();
      throw err;
    }
  };
}

export const kubernetesProvider: DiscoveryProvider = {
  name: 'kubernetes',
  describe: (d: DiscoverConfig) => `${d.kubernetes!.namespace}/${d.kubernetes!.service}:${d.kubernetes!.port}`,
  // A watching source: each round reads the watch until a change, so the loop asks again at once.
  minRefreshMs: () => 0,
  create: createKubernetes,
};
