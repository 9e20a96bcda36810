// Loads a .proto file at config time (protobufjs) and finds the service a grpcTranscode route names. Imports of
// google/api/*.proto resolve to the copies vendored in ./protos/ (shipped beside dist/ by package.json "files"),
// google/protobuf/*.proto to the ones protobufjs bundles. protobufjs is required here, on first use, so a gateway
// with no grpcTranscode route never loads it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
let protobufjs: typeof Protobuf | undefined;

/** protobufjs, loaded the first time a proto is. */
export function protobuf(): typeof Protobuf {
  return (protobufjs ??= require('protobufjs') as typeof Protobuf);
}

/** src/grpc/protos from src/grpc/ (running the sources) and from dist/grpc/ (the package ships src/grpc/protos/). */
const VENDORED = [
  fileURLToPath(new URL('./protos/', import.meta.url)),
  fileURLToPath(new URL('../../src/grpc/protos/', import.meta.url)),
].find((dir) => existsSync(join(dir, 'google/api/http.proto')))!;
/** protobufjs ships google/protobuf/*.proto (descriptor.proto, which annotations.proto imports, among them). */
const PROTOBUFJS = dirname(require.resolve('protobufjs/package.json'));

export interface LoadedService {
  readonly root: Protobuf.Root;
  readonly service: Protobuf.Service;
}

/** A proto that does not load, or lacks the service: the message names the file (and line, for a syntax error). */
export class ProtoLoadError extends Error {
  readonly missingService: boolean;
  constructor(message: string, missingService = false) {
    super(message);
    this.name = 'ProtoLoadError';
    this.missingService = missingService;
  }
}

/** Loads `file` (relative to `configDir`) and its imports, and returns the service named `serviceName`. */
export function loadService(file: string, configDir: string, serviceName: string): LoadedService {
  const pb = protobuf();
  const path = resolve(configDir, file);
  const root = new pb.Root();
  // protobufjs resolves each file just before it reads and parses it: the last one resolved is the one that failed.
  // Imports name paths from an include root, as protoc's -I: the proto's folder, then the config's.
  const roots = [dirname(path), configDir];
  let current = path;
  root.resolvePath = (origin: string, target: string): string => {
    if (origin === '' || isAbsolute(target)) current = resolve(configDir, target);
    else if (target.startsWith('google/api/')) current = join(VENDORED, target);
    else if (target.startsWith('google/protobuf/')) current = join(PROTOBUFJS, target);
    else current = roots.map((r) => join(r, target)).find((p) => existsSync(p)) ?? join(roots[0]!, target);
    return current;
  };
  const shown = (p: string) => (p === path ? file : p.startsWith(VENDORED) ? p.slice(VENDORED.length) : p);
  try {
    root.loadSync(path, { keepCase: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new ProtoLoadError(`${shown(current)}: no such file`);
    if (e.code !== undefined) throw new ProtoLoadError(`${shown(current)}: cannot read it (${e.code})`);
    throw new ProtoLoadError(`${shown(current)}: ${e.message}`);
  }
  try {
    root.resolveAll();
  } catch (err) {
    throw new ProtoLoadError(`${file}: ${(err as Error).message}`);
  }
  let service: Protobuf.Service | null = null;
  try {
    service = root.lookupService(serviceName.replace(/^\./, ''));
  } catch {
    const known = servicesOf(root);
    throw new ProtoLoadError(`${file} has no service "${serviceName}" (services: ${known.join(', ') || 'none'})`, true);
  }
  return { root, service };
}

/** The full names of every service in `ns` and below. */
function servicesOf(ns: Protobuf.NamespaceBase): string[] {
  const pb = protobuf();
  const out: string[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof pb.Service) out.push(child.fullName.replace(/^\./, ''));
    else if (child instanceof pb.Namespace) out.push(...servicesOf(child));
  }
  return out;
}
