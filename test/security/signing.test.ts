// Standard Webhooks signing end to end: a real delivery to a real receiver, checked with the
// standardwebhooks package the way a receiver would check it; rotation; per-tenant secrets; and
// configuration errors that name the variable without showing the secret.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { loadConfig, signingSecrets } from '../../src/config.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { captureLogs } from './helpers.js';

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

function verify(secret: string, r: ReceivedRequest): unknown {
  return new Webhook(secret).verify(r.body, {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  });
}

async function deliverOne(svc: TestService, rx: Receiver, body: Record<string, unknown>): Promise<ReceivedRequest> {
  const before = rx.requests.length;
  const res = await svc.post('/v1/jobs', body);
  assert.equal(res.status, 201, await res.clone().text());
  const { id } = (await res.json()) as { id: string };
  await rx.waitFor(before + 1, 5000);
  const r = rx.requests.find((q) => q.headers['webhook-id'] === id);
  assert.ok(r, 'the delivery carries the job id as webhook-id');
  await eventually(async () => (await svc.store.getJob(id))?.status === 'success', 5000);
  return r;
}

describe('signed deliveries', () => {
  const current = newSecret();
  const previous = newSecret();
  const acme = newSecret();
  const acmeOld = newSecret();
  let rx: Receiver;
  let svc: TestService;

  before(async () => {
    rx = await startReceiver();
    svc = await startTestService({
      SIGNING_SECRET: current,
      SIGNING_SECRET_PREVIOUS: previous,
      SIGNING_SECRET_PREVIOUS_EXPIRES_AT: new Date(Date.now() + 3_600_000).toISOString(),
      TENANT_SIGNING_SECRETS: `acme=${acme}; acme=${acmeOld}@2099-01-01T00:00:00Z`,
    });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  it('signs a delivery the standardwebhooks package verifies, over the exact bytes received', async () => {
    const payload = { order_id: 7, note: 'ünïcødé ✓', nested: { a: [1, 2, 3] } };
    const r = await deliverOne(svc, rx, jobBody(`${rx.url}/hook`, { payload }));
    assert.deepEqual(verify(current, r), payload);
    const ts = Number(r.headers['webhook-timestamp']);
    assert.ok(Math.abs(ts - Date.now() / 1000) < 60, 'webhook-timestamp is unix seconds, now');
    assert.throws(() => new Webhook(current).verify(`${r.body} `, r.headers as Record<string, string>), 'a changed body fails');
    assert.throws(() => verify(newSecret(), r), 'another secret fails');
  });

  it('sends a signature for the current and the previous secret during a rotation, each verifiable alone', async () => {
    const r = await deliverOne(svc, rx, jobBody(`${rx.url}/hook`, { payload: { rotation: true } }));
    const parts = String(r.headers['webhook-signature']).split(' ');
    assert.equal(parts.length, 2);
    assert.ok(parts.every((p) => p.startsWith('v1,')));
    assert.deepEqual(verify(current, r), { rotation: true });
    assert.deepEqual(verify(previous, r), { rotation: true }, 'a receiver still on the old secret verifies');
  });

  it("signs a tenant's deliveries with its own secrets only", async () => {
    const r = await deliverOne(svc, rx, jobBody(`${rx.url}/hook`, { tenant_id: 'acme', payload: { tenant: 'acme' } }));
    assert.equal(String(r.headers['webhook-signature']).split(' ').length, 2);
    assert.deepEqual(verify(acme, r), { tenant: 'acme' });
    assert.deepEqual(verify(acmeOld, r), { tenant: 'acme' });
    assert.throws(() => verify(current, r), 'the global secret does not verify a tenant delivery');
  });

});

describe("a tenant whose own signing secrets all expire", () => {
  it('is signed with its own secret until the expiry, then with the global secret, never unsigned, and the log says so', async () => {
    const rx = await startReceiver();
    const [global, own] = [newSecret(), newSecret()];
    const logs = captureLogs('warn');
    const expiresAt = Date.now() + 1500;
    const svc = await startTestService(
      { SIGNING_SECRET: global, TENANT_SIGNING_SECRETS: `acme=${own}@${new Date(expiresAt).toISOString()}` },
      { logger: logs.logger },
    );
    try {
      const expiring = logs.records().filter((r) => r.event === 'signing.expiring');
      assert.deepEqual(expiring.map((r) => [r.tenant_id, r.expires_at]), [['acme', new Date(expiresAt).toISOString()]], 'warned at start');

      const before = await deliverOne(svc, rx, jobBody(`${rx.url}/hook`, { tenant_id: 'acme', payload: { n: 1 } }));
      assert.deepEqual(verify(own, before), { n: 1 });
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now() + 50)));
      const after = await deliverOne(svc, rx, jobBody(`${rx.url}/hook`, { tenant_id: 'acme', payload: { n: 2 } }));
      assert.ok(after.headers['webhook-signature'], 'signed');
      assert.deepEqual(verify(global, after), { n: 2 });
      assert.throws(() => verify(own, after), 'the expired secret no longer signs');
      const fallbacks = logs.records().filter((r) => r.event === 'signing.fallback');
      assert.equal(fallbacks.length, 1);
      assert.equal(fallbacks[0]?.tenant_id, 'acme');
      const metrics = await (await svc.get('/metrics')).text();
      assert.match(metrics, new RegExp(`pulsegate_signing_secret_expiry_timestamp_seconds\\{tenant="acme"\\} ${Math.floor(expiresAt / 1000)}`));
    } finally {
      await svc.cleanup();
      await rx.close();
    }
  });

  it('refuses to start when its secrets have all expired already, naming the tenant', async () => {
    await assert.rejects(
      startTestService({ SIGNING_SECRET: newSecret(), TENANT_SIGNING_SECRETS: `acme=${newSecret()}@2020-01-01T00:00:00Z` }),
      (err: Error & { code?: string }) => err.code === 'config_invalid' && /tenant acme expired/.test(err.message),
    );
  });

  it('is refused by the configuration when there is no SIGNING_SECRET to fall back on', () => {
    assert.throws(
      () => loadConfig({ TENANT_SIGNING_SECRETS: `acme=${newSecret()}@2099-01-01T00:00:00Z` }),
      (err: Error) => /TENANT_SIGNING_SECRETS: every secret of tenant acme has an expiry/.test(err.message),
    );
    assert.doesNotThrow(() => loadConfig({ TENANT_SIGNING_SECRETS: `acme=${newSecret()}; acme=${newSecret()}@2099-01-01T00:00:00Z` }));
  });
});

describe('signing after the rotation window', () => {
  it('stops signing with the previous secret once SIGNING_SECRET_PREVIOUS_EXPIRES_AT passes', async () => {
    const rx = await startReceiver();
    const current = newSecret();
    const previous = newSecret();
    const svc = await startTestService({
      SIGNING_SECRET: current,
      SIGNING_SECRET_PREVIOUS: previous,
      SIGNING_SECRET_PREVIOUS_EXPIRES_AT: new Date(Date.now() - 1000).toISOString(),
    });
    try {
      const r = await deliverOne(svc, rx, jobBody(`${rx.url}/hook`));
      assert.equal(String(r.headers['webhook-signature']).split(' ').length, 1);
      assert.ok(verify(current, r));
      assert.throws(() => verify(previous, r));
    } finally {
      await svc.cleanup();
      await rx.close();
    }
  });

  it('sends unsigned deliveries without SIGNING_SECRET (and says so at start)', async () => {
    const rx = await startReceiver();
    const logs = captureLogs();
    const svc = await startTestService({}, { logger: logs.logger });
    try {
      const r = await deliverOne(svc, rx, jobBody(`${rx.url}/hook`));
      assert.equal(r.headers['webhook-signature'], undefined);
      assert.ok(logs.records().some((l) => l.level === 40 && /no SIGNING_SECRET/.test(String(l.msg))));
    } finally {
      await svc.cleanup();
      await rx.close();
    }
  });
});

describe('signing configuration', () => {
  const good = newSecret();
  const soon = '2030-01-01T00:00:00Z';

  it('collects the global secrets (current first) and the tenant ones', () => {
    const c = loadConfig({
      SIGNING_SECRET: good,
      SIGNING_SECRET_PREVIOUS: `whsec_${randomBytes(24).toString('base64')}`,
      SIGNING_SECRET_PREVIOUS_EXPIRES_AT: soon,
      TENANT_SIGNING_SECRETS: `a=${good};b:c.d=${good}@2030-01-01T00:00:00+02:00`,
    });
    const s = signingSecrets(c);
    assert.equal(s[0]?.secret, good);
    assert.equal(s[0]?.expires_at, undefined);
    assert.equal(s[1]?.expires_at, Date.parse(soon));
    assert.deepEqual(s.slice(2).map((x) => [x.tenant_id, x.expires_at]), [['a', undefined], ['b:c.d', Date.parse('2029-12-31T22:00:00Z')]]);
  });

  for (const [name, env, why] of [
    ['SIGNING_SECRET', { SIGNING_SECRET: 'hunter2-hunter2-hunter2-hunter2' }, /start with "whsec_"/],
    ['SIGNING_SECRET', { SIGNING_SECRET: 'whsec_c2hvcnQ=' }, /24-64 bytes/],
    ['SIGNING_SECRET_PREVIOUS', { SIGNING_SECRET: good, SIGNING_SECRET_PREVIOUS: 'whsec_!!', SIGNING_SECRET_PREVIOUS_EXPIRES_AT: soon }, /base64/],
    ['SIGNING_SECRET_PREVIOUS_EXPIRES_AT', { SIGNING_SECRET: good, SIGNING_SECRET_PREVIOUS: newSecret() }, /required with SIGNING_SECRET_PREVIOUS/],
    ['SIGNING_SECRET_PREVIOUS_EXPIRES_AT', { SIGNING_SECRET: good, SIGNING_SECRET_PREVIOUS: newSecret(), SIGNING_SECRET_PREVIOUS_EXPIRES_AT: 'tomorrow' }, /RFC 3339/],
    ['SIGNING_SECRET_PREVIOUS', { SIGNING_SECRET_PREVIOUS: newSecret(), SIGNING_SECRET_PREVIOUS_EXPIRES_AT: soon }, /set SIGNING_SECRET/],
    ['SIGNING_SECRET_PREVIOUS', { SIGNING_SECRET: good, SIGNING_SECRET_PREVIOUS: good, SIGNING_SECRET_PREVIOUS_EXPIRES_AT: soon }, /same as SIGNING_SECRET/],
    ['SIGNING_SECRET_PREVIOUS_EXPIRES_AT', { SIGNING_SECRET_PREVIOUS_EXPIRES_AT: soon }, /only together/],
    // a colon for the equals sign: the secret lands where the tenant goes and must not be shown
    ['TENANT_SIGNING_SECRETS', { TENANT_SIGNING_SECRETS: `acme:whsec_${'A'.repeat(32)}` }, /entry 1 is not <tenant>=whsec_/],
    ['TENANT_SIGNING_SECRETS', { TENANT_SIGNING_SECRETS: `acme:whsec_${'A'.repeat(31)}=` }, /entry 1 is not <tenant>=whsec_/],
    ['TENANT_SIGNING_SECRETS', { TENANT_SIGNING_SECRETS: `acme:${good}` }, /entry 1/],
    ['TENANT_SIGNING_SECRETS', { TENANT_SIGNING_SECRETS: `a=${good};b=whsec_short` }, /entry 2: signing secret/],
    ['TENANT_SIGNING_SECRETS', { TENANT_SIGNING_SECRETS: `a=${good}@soon` }, /RFC 3339/],
  ] as const) {
    it(`refuses a bad ${name} naming it (${why.source})`, () => {
      assert.throws(
        () => loadConfig(env),
        (err: Error) => {
          assert.match(err.message, new RegExp(`${name}:`));
          assert.match(err.message, why);
          for (const v of Object.values(env)) {
            const secret = /whsec_([^;@=]{8,})/.exec(v)?.[1];
            if (secret) assert.ok(!err.message.includes(secret), 'the secret is not shown');
          }
          assert.ok(!err.message.includes('hunter2'), 'a secret without the prefix is not shown either');
          return true;
        },
      );
    });
  }
});
