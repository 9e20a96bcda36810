// The primary of a multi-worker instance (`workers: auto | N`): forks the workers (node:cluster shares each
// listener between them), validates a new config once and hands its text to every worker (workers never read the
// file: one started after a refused reload gets the last good text), restarts a worker that crashes (and counts
// it), and on SIGTERM drains all workers and exits 0. It never handles a request itself.
import cluster, { type Worker } from 'node:cluster';
import { AdminListener, type AdminChange } from '../admin/admin-listener.ts';
import { AdminRelay } from './admin-relay.ts';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../config/loader.ts';
import type { Config } from '../config/schema.ts';
import { ActiveHealthChecker } from '../health/active-checker.ts';
import { PurgeRelay } from '../cache/purge-fanout.ts';
import { answerLimitRequest } from '../limits/ipc-store.ts';
import { MemoryLimitStore } from '../limits/memory-store.ts';
import { checkedTargets } from '../health/checked-targets.ts';
import { PrimaryMetrics } from '../observability/metrics-workers.ts';
import { PrimaryDiscovery } from './primary-discovery.ts';
import { loadFromSource, openConfigSource, type ConfigSource } from './config-source/source.ts';
import type { ReloadResult } from './lifecycle.ts';
import { serialized } from './config-watch.ts';
import { NODE_FLAGS } from './node-flags.ts';
import { portGuard, tcpClaims, type PortClaim } from './port-holders.ts';
import { resolveWorkerCount } from './worker-count.ts';
import { VERSION } from '../version.ts';
import type { PrimaryMessage, WorkerMessage } from './worker-messages.ts';

export interface PrimaryOptions {
  readonly configFile: string;
  /** From the CLI's --workers; overrides the config's `workers`. */
  readonly workers?: 'auto' | number;
  readonly watch: boolean;
  readonly log: Logger;
  /** Share ports another Turnpike listens on (a binary upgrade) instead of refusing them (`--handover`). */
  readonly handover?: boolean;
}

export class Primary {
  /** Where the config comes from (a file, etcd, Redis): read here only, the text handed to the workers. */
  private readonly source: ConfigSource;
  private readonly options: PrimaryOptions;
  private readonly log: Logger;
  private readonly workers = new Set<Worker>();
  /** Workers asked to leave (scale-down, shutdown): their exit is not a crash. */
  private readonly leaving = new WeakSet<Worker>();
  private wanted = 0;
  private stopping = false;
  private reloadId = 0;
  restarts = 0;
  /** Active health checks run here, once per instance; verdicts go to every worker. */
  private readonly checker: ActiveHealthChecker;
  private readonly verdicts = new Map<string, boolean>();
  private readonly stickySecret = randomBytes(32).toString('base64url');
  /** The instance's `memory` limit counters; workers reach them over IPC. Slots a worker holds, per worker. */
  private readonly limits = new MemoryLimitStore();
  private readonly heldSlots = new WeakMap<Worker, Map<string, number>>();
  /** Each worker has its own memory caches: a purge in one is relayed to the others. */
  private readonly purges = new PurgeRelay();
  /** The instance's metrics (the workers' reports aggregated) while `metrics.enabled`, or null. */
  metrics: PrimaryMetrics | null = null;
  /** The instance's admin listener; what lives in the workers (upstreams, caches, events) is asked over IPC. */
  private admin: AdminListener | null = null;
  private readonly relay = new AdminRelay(() => this.workers);
  private config: Config | null = null;
  /** The last good config file text: what every worker runs, including one started after a refused reload. */
  private configText = '';
  private started = false;
  private readonly portGuard: (claims: PortClaim[]) => void;
  /** Discovery runs here, once per instance; the sets go to every worker. */
  private readonly discovery: PrimaryDiscovery;

  constructor(options: PrimaryOptions) {
    this.options = options;
    this.source = openConfigSource(options.configFile);
    this.log = options.log;
    this.checker = new ActiveHealthChecker((target, healthy) => this.onVerdict(target, healthy), {
      log: (msg, fields) => this.log.warn(fields, msg),
    });
    this.discovery = new PrimaryDiscovery(
      options.log,
      this.source.file !== undefined ? dirname(this.source.file) : process.cwd(),
      (set) => {
        for (const w of this.workers) if (w.isConnected()) w.send({ type: 'discovered', set } satisfies PrimaryMessage);
      },
      () => {
        if (this.config !== null) this.checkTargets(this.config);
      },
    );
    // The workers hold the instance's ports: they are ours, not another Turnpike's.
    this.portGuard = portGuard(
      options.handover === true,
      (level, f, m) => this.log[level](f, m),
      () => new Set([process.pid, ...[...this.workers].map((w) => w.process.pid ?? 0)]),
    );
  }

  /** What the active checks probe: the config's targets and the discovered ones. */
  private checkTargets(config: Config): void {
    this.checker.set(checkedTargets(config, undefined, this.discovery.urls()));
  }

  private onVerdict(target: string, healthy: boolean): void {
    this.verdicts.set(target, healthy);
    for (const w of this.workers)
      if (w.isConnected()) w.send({ type: 'health', target, healthy } satisfies PrimaryMessage);
  }

  /** Forks the workers and resolves once each has opened its listeners (rejects if one cannot start). */
  async start(): Promise<void> {
    const text = await this.source.read();
    const { config } = loadFromSource(this.source, text);
    this.portGuard(tcpClaims(config));
    this.config = config;
    this.configText = text;
    this.wanted = resolveWorkerCount(this.options.workers ?? config.workers);
    this.syncMetrics(config);
    this.admin = await AdminListener.start(config.admin, {
      log: this.log,
      runtime: () => null,
      workers: this.relay,
      reload: () => this.reload('admin API'),
      ready: () => this.started && !this.stopping,
      metrics: () => this.metrics,
    });
    const here = fileURLToPath(import.meta.url);
    cluster.setupPrimary({
      exec: resolve(dirname(here), `worker-main${extname(here)}`),
      execArgv: [...NODE_FLAGS, ...process.execArgv.filter((a) => !NODE_FLAGS.includes(a))],
    });
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
    this.discovery.sync(config);
    this.checkTargets(config);
    await Promise.all(Array.from({ length: this.wanted }, () => this.fork()));
    this.started = true;
    this.log.info(
      { version: VERSION, workers: this.wanted, configFile: this.source.name, pid: process.pid },
      'primary started',
    );
    if (this.options.watch) this.watchFile();
  }

  private fork(): Promise<void> {
    const worker = cluster.fork({ TURNPIKE_CONFIG: this.source.location, TURNPIKE_STICKY_SECRET: this.stickySecret });
    this.workers.add(worker);
    const held = new Map<string, number>();
    this.heldSlots.set(worker, held);
    worker.on('message', (m: WorkerMessage) => {
      if (this.relay.receive(worker, m)) return;
      if (m.type === 'config-please') {
        worker.send({ type: 'config', text: this.configText } satisfies PrimaryMessage);
        for (const set of this.discovery.all()) worker.send({ type: 'discovered', set } satisfies PrimaryMessage);
        // What the probes have found so far; later verdicts follow as they come.
        for (const [target, healthy] of this.verdicts)
          worker.send({ type: 'health', target, healthy } satisfies PrimaryMessage);
        return;
      }
      if (m.type === 'limit-rate' || m.type === 'limit-acquire' || m.type === 'limit-release') {
        void answerLimitRequest(
          this.limits,
          m,
          (r) => {
            if (worker.isConnected()) worker.send(r satisfies PrimaryMessage);
          },
          held,
        );
      } else if (m.type === 'cache-purge') {
        this.purges.relay(worker, m, this.workers);
      } else if (m.type === 'cache-purged') {
        this.purges.receive(m);
      } else if (m.type === 'metrics') {
        this.metrics?.receive(worker.id, m);
      }
    });
    return new Promise((resolvePromise, reject) => {
      const onMessage = (m: WorkerMessage) => {
        if (m.type === 'ready') {
          worker.off('message', onMessage);
          this.relay.started(worker);
          resolvePromise();
        } else if (m.type === 'failed') {
          worker.off('message', onMessage);
          reject(new Error(m.error));
        }
      };
      worker.on('message', onMessage);
      worker.once('exit', () => reject(new Error('worker exited while starting')));
    });
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.workers.delete(worker);
    this.metrics?.forget(worker.id);
    // Concurrency slots a dead worker held would otherwise be lost for good.
    for (const [key, n] of this.heldSlots.get(worker) ?? []) for (let i = 0; i < n; i++) this.limits.release(key);
    if (this.stopping || this.leaving.has(worker)) return;
    this.restarts++;
    this.log.error(
      { worker: worker.process.pid, code, signal, restarts: this.restarts },
      'worker died; starting a new one',
    );
    // Back off a little when workers keep dying, so a crash loop does not spin the CPU.
    setTimeout(
      () => {
        if (!this.stopping && this.workers.size < this.wanted)
          this.fork().catch((err: Error) => this.log.error({ error: err.message }, 'replacement worker failed'));
      },
      Math.min(5000, 100 * this.restarts),
    );
  }

  /** Validates the file once here; only a valid config reaches the workers. Scales to a new `workers` value.
   *  Runs one at a time (a SIGHUP during a file-change reload queues one more). */
  readonly reload: (reason: string) => Promise<ReloadResult> = serialized((reason) => this.reloadNow(reason));

  private async reloadNow(reason: string): Promise<ReloadResult> {
    let wanted: number;
    let config: Config;
    let admin: AdminChange | undefined;
    let text: string;
    try {
      text = await this.source.read();
      config = loadFromSource(this.source, text).config;
      wanted = resolveWorkerCount(this.options.workers ?? config.workers);
      const open = this.config === null ? [] : tcpClaims(this.config, new Set(), false);
      const keys = new Set(open.map((c) => `${c.address}|${c.port}`));
      this.portGuard(tcpClaims(config, new Set(), false).filter((c) => !keys.has(`${c.address}|${c.port}`)));
      // A moved admin listener is bound before any worker hears of the config: a taken port refuses it here.
      admin = await this.admin?.prepare(config.admin);
    } catch (err) {
      const message = err instanceof ConfigError ? err.message : (err as Error).message;
      const code = (err as { code?: string }).code;
      this.log.error({ reason, code, error: message }, 'config reload failed; keeping the running config');
      return { ok: false, error: message };
    }
    const previous = { config: this.config, text: this.configText };
    this.config = config;
    // Set before asking: a worker that starts during the reload gets the new text.
    this.configText = text;
    this.checkTargets(config);
    this.syncMetrics(config);
    const id = ++this.reloadId;
    const current = [...this.workers];
    const results = await Promise.all(current.map((w) => this.askReload(w, id, text)));
    const failed = results.filter((r) => !r.ok);
    if (failed.length > 0) this.log.error({ reason, error: failed[0]!.error }, 'a worker refused the new config');
    if (current.length > 0 && failed.length === current.length) {
      // Every worker kept the old config (a listener could not open, say): so will the ones started later, and the
      // admin listener stays where it was.
      this.config = previous.config;
      this.configText = previous.text;
      if (previous.config !== null) {
        this.checkTargets(previous.config);
        this.syncMetrics(previous.config);
      }
      await admin?.abort();
      return { ok: false, error: failed[0]!.error ?? 'every worker refused the new config' };
    }
    // The primary runs the new config from here on (its tokens, metrics and probes already do).
    admin?.commit();
    this.discovery.sync(config);
    this.wanted = wanted;
    while (this.workers.size < this.wanted) await this.fork();
    for (const w of [...this.workers].slice(this.wanted)) this.retire(w);
    this.log.info({ reason, workers: this.wanted }, 'config reloaded');
    return failed.length === 0
      ? { ok: true }
      : { ok: false, error: failed[0]!.error ?? 'a worker refused the new config' };
  }

  private syncMetrics(config: Config): void {
    if (config.metrics?.enabled !== true) this.metrics = null;
    else this.metrics ??= new PrimaryMetrics([this.discovery.registry]);
  }

  private askReload(worker: Worker, id: number, text: string): Promise<{ ok: boolean; error?: string }> {
    return new Promise((resolvePromise) => {
      const onMessage = (m: WorkerMessage) => {
        if (m.type === 'reloaded' && m.id === id) {
          worker.off('message', onMessage);
          resolvePromise({ ok: m.ok, error: m.error });
        }
      };
      worker.on('message', onMessage);
      worker.once('exit', () => resolvePromise({ ok: true })); // its replacement is handed the new text
      worker.send({ type: 'reload', id, text } satisfies PrimaryMessage);
    });
  }

  private retire(worker: Worker): void {
    this.leaving.add(worker);
    this.workers.delete(worker);
    worker.process.kill('SIGTERM');
  }

  private watchFile(): void {
    this.source.watch(
      () => void this.reload(this.source.file === undefined ? 'config changed in the store' : 'file changed'),
      (err) => this.log.warn({ error: err.message }, 'config watch failed'),
    );
  }

  /** SIGUSR1: every worker opens its log files again (each has its own descriptor on the access log). */
  reopenLogs(): void {
    this.log.info({ workers: this.workers.size }, 'reopening log files');
    for (const w of this.workers) if (w.isConnected()) w.send({ type: 'reopen-logs' } satisfies PrimaryMessage);
  }

  /** SIGTERM to every worker (each drains), then resolves when all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.checker.stop();
    this.discovery.stop();
    this.source.close();
    const exits = [...this.workers].map(
      (w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))),
    );
    for (const w of this.workers) w.process.kill('SIGTERM');
    await Promise.all(exits);
    await this.admin?.close();
  }

  get size(): number {
    return this.workers.size;
  }
}
