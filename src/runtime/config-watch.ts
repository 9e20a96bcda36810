// Two pieces shared by the single-process reloader and the multi-worker primary: watching a config file
// and making reloads run one at a time.
import { watch } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Calls `onChange` once a burst of changes to `file` settles. Watches the folder, not the file: editors
 * replace a file by renaming a new one over it, which a watch on the file itself would miss.
 */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  onError: (err: Error) => void,
  debounceMs = 150,
): () => void {
  const name = basename(file);
  let timer: NodeJS.Timeout | null = null;
  const watcher = watch(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
  });
  watcher.on('error', onError);
  return () => {
    watcher.close();
    if (timer) clearTimeout(timer);
  };
}

/**
 * Wraps a reload so calls never overlap: a call while one runs returns the running one's result and
 * schedules exactly one more run after it (so the newest file is always read last).
 */
export function serialized<T>(run: (reason: string) => Promise<T>): (reason: string) => Promise<T> {
  let running: Promise<T> | null = null;
  let again: string | null = null;
  const start = (reason: string): Promise<T> => {
    if (running) {
      again = reason;
      return running;
    }
    running = run(reason).finally(() => {
      running = null;
      if (again !== null) {
        const next = again;
        again = null;
        void start(next);
      }
    });
    return running;
  };
  return start;
}
