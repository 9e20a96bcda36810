// Percent-decoding (src/http/percent.ts): query components, path parameters and path patterns; never throws.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hasEscape, percentDecode, percentDecodePath } from '../../src/http/percent.ts';

describe('percent-decoding', () => {
  test('escapes decode as UTF-8; + is a space only under the query rule', () => {
    assert.equal(percentDecode('a%20b%C3%A9', false), 'a bé');
    assert.equal(percentDecode('a+b', true), 'a b');
    assert.equal(percentDecode('a+b', false), 'a+b');
    assert.equal(percentDecode('a%2Bb', true), 'a+b', 'an escaped + stays a +');
  });

  test('text that does not decode is kept as sent (+ still a space) and nothing throws', () => {
    assert.equal(percentDecode('100%', false), '100%');
    assert.equal(percentDecode('%zz%20', false), '%zz%20');
    assert.equal(percentDecode('%FF', false), '%FF', 'not UTF-8');
    assert.equal(percentDecode('%ED%A0%80', false), '%ED%A0%80', 'an encoded surrogate');
    assert.equal(percentDecode('a+b%zz', true), 'a b%zz');
  });

  test('text without escapes is returned as it is', () => {
    const s = 'plain-text';
    assert.equal(percentDecode(s, true), s);
    assert.equal(percentDecodePath(s), s);
    assert.equal(hasEscape('a+b', 0, 3, false), false);
    assert.equal(hasEscape('a+b', 0, 3, true), true);
    assert.equal(hasEscape('a%b', 2, 3, true), false, 'only the range counts');
  });

  test('a path keeps escapes of reserved characters, so its segments stay apart', () => {
    assert.equal(percentDecodePath('caf%C3%A9'), 'café');
    assert.equal(percentDecodePath('a%2Fb'), 'a%2Fb');
    assert.equal(percentDecodePath('50%'), '50%');
  });
});
