// Key format, API_KEYS parsing, and the authenticator's cache (driven by a fake clock).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAuthenticator } from '../../src/auth/authenticator.js';
import { bearerToken } from '../../src/auth/hooks.js';
import { generateKey, hashKey, keyId, parseEnvKeys, sameHash } from '../../src/auth/keys.js';
import { loadConfig } from '../../src/config.js';
import type { ApiKeyRecord } from '../../src/store/store.js';
import { FakeClock } from '../support/fake-clock.js';

/** An in-memory key table that counts its queries (the store boundary, nothing else). */
function keyTable(records: ApiKeyRecord[] = []) {
  const calls = { get: 0, list: 0 };
  return {
    calls,
    records,
    store: {
      async getApiKey(id: string) {
        calls.get++;
        return records.find((r) => r.id === id) ?? null;
      },
      async listApiKeys() {
        calls.list++;
        return [...records];
      },
    },
  };
}

function stored(tenant: string | null, now: number) {
  const g = generateKey();
  const record: ApiKeyRecord = { id: g.id, tenant_id: tenant, key_hash: g.hash, label: null, created_at: now, revoked_at: null };
  return { key: g.key, record };
}

describe('key format', () => {
  it('makes pg_<12 hex id>_<43 base64url> keys whose stored hash is their SHA-256', () => {
    const g = generateKey();
    assert.match(g.key, /^pg_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    assert.equal(keyId(g.key), g.id);
    assert.equal(g.hash, hashKey(g.key));
    assert.match(g.hash, /^[0-9a-f]{64}$/);
    assert.notEqual(generateKey().key, g.key);
  });

  it('reads an id only from a well-formed key', () => {
    for (const k of ['pg_abc_x', 'pg_0123456789ab_short', `xx_0123456789ab_${'a'.repeat(43)}`, `pg_0123456789AB_${'a'.repeat(43)}`, '']) {
      assert.equal(keyId(k), null, k);
    }
  });

  it('compares hashes in constant time and only 32-byte ones', () => {
    const h = hashKey('x');
    assert.equal(sameHash(h, hashKey('x')), true);
    assert.equal(sameHash(h, hashKey('y')), false);
    assert.equal(sameHash(h, h.slice(2)), false);
    assert.equal(sameHash('zz', 'zz'), false);
  });

  it('reads only "Bearer <token>" from an Authorization header', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer   abc  '), 'abc');
    for (const h of [undefined, '', 'Bearer', 'Bearer ', 'Basic abc', 'Bearer a b', 'Bearerabc']) assert.equal(bearerToken(h), null, String(h));
  });
});

describe('API_KEYS', () => {
  const k1 = 'a'.repeat(32);
  const k2 = generateKey().key;

  it('maps <tenant>:<key> to a tenant and *:<key> to admin, split at the last colon', () => {
    const keys = parseEnvKeys(` demo:${k1} , *:${k2}, org:team-1:${'b'.repeat(40)} ,`);
    assert.deepEqual(keys.map((k) => [k.id, k.tenant_id]), [['env:1', 'demo'], [keyId(k2), null], ['env:3', 'org:team-1']]);
    assert.equal(keys[0]?.hash, hashKey(k1));
  });

  it('is empty when unset', () => {
    assert.deepEqual(loadConfig({}).API_KEYS, []);
  });

  for (const [text, why] of [
    [`demo${k1}`, /entry 1 is not <tenant>:<key>/],
    [`:${k1}`, /entry 1 is not/],
    [`de mo:${k1}`, /is not a tenant id/],
    [`admin*:${k1}`, /is not a tenant id/],
    // swapped: the key sits where the tenant goes, and must not be shown either
    [`${k1}:demo`, /entry 1: the key must be/],
    [`${k2}:x`, /entry 1: the key must be/],
    ['demo:short', /32-256 characters/],
    [`demo:${k1},other:${k1}`, /entry 2: the same key is given twice/],
    [`demo:${'a'.repeat(31)}!`, /32-256 characters/],
  ] as const) {
    it(`refuses ${JSON.stringify(text.slice(0, 24))}… naming the entry, never the key`, () => {
      assert.throws(
        () => loadConfig({ API_KEYS: text }),
        (err: Error) =>
          why.test(err.message) &&
          /API_KEYS/.test(err.message) &&
          !err.message.includes(k1.slice(0, 31)) &&
          !err.message.includes(k2.slice(16)) &&
          /value hidden/.test(err.message),
      );
    });
  }

  it('holds hashes only: the configuration contains no key', () => {
    const config = loadConfig({ API_KEYS: `demo:${k1}` });
    assert.ok(!JSON.stringify(config).includes(k1));
  });
});

describe('authenticator', () => {
  const TTL = 30_000;

  it('knows env keys and store keys, and refuses unknown, malformed and revoked ones', async () => {
    const clock = new FakeClock();
    const envKey = generateKey();
    const tenant = stored('acme', clock.now());
    const admin = stored(null, clock.now());
    const revoked = stored('acme', clock.now());
    revoked.record.revoked_at = clock.now();
    const t = keyTable([tenant.record, admin.record, revoked.record]);
    const auth = createAuthenticator({
      store: t.store,
      clock,
      envKeys: [{ id: 'env:1', tenant_id: 'globex', hash: envKey.hash }],
      cacheTtlMs: TTL,
    });
    assert.deepEqual(await auth.authenticate(envKey.key), { kind: 'tenant', tenant_id: 'globex', key_id: 'env:1' });
    assert.deepEqual(await auth.authenticate(tenant.key), { kind: 'tenant', tenant_id: 'acme', key_id: tenant.record.id });
    assert.deepEqual(await auth.authenticate(admin.key), { kind: 'admin', key_id: admin.record.id });
    assert.equal(await auth.authenticate(revoked.key), null);
    assert.equal(await auth.authenticate(generateKey().key), null);
    // right id, wrong secret
    assert.equal(await auth.authenticate(`pg_${tenant.record.id}_${'A'.repeat(43)}`), null);
    assert.equal(await auth.authenticate('x'.repeat(10_000)), null);
    assert.equal(await auth.authenticate(''), null);
  });

  it('asks the store once per key per TTL: the hot path makes no query', async () => {
    const clock = new FakeClock();
    const k = stored('acme', clock.now());
    const t = keyTable([k.record]);
    const auth = createAuthenticator({ store: t.store, clock, envKeys: [], cacheTtlMs: TTL });
    for (let i = 0; i < 1000; i++) assert.ok(await auth.authenticate(k.key));
    assert.equal(t.calls.get, 1);
    for (let i = 0; i < 100; i++) assert.equal(await auth.authenticate(`pg_000000000000_${'B'.repeat(43)}`), null);
    assert.equal(t.calls.get, 2, 'an unknown key is remembered too');
    clock.advance(TTL);
    await auth.authenticate(k.key);
    assert.equal(t.calls.get, 3);
  });

  it('never asks the store about a key that is not in the pg_ format', async () => {
    const t = keyTable();
    const auth = createAuthenticator({ store: t.store, clock: new FakeClock(), envKeys: [], cacheTtlMs: 0 });
    assert.equal(await auth.authenticate('not-a-key-at-all-but-long-enough-to-try'), null);
    assert.equal(t.calls.get, 0);
  });

  it('refuses a revoked key once its cache entry expires, within the TTL', async () => {
    const clock = new FakeClock();
    const k = stored('acme', clock.now());
    const t = keyTable([k.record]);
    const auth = createAuthenticator({ store: t.store, clock, envKeys: [], cacheTtlMs: TTL });
    assert.ok(await auth.authenticate(k.key));
    k.record.revoked_at = clock.now();
    clock.advance(TTL - 1);
    assert.ok(await auth.authenticate(k.key), 'still cached');
    clock.advance(1);
    assert.equal(await auth.authenticate(k.key), null);
  });

  it('keeps real keys cached while made-up keys flood in', async () => {
    const clock = new FakeClock();
    const k = stored('acme', clock.now());
    const t = keyTable([k.record]);
    const auth = createAuthenticator({ store: t.store, clock, envKeys: [], cacheTtlMs: TTL, cacheSize: 10 });
    await auth.authenticate(k.key);
    for (let i = 0; i < 100; i++) await auth.authenticate(generateKey().key);
    const before = t.calls.get;
    await auth.authenticate(k.key);
    assert.equal(t.calls.get, before);
  });

  it('requires keys once one exists, checks the store at most once per TTL, and never stops requiring them', async () => {
    const clock = new FakeClock();
    const t = keyTable();
    const auth = createAuthenticator({ store: t.store, clock, envKeys: [], cacheTtlMs: TTL });
    assert.equal(await auth.required(), false);
    assert.equal(await auth.required(), false);
    assert.equal(t.calls.list, 1);
    const k = stored('acme', clock.now());
    t.records.push(k.record);
    assert.equal(await auth.required(), false, 'not before the TTL');
    clock.advance(TTL);
    assert.equal(await auth.required(), true);
    k.record.revoked_at = clock.now();
    clock.advance(TTL);
    assert.equal(await auth.required(), true, 'revoking the last key does not open the API');
    assert.equal(t.calls.list, 2);
  });

  it('requires keys from the start with API_KEYS, and never with AUTH_DISABLED', async () => {
    const t = keyTable([stored('a', 0).record]);
    const withEnv = createAuthenticator({ store: t.store, clock: new FakeClock(), envKeys: [{ id: 'env:1', tenant_id: null, hash: hashKey('k') }], cacheTtlMs: TTL });
    assert.equal(await withEnv.required(), true);
    const disabled = createAuthenticator({ store: t.store, clock: new FakeClock(), envKeys: [], cacheTtlMs: TTL, disabled: true });
    assert.equal(await disabled.required(), false);
    assert.equal(t.calls.list, 0);
  });
});
