// A config file: read from disk, watched through its folder (config-watch.ts).
import { resolve } from 'node:path';
import { readConfigFile } from '../../config/loader.ts';
import { watchConfigFile } from '../config-watch.ts';
import type { ConfigSource } from './source.ts';

export function fileConfigSource(path: string): ConfigSource {
  const file = resolve(path);
  return {
    location: file,
    // Problems name the file as it was given (turnpike.yaml:3:1), as they always have.
    name: path,
    file: path,
    read: async () => readConfigFile(path),
    watch: (onChange, onError, debounceMs) => watchConfigFile(file, onChange, onError, debounceMs),
    close: () => undefined,
  };
}
