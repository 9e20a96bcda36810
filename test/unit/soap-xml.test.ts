// The soap plugin's XML on its own: the envelope it writes, the answers it reads, and its config's checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envelope, envelopeParts, readEnvelope, SoapInputError } from '../../src/plugins/soap-xml.ts';
import { pluginConfigProblems } from '../helpers/config.ts';

const parts = envelopeParts('1.1', 'GetQuote', 'urn:q&a');

test('the envelope: members as elements, escaped, the namespace attribute escaped too', () => {
  assert.equal(
    envelope(parts, { s: 'a<b', n: 1, ok: true, none: null, list: [1, { '@_k': 'v' }] }),
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">' +
      '<soap:Body><GetQuote xmlns="urn:q&amp;a"><s>a&lt;b</s><n>1</n><ok>true</ok><none/><list>1</list><list k="v"/>' +
      '</GetQuote></soap:Body></soap:Envelope>',
  );
});

test('names that are no XML names, control characters and deep nesting are refused', () => {
  for (const args of [{ 'a>b': 1 }, { '@_x y': 1 }, { 'ns:x': 1 }, { a: '\u0000' }, { '@_a': { b: 1 } }]) {
    assert.throws(() => envelope(parts, args), SoapInputError, JSON.stringify(args));
  }
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 100; i++) deep = { d: deep };
  assert.throws(() => envelope(parts, deep), /nested deeper/);
});

test('answers: numbers only when exact, character references decoded, xmlns dropped, an empty Body is null', () => {
  const wrap = (inner: string) =>
    `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>${inner}</e:Body></e:Envelope>`;
  assert.deepEqual(
    readEnvelope(
      wrap('<R xmlns="urn:q"><a>007</a><b>1.50</b><c>2.5</c><d>99999999999999999999</d><e>&#65;&lt;</e></R>'),
    ),
    { kind: 'result', value: { a: '007', b: '1.50', c: 2.5, d: '99999999999999999999', e: 'A<' } },
  );
  assert.deepEqual(readEnvelope(wrap('')), { kind: 'result', value: null });
});

test('a DOCTYPE, XML that is not well-formed, or no Envelope/Body is invalid', () => {
  const xxe =
    '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><Envelope><Body>&x;</Body></Envelope>';
  for (const text of [xxe, '<Envelope><Body></Envelope>', '<Other/>', '<Envelope/>', '{"json": true}']) {
    assert.equal(readEnvelope(text).kind, 'invalid', text);
  }
});

test('Faults: 1.1 faultcode/faultstring, 1.2 Code/Value and the first Reason/Text', () => {
  assert.deepEqual(
    readEnvelope(
      '<Envelope><Body><Fault><faultcode>Server</faultcode><faultstring>boom</faultstring></Fault></Body></Envelope>',
    ),
    { kind: 'fault', code: 'Server', reason: 'boom' },
  );
  assert.deepEqual(
    readEnvelope(
      '<Envelope><Body><Fault><Code><Value>Receiver</Value></Code><Reason><Text xml:lang="en">down</Text>' +
        '<Text xml:lang="fr">en panne</Text></Reason></Fault></Body></Envelope>',
    ),
    { kind: 'fault', code: 'Receiver', reason: 'down' },
  );
});

test('config: operation must be an XML name, action has no quotes, faultStatus an error status', () => {
  assert.deepEqual(pluginConfigProblems('      - soap: { namespace: "urn:q", operation: GetQuote }'), []);
  const problems = pluginConfigProblems(
    '      - soap: { namespace: "urn:q", operation: "Get Quote", action: "a\\"b", version: "2", faultStatus: 200 }',
  );
  assert.equal(problems.length, 4, problems.join('\n'));
  for (const key of ['operation', 'action', 'version', 'faultStatus'])
    assert.ok(
      problems.some((p) => p.includes(key)),
      key,
    );
});
