// Which V8 flags the bin adds when it relaunches itself (src/runtime/node-flags.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { missingNodeFlags, NODE_FLAGS } from '../../src/runtime/node-flags.ts';

test('a process started without the flags lacks all of them; one started with them lacks none', () => {
  assert.deepEqual(missingNodeFlags([]), [...NODE_FLAGS]);
  assert.deepEqual(missingNodeFlags(['--inspect', ...NODE_FLAGS]), []);
});

test('a flag given with another value, on the command line or in NODE_OPTIONS, is the operator’s choice', () => {
  const [semi, ...rest] = NODE_FLAGS;
  const name = semi!.split('=')[0]!;
  assert.deepEqual(missingNodeFlags([`${name}=32`]), rest);
  assert.deepEqual(missingNodeFlags([], `--enable-source-maps ${name}=16`), rest);
});
