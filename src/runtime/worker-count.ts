import { availableParallelism } from 'node:os';

/** `auto` → one worker per core the process may use. */
export function resolveWorkerCount(workers: 'auto' | number): number {
  return workers === 'auto' ? Math.max(1, availableParallelism()) : workers;
}
