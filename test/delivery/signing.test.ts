import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { createSigner, EXPIRY_WARNING_MS, InvalidSigningSecretError, parseSecret, signWithKey } from '../../src/delivery/signing.js';

// The Standard Webhooks published test vector (also in the reference libraries' test suites).
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

const NOW = Date.parse('2026-01-01T00:00:00.000Z');
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

describe('signing', () => {
  it('reproduces the Standard Webhooks test vector exactly', () => {
    assert.equal(signWithKey(parseSecret(VECTOR.secret), VECTOR.id, VECTOR.timestamp, VECTOR.body), VECTOR.signature);
    const signer = createSigner({ secrets: [{ secret: VECTOR.secret }] });
    assert.equal(signer.sign('any-tenant', VECTOR.id, VECTOR.timestamp, VECTOR.body, NOW), VECTOR.signature);
  });

  it('produces a header the standardwebhooks library verifies', () => {
    const secret = newSecret();
    const ts = Math.floor(Date.now() / 1000);
    const body = '{"event":"order.paid","amount":"12.50 €"}';
    const header = createSigner({ secrets: [{ secret }] }).sign('t1', 'job_1', ts, body, Date.now());
    assert.ok(header);
    const verified = new Webhook(secret).verify(body, { 'webhook-id': 'job_1', 'webhook-timestamp': String(ts), 'webhook-signature': header });
    assert.deepEqual(verified, JSON.parse(body));
    assert.throws(() => new Webhook(secret).verify(`${body} `, { 'webhook-id': 'job_1', 'webhook-timestamp': String(ts), 'webhook-signature': header }));
  });

  it('returns null when no secret applies', () => {
    assert.equal(createSigner({ secrets: [] }).sign('t1', 'id', 1, '{}', NOW), null);
  });

  it('signs with every active secret during a rotation, space-separated', () => {
    const [oldS, newS] = [newSecret(), newSecret()];
    const signer = createSigner({ secrets: [{ secret: oldS, expires_at: NOW + 60_000 }, { secret: newS }] });
    const header = signer.sign('t1', 'id', 1700000000, '{}', NOW);
    assert.ok(header);
    const parts = header.split(' ');
    assert.deepEqual(parts, [signWithKey(parseSecret(oldS), 'id', 1700000000, '{}'), signWithKey(parseSecret(newS), 'id', 1700000000, '{}')]);
  });

  it('stops using a secret once its expires_at has passed', () => {
    const [oldS, newS] = [newSecret(), newSecret()];
    const signer = createSigner({ secrets: [{ secret: oldS, expires_at: NOW }, { secret: newS }] });
    assert.equal(signer.sign('t1', 'id', 1, '{}', NOW - 1)?.split(' ').length, 2);
    assert.equal(signer.sign('t1', 'id', 1, '{}', NOW), signWithKey(parseSecret(newS), 'id', 1, '{}'));
  });

  it("uses a tenant's own secrets instead of the global ones", () => {
    const [globalS, tenantS] = [newSecret(), newSecret()];
    const signer = createSigner({ secrets: [{ secret: globalS }, { secret: tenantS, tenant_id: 'acme' }] });
    assert.equal(signer.sign('acme', 'id', 1, '{}', NOW), signWithKey(parseSecret(tenantS), 'id', 1, '{}'));
    assert.equal(signer.sign('other', 'id', 1, '{}', NOW), signWithKey(parseSecret(globalS), 'id', 1, '{}'));
  });

  it("falls back to the global secrets once a tenant's own have all expired, and says so once", () => {
    const [globalS, tenantS] = [newSecret(), newSecret()];
    const fallbacks: [string, number][] = [];
    const signer = createSigner({
      secrets: [{ secret: globalS }, { secret: tenantS, tenant_id: 'acme', expires_at: NOW }],
      events: { onFallback: (t, at) => fallbacks.push([t, at]) },
    });
    assert.equal(signer.sign('acme', 'id', 1, '{}', NOW - 1), signWithKey(parseSecret(tenantS), 'id', 1, '{}'));
    assert.equal(signer.sign('acme', 'id', 1, '{}', NOW), signWithKey(parseSecret(globalS), 'id', 1, '{}'));
    assert.equal(signer.sign('acme', 'id', 1, '{}', NOW + 1), signWithKey(parseSecret(globalS), 'id', 1, '{}'));
    assert.deepEqual(fallbacks, [['acme', NOW]]);
  });

  it("warns once when a tenant's own secrets all expire within EXPIRY_WARNING_MS", () => {
    const expiring: [string, number][] = [];
    const signer = createSigner({
      secrets: [
        { secret: newSecret() },
        { secret: newSecret(), tenant_id: 'acme', expires_at: NOW + EXPIRY_WARNING_MS },
        { secret: newSecret(), tenant_id: 'kept', expires_at: NOW },
        { secret: newSecret(), tenant_id: 'kept' },
      ],
      events: { onExpiring: (t, at) => expiring.push([t, at]) },
    });
    signer.sign('acme', 'id', 1, '{}', NOW - 1);
    assert.deepEqual(expiring, [], 'not yet inside the warning window');
    signer.sign('acme', 'id', 1, '{}', NOW);
    signer.sign('acme', 'id', 1, '{}', NOW + 1);
    signer.sign('kept', 'id', 1, '{}', NOW + 1);
    assert.deepEqual(expiring, [['acme', NOW + EXPIRY_WARNING_MS]], 'a tenant with a secret that never expires is not warned about');
  });
});

describe('parseSecret', () => {
  it('decodes the key after whsec_', () => {
    assert.equal(parseSecret(VECTOR.secret).length, 24);
  });

  for (const [bad, why] of [
    ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', /start with "whsec_"/],
    ['whsec_', /base64/],
    ['whsec_not base64!!', /base64/],
    ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS', /base64/],
    [`whsec_${Buffer.alloc(8).toString('base64')}`, /24-64 bytes, got 8/],
    [`whsec_${Buffer.alloc(65).toString('base64')}`, /got 65/],
  ] as const) {
    it(`rejects ${JSON.stringify(bad.slice(0, 24))} with a clear error`, () => {
      assert.throws(() => parseSecret(bad), (e: unknown) => e instanceof InvalidSigningSecretError && why.test(e.message));
    });
  }

  it('rejects a bad secret when the signer is built, not at the first delivery', () => {
    assert.throws(() => createSigner({ secrets: [{ secret: 'whsec_short' }] }), InvalidSigningSecretError);
  });
});
