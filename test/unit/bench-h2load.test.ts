// bench/scenarios/h2load.ts: reading h2load's summary and its per-request log (the https-h2 scenario's figures).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { h2Ms, logPercentiles, parseH2load } from '../../bench/scenarios/h2load.ts';

// h2load 1.52 (Debian 12), -c10 -m100 -t2 -D 1 against Turnpike over TLS: a timed run, so 1000 streams were still
// open when it stopped (started − done) and the status codes count answers that came after the clock.
const TIMED_RUN = `starting benchmark...
spawning thread #0: 5 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for measurements.
spawning thread #1: 5 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for measurements.
Main benchmark duration is started for thread #0.
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 1.00s, 1054.00 req/s, 208.23KB/s
requests: 1054 total, 2054 started, 1054 done, 1054 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1182 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 208.23KB (213226) total, 62.41KB (63904) headers (space savings 75.54%), 115.43KB (118200) data
                     min         max         mean         sd        +/- sd
time for request:   438.46ms    935.89ms    663.33ms    134.52ms    63.57%
time for connect:     3.10ms    135.07ms     55.65ms     46.54ms    40.00%
time to 1st byte:   422.14ms    821.24ms    637.08ms    151.34ms    60.00%
req/s           :      99.81      152.74      105.26       16.68    90.00%
`;

// A count-based run against a proxy that refused some streams and answered some with 502.
const WITH_ERRORS = `starting benchmark...
spawning thread #0: 10 total client(s). 10000 total requests
Application protocol: h2
progress: 10% done
progress: 100% done

finished in 812.40ms, 12102.41 req/s, 1.51MB/s
requests: 10000 total, 10000 started, 9832 done, 9700 succeeded, 168 failed, 12 errored, 3 timeout
status codes: 9700 2xx, 0 3xx, 7 4xx, 125 5xx
traffic: 1.23MB (1289000) total, 98.00KB (100352) headers (space savings 90.10%), 960.94KB (984000) data
                     min         max         mean         sd        +/- sd
time for request:      453us      1.02s     11.81ms      4.53ms    70.68%
`;

test('a timed h2load run: req/s, requests done, TLS and ALPN, no errors', () => {
  const r = parseH2load(TIMED_RUN);
  assert.equal(r.reqPerSec, 1054);
  assert.equal(r.seconds, 1);
  assert.deepEqual([r.total, r.started, r.done, r.succeeded], [1054, 2054, 1054, 1054]);
  assert.equal(r.errors, 0);
  assert.equal(r.protocol, 'TLSv1.3');
  assert.equal(r.cipher, 'TLS_AES_128_GCM_SHA256');
  assert.equal(r.serverTempKey, 'X25519 253 bits');
  assert.equal(r.alpn, 'h2');
  assert.equal(r.meanMs, 663.33);
  assert.equal(r.maxMs, 935.89);
});

test('errors are failed + errored + timeout requests plus 4xx and 5xx answers', () => {
  const r = parseH2load(WITH_ERRORS);
  assert.equal(r.reqPerSec, 12102.41);
  assert.ok(Math.abs(r.seconds - 0.8124) < 1e-9);
  assert.deepEqual([r.failed, r.errored, r.timeout], [168, 12, 3]);
  assert.deepEqual(r.status, { '2xx': 9700, '3xx': 0, '4xx': 7, '5xx': 125 });
  assert.equal(r.errors, 168 + 12 + 3 + 7 + 125);
  assert.equal(r.protocol, undefined); // cleartext: no TLS lines
  assert.equal(r.maxMs, 1020);
});

test('output without the summary lines is refused, not read as zeros', () => {
  assert.throws(() => parseH2load('starting benchmark...\nNo protocols were negotiated. Aborted.\n'), /finished in/);
});

test('h2load durations: us, ms and s', () => {
  assert.equal(h2Ms('453us'), 0.453);
  assert.equal(h2Ms('38.78ms'), 38.78);
  assert.equal(h2Ms('1.5s'), 1500);
  assert.ok(Number.isNaN(h2Ms('fast')));
});

test('p50 and p99 from the per-request log (start µs, status, duration µs)', () => {
  const lines = Array.from(
    { length: 100 },
    (_, i) => `1733620000${String(i).padStart(6, '0')}\t200\t${(i + 1) * 1000}`,
  );
  const shuffled = [...lines.slice(50), ...lines.slice(0, 50)].join('\n') + '\n';
  const p = logPercentiles(shuffled);
  assert.equal(p.count, 100);
  assert.equal(p.p50Ms, 51);
  assert.equal(p.p99Ms, 100);
  assert.deepEqual(logPercentiles(''), { count: 0 });
});
