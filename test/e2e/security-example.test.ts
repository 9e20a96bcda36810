// The security issue's config example works verbatim: it loads, and a gateway built from it serves.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { json, request, startEchoBackend, startGatewayYaml } from '../helpers/servers.ts';

const EXAMPLE = join(import.meta.dirname, '..', 'fixtures', 'config', 'security-example.yaml');

test("the issue's consumers / key-auth / allow / rate-limit / jwt / ip-filter example runs as written", async () => {
  const echo = await startEchoBackend('orders');
  const key = 'mobile-0123456789abcdef0123456789';
  process.env.MOBILE_KEY = key;
  process.env.ORDERS_URL = echo.url;
  // Whatever listens on 6379 here (a Redis or nothing), onStoreError: allow keeps the orders route answering.
  const gw = await startGatewayYaml(readFileSync(EXAMPLE, 'utf8'));
  try {
    const started = performance.now();
    const ok = await request(gw.port(), '/orders', { headers: { 'x-api-key': key } });
    assert.equal(ok.status, 200);
    assert.ok(performance.now() - started < 1500, 'a missing Redis costs at most the command timeout');
    assert.equal(json(ok).headers['x-consumer-name'], 'mobile');
    assert.equal((await request(gw.port(), '/orders')).status, 401);
    // ip-filter runs in the access phase, before jwt: a loopback client is refused without any JWKS fetch.
    const reports = await request(gw.port(), '/reports', { headers: { authorization: 'Bearer x.y.z' } });
    assert.equal(reports.status, 403);
    assert.equal(json(reports).code, 'TP_IP_FORBIDDEN');
  } finally {
    await gw.stop();
    await echo.close();
    delete process.env.MOBILE_KEY;
    delete process.env.ORDERS_URL;
  }
});
