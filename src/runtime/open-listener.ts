// A bound listener of any protocol, as the runtime manages it across reloads and at shutdown.
import { dirname } from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ListenerConfig } from '../config/schema.ts';
import { TurnpikeError } from '../errors.ts';
import { CertificateStore } from '../tls/certificate-store.ts';
import { TlsConfigError } from '../tls/tls-options.ts';
import { createHttpServer, updateHttpServer, type ListenerHost } from './http-listener.ts';
import { createHttpsServer } from './https-listener.ts';
import { ListenSockets } from './listen-sockets.ts';
import { proxyProtocolGate } from './proxy-protocol-gate.ts';
import type { CompiledListener } from './snapshot.ts';

export interface OpenListener {
  readonly key: string;
  readonly name: string;
  readonly address: AddressInfo;
  /** Applies a new snapshot's settings (timeouts, certificates) to a listener that stays open. */
  update(listener: CompiledListener, configDir: string): void;
  /** Stops accepting. Open connections stay until closeIdle/closeAll. */
  close(): void;
  closeIdle(): void;
  closeAll(): void;
}

export function openError(config: ListenerConfig, err: unknown): TurnpikeError {
  if (err instanceof TlsConfigError) return new TurnpikeError('TP_TLS_CONFIG', `listener "${config.name}": ${err.message}`, { cause: err });
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new TurnpikeError('TP_LISTEN_FAILED', `listener "${config.name}" cannot listen on ${config.address}:${config.port}: ${code}`, { cause: err });
}

/** Opens an http or https listener (https: certificates loaded and watched for changes). */
export async function openHttpListener(host: ListenerHost, key: string, listener: CompiledListener, configDir: string, onTls: TlsEvents): Promise<OpenListener> {
  const config = listener.config;
  let store: CertificateStore | null = null;
  try {
    if (config.protocol === 'https') {
      store = loadStore(config.tls, configDir, onTls, config.name);
      const https = createHttpsServer(host, key, listener, store);
      const sockets = await ListenSockets.open(https.server as unknown as Server, config.address, config.port, config.acceptSockets, gateOf(listener, onTls));
      let tlsKey = JSON.stringify(config.tls);
      return {
        key, name: config.name, address: sockets.address,
        update(next, dir) {
          if (next.config.protocol !== 'https') return;
          const nextKey = JSON.stringify(next.config.tls);
          if (nextKey === tlsKey) return;
          const fresh = loadStore(next.config.tls, dir, onTls, next.config.name);
          https.useStore(fresh);
          store?.close();
          store = fresh;
          tlsKey = nextKey;
        },
        close() {
          sockets.close();
          https.server.close();
          store?.close();
        },
        closeIdle: () => https.closeSessions(),
        closeAll: () => https.closeSessions(),
      };
    }
    const server = createHttpServer(host, key, listener);
    const sockets = await ListenSockets.open(server, config.address, config.port, config.acceptSockets, gateOf(listener, onTls));
    return {
      key, name: config.name, address: sockets.address,
      update: (next) => updateHttpServer(server, next),
      close() {
        sockets.close();
        server.close();
      },
      closeIdle: () => server.closeIdleConnections(),
      closeAll: () => server.closeAllConnections(),
    };
  } catch (err) {
    store?.close();
    throw openError(config, err);
  }
}

export interface TlsEvents {
  readonly reloaded: (listener: string, files: string) => void;
  readonly failed: (listener: string, message: string) => void;
}

function loadStore(settings: ConstructorParameters<typeof CertificateStore>[0], configDir: string, events: TlsEvents, name: string): CertificateStore {
  const store = new CertificateStore(settings, configDir, {
    onReload: (e) => events.reloaded(name, `certificates ${e.changed.join(', ')}${e.caChanged ? ' and the client CA' : ''}`),
    onError: (err) => events.failed(name, err.message),
  });
  return store.watch();
}

export function configDirOf(configFile: string | undefined): string {
  return configFile ? dirname(configFile) : process.cwd();
}

function gateOf(listener: CompiledListener, events: TlsEvents): ((socket: Socket) => Promise<boolean>) | undefined {
  if (!listener.config.proxyProtocol) return undefined;
  return proxyProtocolGate(listener.trust, (peer, reason) => events.failed(listener.config.name, `PROXY header from ${peer}: ${reason}; connection refused`));
}
