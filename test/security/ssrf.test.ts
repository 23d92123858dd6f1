// The SSRF guard at the service level, over real HTTP, with ALLOW_PRIVATE_DESTINATIONS=false.
// Loopback only: every non-loopback address below appears in a URL or a resolver answer that must be
// refused before any connection, and the receiver that would notice a leak listens on 127.0.0.1.
// The resolver is a table (no real DNS): a name it does not know does not resolve.
import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { expectError, jobCount } from './helpers.js';

interface AttemptView {
  outcome: string;
  error_kind: string | null;
  error: string | null;
}

/** A dns.lookup stand-in: name → answers, or a function of how many times the name was asked. */
function resolver(table: Record<string, string[] | ((n: number) => string[] | null)>): LookupFunction {
  const asked = new Map<string, number>();
  return (hostname, options, callback) => {
    const n = (asked.get(hostname) ?? 0) + 1;
    asked.set(hostname, n);
    const entry = table[hostname];
    const answers = typeof entry === 'function' ? entry(n) : entry;
    if (!answers) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '');
    const all: LookupAddress[] = answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    if (options.all) return callback(null, all);
    callback(null, all[0]!.address, all[0]!.family);
  };
}

const TABLE = {
  localhost: ['127.0.0.1'],
  'loopback.test': ['127.0.0.1'],
  'loopback6.test': ['::1'],
  'mapped.test': ['::ffff:127.0.0.1'],
  'metadata.test': ['169.254.169.254'],
  'private.test': ['10.0.0.5'],
  'cgnat.test': ['100.64.0.1'],
  // a public answer next to a loopback one: every answer must pass, so no connection at all
  'mixed.test': ['192.0.2.1', '127.0.0.1'],
  // no answer the first time (a retryable DNS failure), loopback afterwards
  'rebind.test': (n: number) => (n === 1 ? null : ['127.0.0.1']),
};

// Every one names, in some spelling, an address that is not public unicast.
const REFUSED_URLS = [
  'http://127.0.0.1/',
  'http://127.0.0.1:{port}/hook',
  'http://127.255.255.254/',
  'http://localhost/',
  'http://localhost:{port}/',
  'http://LOCALHOST./',
  'http://api.localhost/',
  'http://[::1]/',
  'http://[::1]:{port}/',
  'http://[0:0:0:0:0:0:0:1]/',
  'http://[::ffff:127.0.0.1]/',
  'http://[::ffff:7f00:1]/',
  'http://[::127.0.0.1]/',
  'http://[64:ff9b::7f00:1]/',
  'http://[2002:7f00:1::]/',
  'http://2130706433/',
  'http://0x7f.0.0.1/',
  'http://0x7f000001/',
  'http://0177.0.0.1/',
  'http://127.1/',
  'http://0/',
  'http://0.0.0.0/',
  'http://[::]/',
  'http://169.254.169.254/latest/meta-data/',
  'http://[::ffff:169.254.169.254]/',
  'http://[fe80::1]/',
  'http://10.0.0.1/',
  'http://172.16.0.1/',
  'http://192.168.1.1/',
  'http://[fc00::1]/',
  'http://[fd12:3456::1]/',
  'http://100.64.0.1/',
  'http://198.18.0.1/',
  'http://224.0.0.1/',
  'http://[ff02::1]/',
  'http://240.0.0.1/',
  'http://255.255.255.255/',
  'https://user:pass@example.com/',
];

describe('SSRF guard, private destinations refused', () => {
  let rx: Receiver;
  let svc: TestService;

  async function attemptsOf(id: string): Promise<AttemptView[]> {
    return ((await (await svc.get(`/v1/jobs/${id}/attempts`)).json()) as { data: AttemptView[] }).data;
  }

  before(async () => {
    rx = await startReceiver();
    svc = await startTestService({ ALLOW_PRIVATE_DESTINATIONS: 'false' }, { lookup: resolver(TABLE) });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  it('answers 422 destination_not_allowed for loopback, private, link-local, CGNAT, multicast, reserved and unspecified URLs, storing nothing', async () => {
    const before = await jobCount(svc);
    for (const template of REFUSED_URLS) {
      const url = template.replace('{port}', String(rx.port));
      const res = await svc.post('/v1/jobs', jobBody(url));
      const err = await expectError(res, 422, 'destination_not_allowed');
      assert.match(err.message, /destination\.url is not allowed/, url);
    }
    assert.equal(await jobCount(svc), before);
    assert.equal(rx.requests.length, 0);
  });

  for (const host of ['loopback.test', 'loopback6.test', 'mapped.test', 'metadata.test', 'private.test', 'cgnat.test', 'mixed.test']) {
    it(`accepts ${host} at creation, then blocks the attempt at connect time and fails the job for good`, async () => {
      const res = await svc.post('/v1/jobs', jobBody(`http://${host}:${rx.port}/hook`, { retry: { max_attempts: 5, base_delay_ms: 10 } }));
      assert.equal(res.status, 201, 'a name is not resolved at creation');
      const { id } = (await res.json()) as { id: string };
      const job = await eventually(async () => {
        const j = await svc.store.getJob(id);
        return j?.status === 'failed' ? j : null;
      }, 5000);
      assert.equal(job.attempts, 1, 'blocked is permanent: no retry');
      const attempts = await attemptsOf(id);
      assert.equal(attempts.length, 1);
      assert.equal(attempts[0]?.outcome, 'permanent_error');
      assert.equal(attempts[0]?.error_kind, 'blocked');
      assert.equal(rx.requests.length, 0, 'the receiver got nothing');
    });
  }

  it('blocks a name whose answer turns to loopback between attempts, at the attempt that sees it', async () => {
    const res = await svc.post('/v1/jobs', jobBody(`http://rebind.test:${rx.port}/hook`, { retry: { max_attempts: 5, base_delay_ms: 10, max_delay_ms: 20 } }));
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    await eventually(async () => (await svc.store.getJob(id))?.status === 'failed', 5000);
    const attempts = await attemptsOf(id);
    assert.deepEqual(attempts.map((a) => [a.outcome, a.error_kind]), [['retryable_error', 'dns'], ['permanent_error', 'blocked']]);
    assert.equal(rx.requests.length, 0);
  });
});

describe('SSRF guard, 127.0.0.0/8 opened with ALLOWED_DESTINATION_CIDRS', () => {
  let rx: Receiver;
  let svc: TestService;

  before(async () => {
    rx = await startReceiver();
    svc = await startTestService(
      { ALLOW_PRIVATE_DESTINATIONS: 'false', ALLOWED_DESTINATION_CIDRS: '127.0.0.0/8' },
      { lookup: resolver(TABLE) },
    );
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  it('delivers to 127.0.0.1, localhost and a name resolving to 127.0.0.1', async () => {
    const ids: string[] = [];
    for (const host of ['127.0.0.1', 'localhost', 'loopback.test', '2130706433']) {
      const res = await svc.post('/v1/jobs', jobBody(`http://${host}:${rx.port}/hook`, { payload: { host } }));
      assert.equal(res.status, 201, host);
      ids.push(((await res.json()) as { id: string }).id);
    }
    await rx.waitFor(4, 5000);
    for (const id of ids) await eventually(async () => (await svc.store.getJob(id))?.status === 'success', 5000);
  });

  it('still refuses every range it did not open', async () => {
    const before = await jobCount(svc);
    for (const url of ['http://[::1]/', 'http://169.254.169.254/', 'http://10.0.0.1/', 'http://[::ffff:169.254.169.254]/', 'http://0.0.0.0/']) {
      await expectError(await svc.post('/v1/jobs', jobBody(url)), 422, 'destination_not_allowed');
    }
    assert.equal(await jobCount(svc), before);
  });

  it('never follows a redirect, even to an allowed address', async () => {
    rx.setHandler((req, res) => {
      if (req.url === '/moved') res.writeHead(302, { location: `http://127.0.0.1:${rx.port}/redirected` }).end();
      else res.writeHead(200).end('ok');
    });
    const before = rx.requests.length;
    const res = await svc.post('/v1/jobs', jobBody(`http://127.0.0.1:${rx.port}/moved`));
    const { id } = (await res.json()) as { id: string };
    const job = await eventually(async () => {
      const j = await svc.store.getJob(id);
      return j?.status === 'failed' ? j : null;
    }, 5000);
    assert.equal(job.last_status_code, 302);
    assert.deepEqual(rx.requests.slice(before).map((r) => r.url), ['/moved']);
  });
});
