// The Cookie header (src/http/cookies.ts): the one tokenizer sticky sessions, the hash key, jwt and the cache use.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cookieValue, forEachCookie, removeCookie } from '../../src/http/cookies.ts';

function pairs(header: string): [string, string | undefined][] {
  const out: [string, string | undefined][] = [];
  forEachCookie(header, out, (o, name, value) => (o.push([name, value]), true));
  return out;
}

describe('Cookie header', () => {
  test('; separates pairs, OWS around a pair is trimmed, the first = splits name and value', () => {
    assert.deepEqual(pairs('a=1; b=x=y;\tc="q" ;;  ; d='), [
      ['a', '1'],
      ['b', 'x=y'],
      ['c', '"q"'],
      ['d', ''],
    ]);
    assert.deepEqual(pairs(''), []);
  });

  test('names are exact: nothing is trimmed around =, and case counts', () => {
    assert.deepEqual(pairs('a =1; A=2'), [
      ['a ', '1'],
      ['A', '2'],
    ]);
    assert.equal(cookieValue('a =1; A=2', 'a'), undefined);
    assert.equal(cookieValue('a =1; A=2', 'A'), '2');
    assert.equal(cookieValue('sida=1; sid=2', 'sid'), '2');
  });

  test('a pair without = is no cookie: lookups skip it, the tokenizer reports it without a value', () => {
    assert.deepEqual(pairs('flag; a=1; =v'), [
      ['flag', undefined],
      ['a', '1'],
      ['', 'v'],
    ]);
    assert.equal(cookieValue('sid; sid=2', 'sid'), '2');
  });

  test('a repeated name: a lookup sees the first occurrence, even an empty one', () => {
    assert.equal(cookieValue('sid=1; sid=2', 'sid'), '1');
    assert.equal(cookieValue('sid=; sid=2', 'sid'), '');
  });

  test('a lookup strips one pair of DQUOTEs around the value and trailing OWS, as Envoy reads cookies', () => {
    assert.equal(cookieValue('t="abc"', 't'), 'abc');
    assert.equal(cookieValue('t=""', 't'), '');
    assert.equal(cookieValue('t="', 't'), '"');
    assert.equal(cookieValue('\tt=abc \t; u=1', 't'), 'abc');
    assert.equal(cookieValue('t=a"b"', 't'), 'a"b"');
  });

  test('a name holding = matches nothing, in lookups as in the tokenizer', () => {
    assert.equal(cookieValue('a=b=c', 'a=b'), undefined);
    assert.equal(cookieValue('a=b=c', 'a'), 'b=c');
  });

  test('the tokenizer stops when the visitor says so', () => {
    const seen: string[] = [];
    assert.equal(
      forEachCookie('a=1; b=2; c=3', seen, (s, name) => (s.push(name), name !== 'b')),
      false,
    );
    assert.deepEqual(seen, ['a', 'b']);
  });

  test('removing a cookie removes every pair of that name and joins the others with "; "', () => {
    assert.equal(removeCookie('theme=dark;tok=1;  lang=en; tok=2', 'tok'), 'theme=dark; lang=en');
    assert.equal(removeCookie('tok=1', 'tok'), '');
    assert.equal(removeCookie('flag; tok=1', 'tok'), 'flag', 'a pair without = is kept');
    assert.equal(removeCookie('tok; a=1', 'tok'), 'tok; a=1', 'it is not a cookie called tok');
  });
});
