import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mediaQuality, prefersHtml } from '../../src/http/accept.ts';

test('mediaQuality takes the q of the most specific range that covers the type', () => {
  assert.equal(mediaQuality('text/*;q=0.5, text/html;q=0.8, */*;q=0.1', 'text/html'), 0.8);
  assert.equal(mediaQuality('text/*;q=0.5, */*;q=0.1', 'text/html'), 0.5);
  assert.equal(mediaQuality('*/*;q=0.1', 'application/json'), 0.1);
  assert.equal(mediaQuality('application/json', 'text/html'), 0);
  assert.equal(mediaQuality('text/html;q=0', 'text/html'), 0);
  assert.equal(mediaQuality(undefined, 'text/html'), 1);
});

test('prefersHtml: browsers yes; curl, API clients and no Accept no', () => {
  assert.equal(prefersHtml('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'), true);
  assert.equal(prefersHtml('*/*'), false);
  assert.equal(prefersHtml(undefined), false);
  assert.equal(prefersHtml('application/json'), false);
  assert.equal(prefersHtml('application/json, text/html;q=0.5'), false);
  assert.equal(prefersHtml('text/html, application/problem+json'), false);
  assert.equal(prefersHtml('TEXT/HTML'), true);
});
