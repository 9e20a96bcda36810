// Floods, slow clients and big bodies run bounded in `npm test` (counts divided by ten, timeouts of about a
// second) and in full with `npm run attacks -- --full` (test/attacks/run.ts sets TURNPIKE_ATTACKS=full).
export const FULL = process.env.TURNPIKE_ATTACKS === 'full';

/** `full` under `npm run attacks -- --full`, `bounded` otherwise. */
export function scale<T>(bounded: T, full: T): T {
  return FULL ? full : bounded;
}
