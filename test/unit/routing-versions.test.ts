// Reading a request's API version (src/routing/versions.ts) and the router's version predicate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router } from '../../src/routing/router.ts';
import { versionFromAccept, versionFromPath } from '../../src/routing/versions.ts';

test('the media type in Accept: the first range written as the template, any case, parameters ignored', () => {
  const [pre, suf] = ['application/vnd.acme.v', '+json'];
  assert.equal(versionFromAccept('application/vnd.acme.v2+json', pre, suf), '2');
  assert.equal(versionFromAccept('text/html, Application/Vnd.Acme.V10+JSON ; q=0.9, */*', pre, suf), '10');
  assert.equal(versionFromAccept('application/vnd.acme.v+json', pre, suf), undefined);
  assert.equal(versionFromAccept('application/vnd.acme.v2/x+json', pre, suf), undefined);
  assert.equal(versionFromAccept('application/json', pre, suf), undefined);
  assert.equal(versionFromAccept(undefined, pre, suf), undefined);
});

test('a /v{version} prefix and the rest of the path', () => {
  assert.deepEqual(versionFromPath('/v2/users/7'), { version: '2', rest: '/users/7' });
  assert.deepEqual(versionFromPath('/v2'), { version: '2', rest: '/' });
  assert.equal(versionFromPath('/users'), undefined);
  assert.equal(versionFromPath('/v/users'), undefined);
  assert.equal(versionFromPath('/v2%2F/x'), undefined);
});

test('versioned routes take their version only; unversioned ones any; a miss names the versions', () => {
  const r = new Router(
    [
      { match: { path: '/users', version: '1' }, value: 'v1' },
      { match: { path: '/users', version: '2' }, value: 'v2' },
      { match: { path: '/health' }, value: 'any' },
    ],
    { versioning: { from: ['header', 'path'], header: 'api-version', default: '1' } },
  );
  const find = (path: string, headers = {}) => r.find('GET', '', path, headers, '');
  assert.equal(find('/users')?.value, 'v1');
  assert.equal(find('/users', { 'api-version': '2' })?.value, 'v2');
  assert.deepEqual(find('/v2/users/7'), { value: 'v2', params: {}, version: '2', path: '/users/7' });
  assert.equal(find('/health', { 'api-version': '7' })?.value, 'any');
  assert.deepEqual(find('/users', { 'api-version': '3' }), { value: undefined, versions: ['1', '2'], version: '3' });
  assert.equal(find('/nothing', { 'api-version': '3' }), undefined);
});
