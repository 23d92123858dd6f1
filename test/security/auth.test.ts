// API keys and tenant isolation over real HTTP: who may call, and what a tenant's key can reach.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { generateKey, hashKey } from '../../src/auth/keys.js';
import { isLoopbackHost } from '../../src/auth/listen-policy.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { startService } from '../../src/service.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { captureLogs, expectError, jobCount, rawRequest } from './helpers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const run = promisify(execFile);

/** Prints the files in argv[1] whose bytes contain argv[2], as JSON. */
const FILES_HOLDING = `
  const { readdirSync, readFileSync } = require('node:fs');
  const [dir, needle] = process.argv.slice(1);
  console.log(JSON.stringify(readdirSync(dir).filter((f) => readFileSync(dir + '/' + f).includes(needle))));
`;

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
// A day's delay: jobs stay scheduled, nothing is delivered during these tests.
const LATER = { delay_ms: 86_400_000 };

interface JobView {
  id: string;
  tenant_id: string;
  status: string;
}

describe('API keys from API_KEYS', () => {
  const acme = generateKey().key;
  const globex = generateKey().key;
  const admin = generateKey().key;
  let svc: TestService;
  let rx: Receiver;
  let logs: ReturnType<typeof captureLogs>;

  let n = 0;
  async function create(key: string, tenant: string, extra: Record<string, unknown> = LATER): Promise<JobView> {
    const payload = { n: ++n };
    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { tenant_id: tenant, payload, ...extra }), bearer(key));
    assert.equal(res.status, 201, await res.clone().text());
    return (await res.json()) as JobView;
  }

  const send = (method: string, path: string, key?: string, body?: unknown) =>
    svc.request(path, {
      method,
      headers: { ...(key ? bearer(key) : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

  before(async () => {
    rx = await startReceiver();
    logs = captureLogs('trace');
    svc = await startTestService({ API_KEYS: `acme:${acme}, globex:${globex}, *:${admin}` }, { logger: logs.logger });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  it('answers every /v1 route without a key with 401 unauthorized and a Bearer challenge', async () => {
    const id = (await create(admin, 'acme')).id;
    for (const [method, path] of [
      ['GET', '/v1/jobs'],
      ['POST', '/v1/jobs'],
      ['GET', '/v1/dlq'],
      ['GET', `/v1/jobs/${id}`],
      ['GET', `/v1/jobs/${id}/attempts`],
      ['POST', `/v1/jobs/${id}/cancel`],
      ['POST', `/v1/jobs/${id}/retry`],
      ['GET', '/v1/no-such-route'],
    ] as const) {
      const res = await send(method, path, undefined, method === 'POST' ? jobBody('http://example.test/') : undefined);
      await expectError(res, 401, 'unauthorized');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="pulsegate"', `${method} ${path}`);
    }
  });

  it('answers an unknown key, another scheme or a malformed header with 401 and error="invalid_token"', async () => {
    for (const authorization of [
      `Bearer ${generateKey().key}`,
      `Bearer ${acme}x`,
      `Bearer ${acme.slice(0, -1)}`,
      `Basic ${Buffer.from(`acme:${acme}`).toString('base64')}`,
      `Bearer`,
      `Bearer ${acme} extra`,
      `Bearer ${'x'.repeat(4000)}`,
      acme,
    ]) {
      const res = await svc.request('/v1/jobs', { headers: { authorization } });
      await expectError(res, 401, 'unauthorized');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="pulsegate", error="invalid_token"');
    }
  });

  it('accepts the Bearer scheme in any case', async () => {
    const res = await svc.request('/v1/jobs', { headers: { authorization: `bEARER ${acme}` } });
    assert.equal(res.status, 200);
  });

  it('keeps /healthz, /readyz and /metrics open without a key', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const res = await svc.get(path);
      assert.equal(res.status, 200, path);
      await res.arrayBuffer();
    }
  });

  it('answers a POST without a key before reading its body', async () => {
    const before = await jobCount(svc);
    // under the body limit (a declared length over it is 413 before authentication: hardening.test.ts)
    const answer = await rawRequest(svc.url, [
      `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500000\r\nConnection: close\r\n\r\n{"tenant_id":`,
    ]);
    assert.equal(answer.status, 401, answer.text);
    assert.ok(answer.ms < 2000, `answered in ${answer.ms} ms`);
    assert.equal(await jobCount(svc), before);
  });

  it("lets a tenant key create jobs for its own tenant and answers 403 forbidden for another's, storing nothing", async () => {
    const mine = await create(acme, 'acme');
    assert.equal(mine.tenant_id, 'acme');
    const before = await jobCount(svc);
    const res = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { tenant_id: 'globex', ...LATER }), bearer(acme));
    await expectError(res, 403, 'forbidden');
    assert.equal(await jobCount(svc), before);
  });

  it("lists only the key's tenant when no tenant_id is given, and 403 for another tenant's", async () => {
    const a = await create(acme, 'acme');
    const g = await create(globex, 'globex');
    for (const path of ['/v1/jobs', '/v1/jobs?limit=1000', '/v1/jobs?tenant_id=acme', '/v1/dlq', '/v1/dlq?tenant_id=acme']) {
      const res = await send('GET', path, acme);
      assert.equal(res.status, 200, path);
      const page = (await res.json()) as { data: JobView[] };
      assert.ok(page.data.every((j) => j.tenant_id === 'acme'), path);
      if (path.startsWith('/v1/jobs')) {
        assert.ok(page.data.some((j) => j.id === a.id), path);
        assert.ok(!page.data.some((j) => j.id === g.id), path);
      }
    }
    for (const path of ['/v1/jobs?tenant_id=globex', '/v1/dlq?tenant_id=globex', '/v1/jobs?status=scheduled&tenant_id=globex']) {
      await expectError(await send('GET', path, acme), 403, 'forbidden');
    }
  });

  it("answers 404 not_found for another tenant's job on get, attempts, cancel and retry, and leaves it untouched", async () => {
    const g = await create(globex, 'globex');
    const missing = await expectError(await send('GET', '/v1/jobs/01890000-0000-7000-8000-000000000000', acme), 404, 'not_found');
    for (const [method, path] of [
      ['GET', `/v1/jobs/${g.id}`],
      ['GET', `/v1/jobs/${g.id}/attempts`],
      ['POST', `/v1/jobs/${g.id}/cancel`],
      ['POST', `/v1/jobs/${g.id}/retry`],
    ] as const) {
      const err = await expectError(await send(method, path, acme), 404, 'not_found');
      assert.equal(err.message, missing.message, 'indistinguishable from a job that does not exist');
    }
    const head = await svc.request(`/v1/jobs/${g.id}`, { method: 'HEAD', headers: bearer(acme) });
    assert.equal(head.status, 404);
    const still = await svc.store.getJob(g.id);
    assert.equal(still?.status, 'scheduled');
    // its owner still sees it, and can cancel it
    assert.equal((await send('GET', `/v1/jobs/${g.id}`, globex)).status, 200);
    assert.equal((await send('POST', `/v1/jobs/${g.id}/cancel`, globex)).status, 200);
  });

  it('lets a tenant key act on its own jobs', async () => {
    const a = await create(acme, 'acme');
    assert.equal((await send('GET', `/v1/jobs/${a.id}`, acme)).status, 200);
    assert.equal((await send('GET', `/v1/jobs/${a.id}/attempts`, acme)).status, 200);
    assert.equal((await send('POST', `/v1/jobs/${a.id}/cancel`, acme)).status, 200);
    assert.equal((await send('POST', `/v1/jobs/${a.id}/retry`, acme)).status, 200);
    await send('POST', `/v1/jobs/${a.id}/cancel`, acme);
  });

  it('lets an admin key create, list and act across tenants', async () => {
    const a = await create(admin, 'acme');
    const g = await create(admin, 'globex');
    const res = await send('GET', '/v1/jobs?limit=1000', admin);
    const tenants = new Set(((await res.json()) as { data: JobView[] }).data.map((j) => j.tenant_id));
    assert.deepEqual([...tenants].sort(), ['acme', 'globex']);
    assert.equal((await send('GET', '/v1/jobs?tenant_id=globex', admin)).status, 200);
    assert.equal((await send('GET', `/v1/jobs/${g.id}`, admin)).status, 200);
    assert.equal((await send('POST', `/v1/jobs/${a.id}/cancel`, admin)).status, 200);
  });

  it('answers a tenant key on an unknown route with 404, not with data', async () => {
    await expectError(await send('GET', '/v1/nothing-here', acme), 404, 'not_found');
  });

  it('has a tenant rule for every /v1 route (none is admin-only by accident)', () => {
    const unruled = logs.records().filter((r) => /has no tenant rule/.test(String(r.msg)));
    assert.deepEqual(unruled.map((r) => `${String(r.method)} ${String(r.url)}`), []);
  });

  it('never writes a key to the logs', () => {
    const all = logs.lines.join('\n');
    assert.ok(logs.lines.length > 0);
    for (const k of [acme, globex, admin]) assert.ok(!all.includes(k.slice(16)), 'a key appears in the logs');
  });
});

describe('API keys in the database, managed with npm run keys', () => {
  let svc: TestService;

  const keys = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', ...args], { cwd: ROOT, env: { ...process.env, DATABASE_PATH: svc.dbPath } });

  before(async () => {
    // TTL 0: every request asks the store, so a revocation shows at once
    svc = await startTestService({ API_KEY_CACHE_TTL_MS: '0' });
  });
  after(async () => {
    await svc.cleanup();
  });

  it('creates a key that works at once, stores only its hash, lists it without the key, and refuses it once revoked', async () => {
    // no key yet: loopback, open
    assert.equal((await svc.get('/v1/jobs')).status, 200);

    const created = await keys('create', '--tenant', 'demo', '--label', 'ci');
    const key = created.stdout.trim();
    assert.match(key, /^pg_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const id = key.slice(3, 15);
    assert.match(created.stderr, new RegExp(`created key ${id} for tenant demo`));

    // the first key turns authentication on
    await expectError(await svc.get('/v1/jobs'), 401, 'unauthorized');
    assert.equal((await svc.request('/v1/jobs', { headers: bearer(key) })).status, 200);

    const listed = await keys('list');
    assert.match(listed.stdout, new RegExp(`${id}\\s+demo\\s+\\S+\\s+active\\s+ci`));
    assert.ok(!listed.stdout.includes(key.slice(16)) && !listed.stderr.includes(key.slice(16)));

    // Read in another process: closing a descriptor of the database file in this one would drop the
    // service's SQLite locks (POSIX advisory locks belong to the process, not the descriptor).
    const holders = await run(process.execPath, ['-e', FILES_HOLDING, svc.dir, key.slice(16)]);
    assert.equal(holders.stdout.trim(), '[]', 'no database file holds the key in plain text');
    const hashHolders = await run(process.execPath, ['-e', FILES_HOLDING, svc.dir, hashKey(key)]);
    assert.notEqual(hashHolders.stdout.trim(), '[]', 'its hash is stored (the search does find things)');

    await keys('revoke', id);
    const res = await svc.request('/v1/jobs', { headers: bearer(key) });
    await expectError(res, 401, 'unauthorized');
    // revoking the last key does not open the API again
    await expectError(await svc.get('/v1/jobs'), 401, 'unauthorized');
    assert.match((await keys('list')).stdout, new RegExp(`${id}\\s+demo\\s+\\S+\\s+revoked`));
  });

  it('creates admin keys, and refuses unknown ids and bad usage with exit codes', async () => {
    const admin = (await keys('create', '--admin')).stdout.trim();
    const res = await svc.request('/v1/jobs?tenant_id=anyone', { headers: bearer(admin) });
    assert.equal(res.status, 200);
    await assert.rejects(keys('revoke', 'nope'), (err: { code: number; stderr: string }) => err.code === 1 && /no key with id nope/.test(err.stderr));
    await assert.rejects(keys('create'), (err: { code: number }) => err.code === 2);
    await assert.rejects(keys('create', '--tenant', 'a', '--admin'), (err: { code: number }) => err.code === 2);
    await assert.rejects(keys('create', '--tenant', 'bad tenant'), (err: { code: number }) => err.code === 2);
    await assert.rejects(keys('frobnicate'), (err: { code: number }) => err.code === 2);
  });

  it('generates keys for API_KEYS without storing them', async () => {
    const before = (await svc.store.listApiKeys()).length;
    const out = await keys('generate');
    assert.match(out.stdout.trim(), /^pg_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    assert.equal((await svc.store.listApiKeys()).length, before);
    assert.doesNotThrow(() => loadConfig({ API_KEYS: `demo:${out.stdout.trim()}` }));
  });
});

describe('secure by default', () => {
  it('listens on loopback without keys and says so in a warning', async () => {
    const logs = captureLogs();
    const svc = await startTestService({}, { logger: logs.logger });
    try {
      const warning = logs.records().find((r) => r.level === 40 && /no API keys configured/.test(String(r.msg)));
      assert.ok(warning, logs.lines.join('\n'));
      assert.match(String(warning.msg), /loopback only/);
      assert.equal((await svc.get('/v1/jobs')).status, 200);
    } finally {
      await svc.cleanup();
    }
  });

  for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
    it(`refuses HOST=${host} without keys, naming HOST, before listening`, async () => {
      const config = loadConfig({ HOST: host, PORT: '0', DATABASE_PATH: ':memory:', LOG_LEVEL: 'silent' });
      await assert.rejects(startService(config), (err: Error) => err instanceof ConfigError && err.message.includes(`HOST=${host}`));
    });
  }

  it('exits with code 2 and a message naming HOST when main starts on 0.0.0.0 without keys', async () => {
    const err = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, HOST: '0.0.0.0', PORT: '0', DATABASE_PATH: ':memory:', API_KEYS: '', AUTH_DISABLED: '', LOG_LEVEL: 'silent' },
      timeout: 20_000,
    }).then(
      () => assert.fail('main started'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 2);
    assert.match(err.stderr, /HOST=0\.0\.0\.0 is not a loopback address/);
    assert.match(err.stderr, /API_KEYS/);
  });

  it('refuses AUTH_DISABLED=true together with API_KEYS', () => {
    assert.throws(() => loadConfig({ AUTH_DISABLED: 'true', API_KEYS: `*:${generateKey().key}` }), /AUTH_DISABLED/);
  });

  it('with AUTH_DISABLED=true checks no key and warns that every caller is admin', async () => {
    const logs = captureLogs();
    // loopback still: tests never listen elsewhere
    const svc = await startTestService({ AUTH_DISABLED: 'true' }, { logger: logs.logger });
    try {
      await svc.store.createApiKey({ id: 'aaaaaaaaaaaa', tenant_id: 'x', key_hash: 'a'.repeat(64), label: null, created_at: 0 });
      assert.equal((await svc.get('/v1/jobs')).status, 200);
      assert.ok(logs.records().some((r) => r.level === 40 && /AUTH_DISABLED=true/.test(String(r.msg))));
    } finally {
      await svc.cleanup();
    }
  });

  it('treats only localhost, 127.0.0.0/8 and ::1 as loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '0177.0.0.1', '2130706433', 'localhost.example.com']) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });

  it('turns authentication on within the cache TTL when a key is created while running', async () => {
    const svc = await startTestService({ API_KEY_CACHE_TTL_MS: '100' });
    try {
      assert.equal((await svc.get('/v1/jobs')).status, 200);
      const g = generateKey();
      await svc.store.createApiKey({ id: g.id, tenant_id: 'demo', key_hash: g.hash, label: null, created_at: Date.now() });
      await eventually(async () => (await svc.get('/v1/jobs')).status === 401, 2000);
      assert.equal((await svc.request('/v1/jobs', { headers: bearer(g.key) })).status, 200);
    } finally {
      await svc.cleanup();
    }
  });
});
