// The deployment files (deploy/kubernetes/, Dockerfile, deploy/turnpike.service, package.json's packaging) agree
// with the config's defaults, read from the schema, and with each other; no container runtime is needed.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { ADMIN_ENDPOINTS } from '../../src/admin/endpoints/registry.ts';
import { parseConfigText } from '../../src/config/loader.ts';
import type { Config } from '../../src/config/schema.ts';
import { LOAD_OPTIONS } from '../../src/runtime/config-checks.ts';

const root = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

type Loose = Record<string, any>;

/** What the schema gives a config that sets nothing but one listener. */
const DEFAULTS = parseConfigText(
  'listeners: [{ name: web, protocol: http, port: 8080 }]\nadmin: {}\n',
  'defaults.yaml',
  LOAD_OPTIONS,
);
const ADMIN_PORT = DEFAULTS.admin!.port;
const DRAIN_SECONDS = DEFAULTS.shutdown.drainTimeout / 1000;

const K8S_DIR = 'deploy/kubernetes/';
const manifests: Loose[] = readdirSync(new URL(K8S_DIR, root))
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .flatMap((f) => parseAllDocuments(read(K8S_DIR + f)).map((d) => d.toJS() as Loose));
const byKind = (kind: string): Loose => {
  const found = manifests.filter((m) => m.kind === kind);
  assert.equal(found.length, 1, `one ${kind} in ${K8S_DIR}`);
  return found[0]!;
};
const deployment = byKind('Deployment');
const podSpec = deployment.spec.template.spec;
const container = podSpec.containers[0];
const configMap = byKind('ConfigMap');

/** The ConfigMap's turnpike.yaml, validated as `start` would, with the environment the Deployment gives it. */
function configMapConfig(): Config {
  const env: NodeJS.ProcessEnv = {};
  for (const e of container.env ?? []) env[e.name] = e.value ?? 'a-secret-from-the-cluster-'.repeat(2);
  return parseConfigText(configMap.data['turnpike.yaml'], 'configmap.yaml', { ...LOAD_OPTIONS, env });
}

/** A container port by its name or number. */
function containerPort(port: string | number): number {
  if (typeof port === 'number') return port;
  const named = container.ports.find((p: Loose) => p.name === port);
  assert.ok(named, `the container has a port named ${port}`);
  return named.containerPort;
}

/** Seconds the preStop hook waits (an exec `sleep N` or the native sleep action). */
function preStopSeconds(): number {
  const preStop = container.lifecycle?.preStop;
  assert.ok(preStop, 'the container has a preStop hook');
  if (preStop.sleep) return preStop.sleep.seconds;
  const [cmd, seconds] = preStop.exec.command as string[];
  assert.equal(cmd, 'sleep');
  return Number(seconds);
}

test('kustomization.yaml lists every manifest in deploy/kubernetes', () => {
  const files = readdirSync(new URL(K8S_DIR, root)).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual([...parse(read(`${K8S_DIR}kustomization.yaml`)).resources].sort(), files.sort());
  assert.deepEqual(manifests.map((m) => m.kind).sort(), [
    'ConfigMap',
    'Deployment',
    'HorizontalPodAutoscaler',
    'PodDisruptionBudget',
    'Service',
  ]);
});

test("the ConfigMap's turnpike.yaml validates and keeps the defaults the Deployment is sized for", () => {
  const config = configMapConfig();
  assert.equal(config.admin!.port, ADMIN_PORT);
  assert.equal(config.shutdown.drainTimeout, DEFAULTS.shutdown.drainTimeout);
  // The kubelet probes the pod's address: an admin listener on loopback would fail every probe.
  assert.notEqual(config.admin!.address, DEFAULTS.admin!.address);
});

test('the probes are on the admin listener, at endpoints that need no token', () => {
  const config = configMapConfig();
  for (const [probe, path] of [
    ['readinessProbe', '/readyz'],
    ['livenessProbe', '/healthz'],
  ] as const) {
    const get = container[probe]?.httpGet;
    assert.ok(get, `${probe} is an httpGet`);
    assert.equal(get.path, path);
    assert.equal(containerPort(get.port), config.admin!.port, `${probe} is on the admin port`);
    const endpoint = ADMIN_ENDPOINTS.find((e) => e.method === 'GET' && e.path === path);
    assert.equal(endpoint?.auth, 'none', `GET ${path} is an admin endpoint without a token`);
  }
});

test('every listener has its container port, and the Service sends to the listener', () => {
  const config = configMapConfig();
  const ports = container.ports.map((p: Loose) => p.containerPort);
  for (const l of config.listeners) assert.ok(ports.includes(l.port), `listener ${l.name}: containerPort ${l.port}`);
  const service = byKind('Service');
  assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);
  for (const p of service.spec.ports)
    assert.ok(
      config.listeners.some((l) => l.port === containerPort(p.targetPort)),
      `Service port ${p.port} reaches a listener`,
    );
});

test('a pod stops within its grace period: preStop, then shutdown.drainTimeout', () => {
  const preStop = preStopSeconds();
  const grace = podSpec.terminationGracePeriodSeconds;
  assert.ok(preStop > 0);
  assert.ok(grace >= preStop + DRAIN_SECONDS, `grace ${grace}s covers preStop ${preStop}s + drain ${DRAIN_SECONDS}s`);
  assert.ok(grace <= preStop + DRAIN_SECONDS + 15, `grace ${grace}s is sized for the drain, not far past it`);
});

test('the config is mounted as a directory (updates reach it) where the image reads it', () => {
  const volume = podSpec.volumes.find((v: Loose) => v.configMap?.name === configMap.metadata.name);
  assert.ok(volume, 'a volume holds the ConfigMap');
  const mount = container.volumeMounts.find((m: Loose) => m.name === volume.name);
  assert.equal(mount.subPath, undefined, 'a subPath mount never sees ConfigMap updates');
  assert.equal(`${mount.mountPath}/turnpike.yaml`, dockerfileEnv().TURNPIKE_CONFIG);
  assert.ok(Object.keys(configMap.data).includes('turnpike.yaml'));
  assert.equal(podSpec.securityContext.runAsNonRoot, true);
});

test('the PodDisruptionBudget and the CPU autoscaler cover the Deployment', () => {
  const labels = deployment.spec.template.metadata.labels;
  assert.deepEqual(deployment.spec.selector.matchLabels, labels);
  assert.deepEqual(byKind('PodDisruptionBudget').spec.selector.matchLabels, labels);
  const hpa = byKind('HorizontalPodAutoscaler');
  assert.equal(hpa.spec.scaleTargetRef.kind, 'Deployment');
  assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
  assert.ok(hpa.spec.minReplicas >= 2, 'two pods at least, so a disruption leaves one serving');
  assert.ok(hpa.spec.metrics.some((m: Loose) => m.type === 'Resource' && m.resource.name === 'cpu'));
  assert.ok(container.resources.requests.cpu, 'CPU utilization is measured against the CPU request');
});

/** The Dockerfile's instructions, continuation lines joined: [instruction, rest]. */
function dockerfile(): [string, string][] {
  return read('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
    .map((l) => {
      const m = /^\s*(\S+)\s+(.*)$/.exec(l)!;
      return [m[1]!.toUpperCase(), m[2]!.trim()];
    });
}

function dockerfileEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [op, rest] of dockerfile())
    if (op === 'ENV') for (const m of rest.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
  return env;
}

test('the Dockerfile: multi-stage, Node 24, non-root, tini, SIGTERM, HEALTHCHECK on the admin /healthz', () => {
  const steps = dockerfile();
  const all = (op: string) => steps.filter(([o]) => o === op).map(([, rest]) => rest);
  const froms = all('FROM');
  assert.ok(froms.length >= 2, 'multi-stage');
  assert.match(froms.at(-1)!, /^(node:24-slim|gcr\.io\/distroless\/nodejs24)/);
  const user = all('USER').at(-1);
  assert.ok(user !== undefined && !/^(root|0)(:|$)/.test(user), 'runs as a non-root user');
  assert.deepEqual(all('STOPSIGNAL'), ['SIGTERM']);
  const health = all('HEALTHCHECK').join(' ');
  assert.ok(health.includes(`http://127.0.0.1:${ADMIN_PORT}/healthz`), health);
  const entrypoint = JSON.parse(all('ENTRYPOINT').at(-1)!) as string[];
  assert.match(entrypoint[0]!, /tini$/);
  assert.deepEqual(entrypoint.slice(-2), ['/usr/local/share/turnpike/install.sh', 'start']);
  // The install step is deploy/install.sh (what test/e2e/install.test.ts runs), from `npm pack`'s tarball.
  assert.ok(all('RUN').some((r) => /install\.sh install \/tmp\/turnpike\.tgz/.test(r)));
  assert.ok(all('RUN').some((r) => /npm pack/.test(r)));
  assert.ok(all('COPY').includes('deploy/turnpike.yaml /etc/turnpike/turnpike.yaml'));
  assert.equal(dockerfileEnv().TURNPIKE_CONFIG, '/etc/turnpike/turnpike.yaml');
  assert.match(read('deploy/install.sh'), /npm install --global .*--omit=dev/);
});

test("the image's default config validates and its admin listener is the HEALTHCHECK's", () => {
  const config = parseConfigText(read('deploy/turnpike.yaml'), 'deploy/turnpike.yaml', LOAD_OPTIONS);
  assert.equal(config.admin?.port, ADMIN_PORT);
  assert.equal(config.admin?.address, DEFAULTS.admin!.address);
});

test('the systemd unit: SIGHUP reloads, descriptors, port < 1024 without root, stops within the drain', () => {
  const unit = new Map<string, string[]>();
  for (const line of read('deploy/turnpike.service').split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m) unit.set(m[1]!, [...(unit.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (key: string) => unit.get(key)?.at(-1) ?? '';
  assert.ok(unit.get('ExecReload')?.some((l) => /\bkill -HUP \$MAINPID$/.test(l)));
  assert.ok(Number(one('LimitNOFILE')) >= 65536);
  assert.match(one('AmbientCapabilities'), /\bCAP_NET_BIND_SERVICE\b/);
  assert.ok(one('User') !== '' && one('User') !== 'root', 'a non-root User');
  assert.match(one('ExecStart'), /turnpike start --config \/etc\/turnpike\/turnpike\.yaml/);
  assert.equal(one('KillSignal'), 'SIGTERM');
  assert.ok(Number(one('TimeoutStopSec')) > DRAIN_SECONDS, 'systemd waits out the drain before SIGKILL');
});

test('package.json: installs without dev dependencies, packs a built dist/, builds before start and test', () => {
  const pkg = JSON.parse(read('package.json')) as {
    bin: Record<string, string>;
    files: string[];
    scripts: Record<string, string>;
  };
  // npm runs these on `npm ci`/`npm install` (prepare) or on the user's install (the others), where tsc is absent.
  for (const s of ['prepare', 'preinstall', 'install', 'postinstall'])
    assert.equal(pkg.scripts[s], undefined, `no ${s} script`);
  const build = 'tsc -p tsconfig.build.json';
  assert.ok(pkg.scripts.prepack?.includes(build), 'npm pack builds');
  assert.ok(pkg.scripts.prestart?.includes(build), 'npm start builds');
  const test = pkg.scripts.test!;
  assert.ok(test.includes(build) && test.indexOf(build) < test.indexOf('test/e2e'), 'npm test builds first');
  assert.equal(pkg.bin.turnpike, 'dist/cli/main.js');
  assert.ok(pkg.files.includes('dist/'));
  assert.ok(!pkg.files.some((f) => f.startsWith('test')), 'no tests in the package');
});
