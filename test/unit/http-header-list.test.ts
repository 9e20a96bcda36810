// List-valued response fields and repeated field lines (src/http/header-list.ts): Vary, RateLimit, Set-Cookie.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addListToken,
  appendFieldLine,
  appendListMember,
  appendSetCookie,
  listHasToken,
  type HeaderFields,
} from '../../src/http/header-list.ts';

describe('list-valued fields', () => {
  test('a token is added once, compared without case and OWS, in a string or in several field lines', () => {
    const h: HeaderFields = {};
    addListToken(h, 'vary', 'Origin');
    assert.equal(h.vary, 'Origin');
    addListToken(h, 'vary', 'Accept-Encoding');
    addListToken(h, 'vary', 'accept-encoding');
    addListToken(h, 'vary', 'ORIGIN');
    assert.equal(h.vary, 'Origin, Accept-Encoding');
    const lines: HeaderFields = { vary: ['Cookie', ' origin '] };
    addListToken(lines, 'vary', 'Origin');
    assert.deepEqual(lines.vary, ['Cookie', ' origin ']);
    addListToken(lines, 'vary', 'Accept-Encoding');
    assert.equal(lines.vary, 'Cookie,  origin , Accept-Encoding');
  });

  test('Vary: * already varies on everything, so nothing is added to it', () => {
    const h: HeaderFields = { vary: 'Cookie, *' };
    addListToken(h, 'vary', 'Origin');
    assert.equal(h.vary, 'Cookie, *');
  });

  test('an empty field is replaced, and a token that only starts like a member is not that member', () => {
    const empty: HeaderFields = { vary: '' };
    addListToken(empty, 'vary', 'Origin');
    assert.equal(empty.vary, 'Origin');
    const none: HeaderFields = { vary: [] };
    addListToken(none, 'vary', 'Origin');
    assert.equal(none.vary, 'Origin');
    assert.equal(listHasToken('Origin-Agent, X-Origin', 'Origin'), false);
    assert.equal(listHasToken('a,,\tOrigin\t', 'origin'), true);
    assert.equal(listHasToken(undefined, 'Origin'), false);
  });

  test('a list member is appended even when one like it is there (each RateLimit-Policy member is its own)', () => {
    const h: HeaderFields = {};
    appendListMember(h, 'ratelimit-policy', '"a";q=10');
    appendListMember(h, 'ratelimit-policy', '"a";q=10');
    assert.equal(h['ratelimit-policy'], '"a";q=10, "a";q=10');
    const lines: HeaderFields = { ratelimit: ['"x";r=1', '"y";r=2'] };
    appendListMember(lines, 'ratelimit', '"z";r=3');
    assert.equal(lines.ratelimit, '"x";r=1, "y";r=2, "z";r=3');
  });
});

describe('repeated field lines', () => {
  test('each Set-Cookie is its own field line, never folded with commas', () => {
    const h: HeaderFields = {};
    appendSetCookie(h, 'a=1; Path=/');
    assert.equal(h['set-cookie'], 'a=1; Path=/');
    appendSetCookie(h, 'b=2, with comma');
    assert.deepEqual(h['set-cookie'], ['a=1; Path=/', 'b=2, with comma']);
  });

  test('appending never changes an array in place: a cached response may share it', () => {
    const shared = ['a=1'];
    const h: HeaderFields = { 'set-cookie': shared };
    appendSetCookie(h, 'b=2');
    appendFieldLine(h, 'x-note', 'one');
    appendFieldLine(h, 'x-note', 'two');
    assert.deepEqual(shared, ['a=1']);
    assert.deepEqual(h['set-cookie'], ['a=1', 'b=2']);
    assert.deepEqual(h['x-note'], ['one', 'two']);
    const n: HeaderFields = { 'x-count': 3 };
    appendFieldLine(n, 'x-count', '4');
    assert.deepEqual(n['x-count'], ['3', '4']);
  });
});
