// Two pieces shared by the single-process reloader and the multi-worker primary: watching a config file
// and making reloads run one at a time.
import { existsSync, readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Calls `onChange` once a burst of changes settles and the file's content differs from what it was. Watches
 * folders, not the file, and reacts to any event in them, as the certificate watcher does: editors replace a file
 * by renaming a new one over it, and Kubernetes updates a ConfigMap by renaming a new `..data` symlink over the
 * old one (`turnpike.yaml -> ..data/turnpike.yaml`), an event about `..data`, never about the file's name. The
 * folder the file really lives in is watched too (re-resolved after every change, as a swap moves it), so an edit
 * behind a symlink is seen. Comparing the content keeps events about other files from reloading.
 */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  onError: (err: Error) => void,
  debounceMs = 150,
): () => void {
  let last = contentOf(file);
  let timer: NodeJS.Timeout | null = null;
  const watchers = new Map<string, FSWatcher>();
  const check = () => {
    timer = null;
    follow();
    const now = contentOf(file);
    if (now === last) return;
    last = now;
    onChange();
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(check, debounceMs);
  };
  const follow = () => {
    const dirs = new Set([dirname(file)]);
    try {
      dirs.add(dirname(realpathSync(file)));
    } catch {
      // gone for now (mid-swap): the folder watch sees it come back
    }
    for (const [dir, watcher] of watchers)
      if (!dirs.has(dir)) {
        watcher.close();
        watchers.delete(dir);
      }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue;
      let watcher: FSWatcher;
      try {
        watcher = watch(dir, schedule);
      } catch (err) {
        onError(err as Error);
        continue;
      }
      watcher.on('error', (err) => {
        watcher.close();
        watchers.delete(dir);
        // A swapped-out ConfigMap folder is deleted: that is no error, the next check follows the new one.
        if (existsSync(dir)) onError(err);
        schedule();
      });
      watchers.set(dir, watcher);
    }
  };
  follow();
  return () => {
    for (const watcher of watchers.values()) watcher.close();
    watchers.clear();
    if (timer) clearTimeout(timer);
  };
}

function contentOf(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
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
