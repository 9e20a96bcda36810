// Address lists (src/http/cidr.ts): ip-filter, trustedProxies and the cache's purge allow list share them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CidrList, isCidr } from '../../src/http/cidr.ts';

describe('address lists', () => {
  test('IPv4 and IPv6 addresses and subnets in one list', () => {
    const list = new CidrList(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1']);
    for (const ip of ['10.1.2.3', '192.168.1.7', '2001:db8:1::5', '::1', '2001:DB8::1'])
      assert.equal(list.has(ip), true, ip);
    for (const ip of ['11.0.0.1', '192.168.1.8', '2001:db9::1', '::2']) assert.equal(list.has(ip), false, ip);
    assert.equal(list.size, 4);
  });

  test('an IPv4-mapped IPv6 address matches IPv4 entries, and an IPv4 address ::ffff: entries', () => {
    const v4 = new CidrList(['10.0.0.0/8']);
    assert.equal(v4.has('::ffff:10.1.2.3'), true);
    assert.equal(v4.has('::ffff:a01:203'), true);
    assert.equal(v4.has('::ffff:11.1.2.3'), false);
    const mapped = new CidrList(['::ffff:192.168.0.0/112']);
    assert.equal(mapped.has('192.168.4.5'), true);
    assert.equal(mapped.has('192.169.4.5'), false);
  });

  test('anything that is not an address is in no list, and checking never throws', () => {
    const list = new CidrList(['0.0.0.0/0', '::/0']);
    for (const ip of ['', 'garbage', '10.0.0.256', '10.0.0.1:80', '[::1]', ':::'])
      assert.equal(list.has(ip), false, ip);
    assert.equal(new CidrList([]).has('10.0.0.1'), false);
  });

  test('isCidr accepts an address or a prefix length its family allows', () => {
    for (const v of ['10.0.0.1', '10.0.0.0/8', '0.0.0.0/0', '10.0.0.0/32', '2001:db8::/32', '::/128'])
      assert.equal(isCidr(v), true, v);
    for (const v of [
      '10.0.0.0/33',
      '::/129',
      '10.0.0.0/',
      '10.0.0.0/8/8',
      '10.0.0.0/-1',
      'example.com',
      '10.0.0.0/0x8',
    ])
      assert.equal(isCidr(v), false, v);
  });
});
