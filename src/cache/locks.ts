// Request collapsing (NGINX proxy_cache_lock): one request per key goes to the upstream to fill or revalidate
// the cache; the others wait for it (bounded) and then look again.
export class FillLocks {
  private readonly held = new Map<string, { readonly release: () => void; readonly done: Promise<void> }>();

  /** Takes the lock for `key` and returns its release, or null when another request holds it. */
  tryLead(key: string): (() => void) | null {
    if (this.held.has(key)) return null;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      if (this.held.get(key)?.done === done) this.held.delete(key);
      resolve();
    };
    this.held.set(key, { release, done });
    return release;
  }

  /** Resolves when the holder of `key` releases it, or after `timeout` ms, whichever comes first. */
  wait(key: string, timeout: number): Promise<void> {
    const lock = this.held.get(key);
    if (lock === undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeout);
      void lock.done.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
