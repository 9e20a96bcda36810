// Waiting on the event stream (src/observability/events.ts) instead of polling or sleeping: subscribe first, then
// do what publishes the event, then await it.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';

export type StreamEvent = { readonly gateway?: unknown; readonly [field: string]: unknown };

/**
 * The next event on channel `name` published by `gateway` (a Runtime's `gateway`) for which `match` holds;
 * rejects, naming `what`, when `timeoutMs` of real time pass first.
 */
export function nextEvent(
  name: string,
  gateway: unknown,
  match: (event: StreamEvent) => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<StreamEvent> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      const event = message as StreamEvent;
      if (event.gateway !== gateway || !match(event)) return;
      done();
      resolve(event);
    };
    const deadline = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${name})`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(deadline);
      unsubscribe(name, onMessage);
    };
    subscribe(name, onMessage);
  });
}
