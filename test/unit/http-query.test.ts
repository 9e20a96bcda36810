// Query strings (src/http/query.ts): the one rule route predicates, key-auth, jwt and the hash key read them by.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseQuery, queryValue, redactQueryParam, removeQueryParam } from '../../src/http/query.ts';

describe('query strings', () => {
  test('& separates parameters, the first = splits name and value, a name without = has the value ""', () => {
    const q = '?a=1&b=x=y&flag&&c=';
    assert.equal(queryValue(q, 'a'), '1');
    assert.equal(queryValue(q, 'b'), 'x=y');
    assert.equal(queryValue(q, 'flag'), '');
    assert.equal(queryValue(q, 'c'), '');
    assert.equal(queryValue(q, 'd'), undefined);
    assert.equal(queryValue('a=1;b=2', 'b'), undefined, '; is not a separator');
    assert.equal(queryValue('a=1;b=2', 'a'), '1;b=2');
  });

  test('one leading ? is not part of the query; the query may come without it', () => {
    assert.equal(queryValue('?a=1', 'a'), '1');
    assert.equal(queryValue('a=1', 'a'), '1');
    assert.equal(queryValue('??a=1', '?a'), '1');
    assert.equal(queryValue('', 'a'), undefined);
    assert.equal(queryValue('?', 'a'), undefined);
  });

  test('names and values are percent-decoded with + as a space; one that does not decode is taken as sent', () => {
    assert.equal(queryValue('?q=a+b%20c', 'q'), 'a b c');
    assert.equal(queryValue('?pa%67e=3', 'page'), '3');
    assert.equal(queryValue('?my+name=1', 'my name'), '1');
    assert.equal(queryValue('?q=100%&x', 'q'), '100%');
    assert.equal(queryValue('?q=a+b%zz', 'q'), 'a b%zz');
    assert.equal(queryValue('?%zz=1', '%zz'), '1');
    assert.equal(queryValue('?a+b=1&a%2Bb=2', 'a+b'), '2', 'a name asked for is compared with the decoded names');
    assert.equal(queryValue('?a+b=1', 'a b'), '1');
  });

  test('a repeated name: a lookup sees the first occurrence, parseQuery keeps every value in order', () => {
    assert.equal(queryValue('?k=1&k=2', 'k'), '1');
    assert.equal(queryValue('?k&k=2', 'k'), '', 'a first occurrence without = is the empty value');
    assert.equal(queryValue('?%6B=1&k=2', 'k'), '1', 'occurrences compare decoded');
    assert.deepEqual(
      [...parseQuery('?k=1&a=x+y&k=2&k&=v')],
      [
        ['k', ['1', '2', '']],
        ['a', ['x y']],
        ['', ['v']],
      ],
    );
    assert.deepEqual([...parseQuery('')], []);
  });

  test('removing a parameter removes every occurrence and keeps the others byte for byte', () => {
    assert.equal(removeQueryParam('?a=1&k=x&b=%20+&k=y', 'k'), '?a=1&b=%20+');
    assert.equal(removeQueryParam('?k=x', 'k'), '');
    assert.equal(removeQueryParam('?k', 'k'), '', 'a name without a value too');
    assert.equal(removeQueryParam('a=1&%6B=x', 'k'), 'a=1', 'the form of the input is kept; names compare decoded');
    assert.equal(removeQueryParam('?a=1&&k=x&', 'k'), '?a=1', 'empty parameters go with the rewrite');
    const q = '?a=1&kk=2&&';
    assert.equal(removeQueryParam(q, 'k'), q, 'nothing to remove: the query itself');
  });

  test('redacting a parameter masks the value of every occurrence and nothing else', () => {
    assert.equal(redactQueryParam('?a=1&k=s1&b=2&k=s2', 'k', '[REDACTED]'), '?a=1&k=[REDACTED]&b=2&k=[REDACTED]');
    assert.equal(redactQueryParam('?k%31=s&k1=t', 'k1', 'X'), '?k%31=X&k1=X');
    assert.equal(redactQueryParam('?k=&k&a=k', 'k', 'X'), '?k=&k&a=k', 'no value, nothing to mask');
  });
});
