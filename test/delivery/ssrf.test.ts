import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { describe, it } from 'node:test';
import { createDestinationGuard, DestinationBlockedError } from '../../src/delivery/ssrf.js';

/** A resolver answering from a table, as dns.lookup would; unknown names fail with ENOTFOUND. */
function fakeResolver(table: Record<string, string[]>): LookupFunction {
  return (hostname, options, callback) => {
    const answers = table[hostname];
    if (!answers) {
      const e = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      return callback(e, '');
    }
    const all: LookupAddress[] = answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    if (options.all) return callback(null, all);
    callback(null, all[0]!.address, all[0]!.family);
  };
}

function lookupAsync(lookup: LookupFunction, host: string, all: boolean): Promise<{ address: string | LookupAddress[]; family?: number }> {
  return new Promise((resolve, reject) => {
    lookup(host, { all, family: 0 }, (err, address, family) => (err ? reject(err) : resolve({ address, family })));
  });
}

const strict = createDestinationGuard({ allowPrivate: false, allowedCidrs: [] });

describe('isAddressAllowed', () => {
  const blocked: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local cloud metadata'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.127.255.255', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', '0.0.0.0/8'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.0.1', 'IETF protocol assignments'],
    ['192.0.2.1', 'TEST-NET-1'],
    ['198.51.100.1', 'TEST-NET-2'],
    ['203.0.113.1', 'TEST-NET-3'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['::1', 'v6 loopback'],
    ['::', 'v6 unspecified'],
    ['fe80::1', 'v6 link-local'],
    ['fe80::1%eth0', 'v6 link-local with zone'],
    ['fc00::1', 'unique local'],
    ['fd12:3456::1', 'unique local'],
    ['fec0::1', 'deprecated site-local'],
    ['ff02::1', 'v6 multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback, hex'],
    ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::7f00:1', 'IPv4-compatible loopback'],
    ['::ffff:0:7f00:1', 'rfc6145 translated'],
    ['64:ff9b::7f00:1', 'NAT64 of loopback'],
    ['64:ff9b::808:808', 'NAT64, even of a public v4'],
    ['2002:7f00:1::1', '6to4 of loopback'],
    ['2001::1', 'teredo'],
    ['2001:db8::1', 'documentation'],
    ['[::1]', 'bracketed v6 loopback'],
    ['not-an-ip', 'not an address'],
    ['', 'empty'],
    ['127.1', 'non-canonical v4 (only the URL parser may normalize)'],
  ];
  for (const [ip, why] of blocked) {
    it(`blocks ${ip || '""'} (${why})`, () => assert.equal(strict.isAddressAllowed(ip), false));
  }

  for (const ip of ['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '100.128.0.1', '198.20.0.1', '2606:4700:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8']) {
    it(`allows public unicast ${ip}`, () => assert.equal(strict.isAddressAllowed(ip), true));
  }

  it('allows everything when allowPrivate is set', () => {
    const open = createDestinationGuard({ allowPrivate: true, allowedCidrs: [] });
    for (const ip of ['127.0.0.1', '10.0.0.1', '169.254.169.254', '::1', 'fe80::1']) assert.equal(open.isAddressAllowed(ip), true, ip);
  });

  it('opens only the allowed CIDRs, in both v4 and IPv4-mapped form', () => {
    const g = createDestinationGuard({ allowPrivate: false, allowedCidrs: ['127.0.0.0/8', '::1/128', ' fd00::/8 '] });
    for (const ip of ['127.0.0.1', '127.9.9.9', '::ffff:127.0.0.1', '::1', 'fd00::5']) assert.equal(g.isAddressAllowed(ip), true, ip);
    for (const ip of ['10.0.0.1', '169.254.169.254', 'fe80::1', 'fc00::1']) assert.equal(g.isAddressAllowed(ip), false, ip);
  });

  it('refuses an invalid CIDR at creation, naming it', () => {
    assert.throws(() => createDestinationGuard({ allowPrivate: false, allowedCidrs: ['10.0.0.0/33'] }), /10\.0\.0\.0\/33/);
    assert.throws(() => createDestinationGuard({ allowPrivate: false, allowedCidrs: ['localhost'] }), /invalid CIDR/);
  });
});

describe('checkUrl', () => {
  const refused = [
    'http://127.0.0.1/',
    'http://2130706433/',
    'http://0177.0.0.1/',
    'http://0x7f.0.0.1/',
    'http://0x7f000001/',
    'http://127.1/',
    'http://127.0.0.1./',
    'http://0/',
    'http://0.0.0.0:8080/',
    'http://10.1.2.3/hook',
    'http://012.1.2.3/',
    'http://169.254.169.254/latest/meta-data/',
    'http://0xa9fea9fe/',
    'http://100.64.0.1/',
    'http://198.18.0.1/',
    'http://[::1]/',
    'http://[::]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://[::127.0.0.1]/',
    'http://[fe80::1]/',
    'http://[fc00::1]/',
    'http://[ff02::1]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://localhost/',
    'http://LOCALHOST:3000/',
    'http://localhost./',
    'http://api.localhost/',
    'https://user:pass@example.com/',
    'https://user@example.com/',
    'ftp://example.com/',
    'file:///etc/passwd',
    'gopher://example.com/',
    'javascript:alert(1)',
    'not a url',
    '/relative/path',
  ];
  for (const url of refused) {
    it(`refuses ${url}`, () => {
      const r = strict.checkUrl(url);
      assert.equal(r.ok, false);
      assert.ok(!r.ok && r.reason.length > 0);
    });
  }

  for (const url of ['https://example.com/hook', 'http://example.com:8080/a?b=c', 'https://8.8.8.8/', 'https://[2606:4700:4700::1111]/', 'https://localhost.example.com/']) {
    it(`accepts ${url}`, () => assert.deepEqual(strict.checkUrl(url), { ok: true }));
  }

  it('accepts a name that resolves privately: that is caught at connect time, not here', () => {
    assert.deepEqual(strict.checkUrl('http://evil.test/'), { ok: true });
  });

  it('allows private and loopback hosts with allowPrivate, but still only http(s) without credentials', () => {
    const open = createDestinationGuard({ allowPrivate: true, allowedCidrs: [] });
    for (const url of ['http://127.0.0.1:9/', 'http://localhost/', 'http://[::1]/', 'http://10.0.0.1/']) assert.deepEqual(open.checkUrl(url), { ok: true }, url);
    assert.equal(open.checkUrl('ftp://127.0.0.1/').ok, false);
    assert.equal(open.checkUrl('http://a:b@127.0.0.1/').ok, false);
  });

  it('lets allowed CIDRs through, and localhost with them when loopback is opened', () => {
    const g = createDestinationGuard({ allowPrivate: false, allowedCidrs: ['127.0.0.0/8'] });
    assert.deepEqual(g.checkUrl('http://127.0.0.1:8080/'), { ok: true });
    assert.deepEqual(g.checkUrl('http://2130706433/'), { ok: true });
    assert.deepEqual(g.checkUrl('http://localhost:8080/'), { ok: true });
    assert.equal(g.checkUrl('http://10.0.0.1/').ok, false);
  });
});

describe('lookup (connect-time check)', () => {
  const resolver = fakeResolver({
    'evil.test': ['127.0.0.1'],
    'metadata.test': ['169.254.169.254'],
    'mixed.test': ['93.184.216.34', '10.0.0.7'],
    'v6evil.test': ['::1'],
    'good.test': ['93.184.216.34', '2606:4700:4700::1111'],
  });
  const guard = createDestinationGuard({ allowPrivate: false, allowedCidrs: [], lookup: resolver });

  for (const host of ['evil.test', 'metadata.test', 'mixed.test', 'v6evil.test']) {
    it(`refuses ${host} with a DestinationBlockedError (code PULSEGATE_BLOCKED)`, async () => {
      for (const all of [true, false]) {
        const err = await lookupAsync(guard.lookup, host, all).then(
          () => assert.fail('lookup should have failed'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof DestinationBlockedError);
        assert.equal(err.code, 'PULSEGATE_BLOCKED');
        assert.equal(err.host, host);
      }
    });
  }

  it('answers like dns.lookup for a public name, in both all and single form', async () => {
    const many = await lookupAsync(guard.lookup, 'good.test', true);
    assert.deepEqual(many.address, [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:4700:4700::1111', family: 6 },
    ]);
    assert.deepEqual(await lookupAsync(guard.lookup, 'good.test', false), { address: '93.184.216.34', family: 4 });
  });

  it('passes resolver errors through untouched', async () => {
    await assert.rejects(lookupAsync(guard.lookup, 'nowhere.test', true), { code: 'ENOTFOUND' });
  });

  it('lets a private answer through when its range is allowed', async () => {
    const g = createDestinationGuard({ allowPrivate: false, allowedCidrs: ['127.0.0.0/8'], lookup: resolver });
    assert.deepEqual(await lookupAsync(g.lookup, 'evil.test', false), { address: '127.0.0.1', family: 4 });
  });
});
