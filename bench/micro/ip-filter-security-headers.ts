// Per-request cost of the ip-filter decision and the security-headers hook, without a server:
// `node bench/micro/ip-filter-security-headers.ts`. Figures only; the behaviour is tested in
// test/security-plugins.test.ts.
import assert from 'node:assert/strict';
import { ipFilterPlugin } from '../../src/plugins/ip-filter.ts';
import { securityHeadersPlugin } from '../../src/plugins/security-headers.ts';
import type { PluginEnv } from '../../src/plugins/types.ts';
import { bareContext, nsPerCall } from './ns-per-call.ts';

const env = { warn: () => {} } as unknown as PluginEnv;
const filter = ipFilterPlugin.create(
  ipFilterPlugin.schema.parse({ allow: ['10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32'], deny: ['10.9.0.0/16'] }),
  env,
).request!;
const v4 = bareContext({ clientIp: '10.1.2.3', trusted: true });
const v6 = bareContext({ clientIp: '2001:db8::7', trusted: true });
const refused = bareContext({ clientIp: '11.1.2.3', trusted: true });
// The measured paths are the ones meant: a pass and a refusal.
assert.equal(filter(v4), undefined);
assert.equal(filter(v6), undefined);
assert.equal((filter(refused) as { status: number }).status, 403);
const headers = securityHeadersPlugin.create(securityHeadersPlugin.schema.parse({}), env).response!;
const https = bareContext({ clientIp: '10.1.2.3', trusted: true, scheme: 'https' });

const ns = {
  ipv4: nsPerCall(200_000, () => filter(v4)),
  ipv6: nsPerCall(200_000, () => filter(v6)),
  refused: nsPerCall(50_000, () => filter(refused)),
  securityHeaders: nsPerCall(200_000, () =>
    headers(https, { status: 200, headers: { 'content-type': 'text/plain' }, body: null }),
  ),
};
console.log(
  `ns per call: ip-filter IPv4 pass ${ns.ipv4.toFixed(0)}, IPv6 pass ${ns.ipv6.toFixed(0)}, refusal (problem reply) ${ns.refused.toFixed(0)}; ` +
    `security-headers (4 headers) ${ns.securityHeaders.toFixed(0)}`,
);
