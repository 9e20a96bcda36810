// Where the config text comes from: a file (a path), etcd (etcd://host:port/key) or Redis
// (redis://host:port/db?key=K), chosen by the location's scheme. Every one reads the text, watches it for
// changes and names itself in problems and logs; the text is validated the same way whatever its source.
import { loadConfigFileText, loadConfigText, type LoadedConfig } from '../../config/loader.ts';
import { LOAD_OPTIONS } from '../config-checks.ts';
import { etcdConfigSource } from './etcd.ts';
import { fileConfigSource } from './file.ts';
import { redisConfigSource } from './redis.ts';

export interface ConfigSource {
  /** What `--config` said, resolved: a file's absolute path, or the store URL as given (a worker gets this). */
  readonly location: string;
  /** What problems, logs, the admin API and turnpike_config_info name: the path, or the URL without a password. */
  readonly name: string;
  /** The file whose folder relative paths resolve from; undefined for a store (they resolve from the cwd). */
  readonly file: string | undefined;
  /** The current text; a ConfigError (TP_CONFIG_NOT_FOUND) when it cannot be had. */
  read(): Promise<string>;
  /** Calls `onChange` when the text may have changed; returns the stop. */
  watch(onChange: () => void, onError: (err: Error) => void, debounceMs?: number): () => void;
  /** Publishes a text (`turnpike push`); stores only. */
  write?(text: string): Promise<void>;
  /** Releases connections. */
  close(): void;
}

/** Parses and checks `text` as the config of `source` (problems name the source, at line and key path). */
export function loadFromSource(source: ConfigSource, text: string): LoadedConfig {
  if (source.file !== undefined) return loadConfigFileText(source.file, text, LOAD_OPTIONS);
  return loadConfigText(text, source.name, { ...LOAD_OPTIONS, configDir: process.cwd() });
}

/** The location without its password (redis://:secret@host → redis://***@host). */
export function withoutPassword(url: URL): string {
  if (url.password === '') return url.href;
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href;
}

export function isStoreLocation(location: string): boolean {
  return /^(etcd|redis|rediss):\/\//i.test(location);
}

/** The source `--config` names: a store URL by its scheme, anything else a file path. */
export function openConfigSource(location: string): ConfigSource {
  const scheme = /^([a-z]+):\/\//i.exec(location)?.[1]?.toLowerCase();
  if (scheme === 'etcd') return etcdConfigSource(location);
  if (scheme === 'redis' || scheme === 'rediss') return redisConfigSource(location);
  return fileConfigSource(location);
}
