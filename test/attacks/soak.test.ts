// Z02 (soak): `npm run soak -- --duration 60m` is the catalogue's run (the lead's, on a quiet machine); `npm test`
// runs its 1-minute form. bench/soak.ts starts the built gateway as a process, drives mixed h1/h2/WebSocket/TLS
// traffic at 70 % of a measured capacity with 1 % of the requests on failing backends (resets before and during
// the answer, 503, slow, no answer), and exits 1 when heap, heap plus Buffers, file descriptors or handles (or RSS,
// when it keeps growing under more load) grow more than 5 % from a sixth of the run to its end, when any answer is
// not the one its path must give, when the backend did not receive exactly what was sent, or when the gateway logs
// an error.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const SOAK = fileURLToPath(new URL('../../bench/soak.ts', import.meta.url));

test('a one-minute soak of mixed traffic with failing backends ends with nothing grown and no unexpected error', async () => {
  const child = spawn(process.execPath, [SOAK, '--duration', '1m', '--capacity-seconds', '5'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, output);
  console.log(output.replace(/^/gm, '# ')); // the samples, for the report
  assert.match(output, /^PASS$/m);
  assert.match(output, /unexpected 0,/);
});
