// A worker process of a multi-worker instance: runs its own gateway (own snapshot, own pools) on listeners the
// cluster primary shares, with the config text the primary hands it (never the file: it may be broken since the
// primary last read it), reloads with the text the primary sends, drains on SIGTERM.
import { WorkerSets } from '../discovery/instance-sets.ts';
import { runAdminOp } from '../admin/admin-ops.ts';
import { subscribeFeed, type FeedEvent } from '../admin/event-feed.ts';
import { startGateway, type Gateway } from './gateway.ts';
import { CachePurges } from '../cache/purge-fanout.ts';
import { IpcLimitStore } from '../limits/ipc-store.ts';
import { installSignals } from './lifecycle.ts';
import { reportWorkerMetrics } from '../observability/metrics-workers.ts';
import type { PrimaryMessage, WorkerMessage } from './worker-messages.ts';

const file = process.env.TURNPIKE_CONFIG;
if (!file || !process.send) {
  process.stderr.write('worker-main is started by the turnpike primary, not directly\n');
  process.exit(1);
}
const send = (m: WorkerMessage) => process.send!(m);
const stickySecret = process.env.TURNPIKE_STICKY_SECRET ?? '';
delete process.env.TURNPIKE_STICKY_SECRET; // not for plugins or child processes to see
// Health verdicts arrive from the primary from the start; the ones before the gateway exists seed its targets.
const initialHealth = new Map<string, boolean>();
let applyHealth = (target: string, healthy: boolean): void => {
  initialHealth.set(target, healthy);
};
// Discovered targets arrive from the primary too; those before the gateway exists wait in the sets for its pools.
const discoveredSets = new WorkerSets();
// `memory` limit counters are the primary's, so a limit means the same with any number of workers.
const limitStore = new IpcLimitStore((m) => process.send!(m));
// Memory caches are per worker; a purge here is relayed by the primary to the others (and theirs to us).
const cachePurges = new CachePurges((m) => process.send!(m));
// The config comes from the primary (its last good copy of the file), never from the file itself.
let receiveConfig: (text: string) => void = () => undefined;
const initialText = new Promise<string>((resolveText) => (receiveConfig = resolveText));
let gatewayStarted: (gateway: Gateway) => void = () => undefined;
const started = new Promise<Gateway>((resolveGateway) => (gatewayStarted = resolveGateway));
// Reloads apply in the order sent; one sent while this worker was still starting waits for its gateway.
let reloads: Promise<unknown> = started;
process.on('message', (m: PrimaryMessage) => {
  if (limitStore.receive(m)) return;
  if (cachePurges.receive(m)) return;
  if (m.type === 'health') applyHealth(m.target, m.healthy);
  else if (m.type === 'discovered') discoveredSets.receive(m.set);
  else if (m.type === 'config') receiveConfig(m.text);
  else if (m.type === 'reload') {
    reloads = reloads.then(async () => {
      const r = await (await started).reloader!.reloadText(m.text, 'primary');
      send({ type: 'reloaded', id: m.id, ok: r.ok, error: r.error });
    });
  }
});
send({ type: 'config-please' });
// The primary reloads every worker; a SIGHUP sent to the whole process group must not also reload us.
process.on('SIGHUP', () => undefined);
// Until the gateway's own handler is installed, SIGUSR1 must not open Node's inspector (it would by default).
process.on('SIGUSR1', () => undefined);
try {
  const gateway = await startGateway({
    configFile: file,
    configText: await initialText,
    watch: false,
    worker: { initialHealth, stickySecret, limitStore, cachePurges, discoveredSets },
  });
  applyHealth = (target, healthy) => gateway.runtime.setTargetHealth(target, healthy);
  for (const [target, healthy] of initialHealth) applyHealth(target, healthy);
  reportWorkerMetrics(gateway.runtime.gateway, () => gateway.runtime.metrics, send);
  installSignals(gateway.runtime, null, gateway.log, () => process.exit(0));
  // The primary's admin listener: operations on this worker's runtime, and its events while a client watches.
  let unfeed: (() => void) | null = null;
  process.on('message', (m: PrimaryMessage) => {
    if (m.type === 'reopen-logs') gateway.runtime.reopenLogs();
    else if (m.type === 'admin-op') {
      // A purge (Redis) or an explanation (an identity provider) answers later; the other operations at once.
      void Promise.resolve()
        .then(() => runAdminOp(gateway.runtime, gateway.log, m.op))
        .then(
          (value) => send({ type: 'admin-op-done', id: m.id, ok: true, value }),
          (err: unknown) => {
            const e = err as { code?: string; message?: string };
            send({
              type: 'admin-op-done',
              id: m.id,
              ok: false,
              code: e.code ?? 'TP_INTERNAL',
              message: e.message ?? '',
            });
          },
        );
    } else if (m.type === 'admin-feed') {
      unfeed?.();
      unfeed = m.on
        ? subscribeFeed(gateway.runtime.gateway, {}, (event) => send({ type: 'admin-event', event }))
        : null;
    }
  });
  gatewayStarted(gateway);
  send({ type: 'ready', ports: gateway.runtime.addresses() });
} catch (err) {
  const e = err as { code?: string; message?: string };
  send({ type: 'failed', error: `${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}` });
  process.exit(1);
}
