// The ACME storage folder: values written whole (owner-only files), the ordering lock exclusive between holders,
// taken over once a dead holder's time is up, released only by its owner; keys cannot leave the folder.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FolderStorage } from '../../src/acme/storage.ts';
import { tempDir } from '../helpers/servers.ts';

test('values round-trip as owner-only files; a missing key is null', async () => {
  const dir = tempDir();
  const storage = new FolderStorage(dir);
  assert.equal(await storage.get('certs/abc/cert.pem'), null);
  await storage.set('certs/abc/cert.pem', 'PEM');
  assert.equal(await storage.get('certs/abc/cert.pem'), 'PEM');
  assert.equal(statSync(join(dir, 'certs/abc/cert.pem')).mode & 0o777, 0o600);
  await storage.delete('certs/abc/cert.pem');
  assert.equal(await storage.get('certs/abc/cert.pem'), null);
  await assert.rejects(storage.get('../etc/passwd'), /bad storage key/);
  await assert.rejects(storage.set('a//b', 'x'), /bad storage key/);
});

test('the lock: one holder at a time, released by its owner only, taken over when its time is up', async () => {
  const storage = new FolderStorage(tempDir());
  assert.equal(await storage.lock('locks/x', 'a', 60_000), true);
  assert.equal(await storage.lock('locks/x', 'a', 60_000), true, 'the holder still holds it');
  assert.equal(await storage.lock('locks/x', 'b', 60_000), false);
  await storage.unlock('locks/x', 'b'); // not b's: stays
  assert.equal(await storage.lock('locks/x', 'b', 60_000), false);
  await storage.unlock('locks/x', 'a');
  assert.equal(await storage.lock('locks/x', 'b', 0), true);
  // b's time is already up (a holder that died): the next one takes it.
  assert.equal(await storage.lock('locks/x', 'c', 60_000), true);
  assert.equal(await storage.lock('locks/x', 'b', 60_000), false);
});
