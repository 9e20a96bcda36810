// Per-request cost of the cors plugin's hooks, without a server: `node bench/micro/cors.ts`.
// Prints nanoseconds per request (request + response hook) for an exact origin, a pattern origin and no Origin,
// and per preflight answer. Figures only; the behaviour is tested in test/cors.test.ts.
import assert from 'node:assert/strict';
import { corsPlugin } from '../../src/plugins/cors.ts';
import type { PluginEnv } from '../../src/plugins/types.ts';
import { bareContext, nsPerCall } from './ns-per-call.ts';

const env = { warn: () => {} } as unknown as PluginEnv;
const hooks = corsPlugin.create(
  corsPlugin.schema.parse({
    origins: ['https://app.example.com', 'https://admin.example.com', 'https://*.partner.example', 'https://*.com'],
    exposeHeaders: ['x-total'],
    credentials: true,
  }),
  env,
);
const exact = bareContext({ headers: { origin: 'https://app.example.com' }, scheme: 'https' });
const pattern = bareContext({ headers: { origin: 'https://a.b.partner.example' }, scheme: 'https' });
const none = bareContext({ scheme: 'https' });
const preflight = bareContext({
  method: 'OPTIONS',
  headers: {
    origin: 'https://app.example.com',
    'access-control-request-method': 'PUT',
    'access-control-request-headers': 'content-type',
  },
  scheme: 'https',
});
// The measured paths are the ones meant: an allowed origin passes, a preflight is answered at the gateway.
assert.equal(hooks.request!(exact), undefined);
assert.equal((hooks.request!(preflight) as { status: number }).status, 204);

const both = (ctx: typeof exact) => () => {
  hooks.request!(ctx);
  hooks.response!(ctx, { status: 200, headers: { vary: 'Accept-Encoding' }, body: null });
};
const ns = {
  exact: nsPerCall(200_000, both(exact)),
  pattern: nsPerCall(200_000, both(pattern)),
  none: nsPerCall(200_000, both(none)),
  preflight: nsPerCall(100_000, () => hooks.request!(preflight)),
};
console.log(
  `cors, ns per request (request + response hook): exact origin ${ns.exact.toFixed(0)}, pattern origin ${ns.pattern.toFixed(0)}, ` +
    `no Origin ${ns.none.toFixed(0)}; preflight answer ${ns.preflight.toFixed(0)}`,
);
