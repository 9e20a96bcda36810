// Waiting for something a test cannot be told about (another process's log, a health verdict): polling, bounded.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `check` (every `everyMs`) until it returns a truthy value and resolves with that value; fails the test,
 * naming `what`, when `timeoutMs` pass first.
 */
export async function until<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 5000,
  everyMs = 10,
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, false | 0 | '' | null | undefined>;
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs); // the bounded poll itself: for what no event announces (another process's log line)
  }
}
