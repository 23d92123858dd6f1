// POST /v1/jobs/batch over real HTTP: each item answered on its own, the accepted ones written in one
// transaction, idempotency and dedupe per item, tenant keys held to their tenant, payloads kept exact.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateKey } from '../../src/auth/keys.js';
import type { PulseEvent } from '../../src/observability/events.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { expectError, jobCount } from '../security/helpers.js';

interface Entry {
  index: number;
  status: number;
  idempotent_replayed?: boolean;
  deduplicated?: boolean;
  job?: { id: string; tenant_id: string; payload: unknown };
  error?: { code: string; message: string; details?: { fields?: { field: string }[] } };
}

const LATER = { delay_ms: 86_400_000 };

describe('POST /v1/jobs/batch', () => {
  let svc: TestService;
  let rx: Receiver;
  const tenantKey = generateKey().key;
  const adminKey = generateKey().key;
  const auth = { authorization: `Bearer ${adminKey}` };
  const writes: Extract<PulseEvent, { type: 'store.write' }>[] = [];

  before(async () => {
    rx = await startReceiver();
    svc = await startTestService({
      API_KEYS: `acme:${tenantKey},*:${adminKey}`,
      MAX_PAYLOAD_BYTES: '1024',
      ALLOW_PRIVATE_DESTINATIONS: 'false',
      ALLOWED_DESTINATION_CIDRS: '127.0.0.0/8',
    });
    svc.events.on((e) => {
      if (e.type === 'store.write' && e.op === 'create') writes.push(e);
    });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  async function batch(jobs: unknown[], headers: Record<string, string> = auth): Promise<Entry[]> {
    const res = await svc.post('/v1/jobs/batch', { jobs }, headers);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const { data } = JSON.parse(text) as { data: Entry[] };
    assert.deepEqual(data.map((d) => d.index), jobs.map((_, i) => i), 'one entry per item, in order');
    return data;
  }

  it('creates every job of a batch in one transaction, and each is delivered', async () => {
    const before = writes.length;
    const jobs = Array.from({ length: 50 }, (_, i) => jobBody(`${rx.url}/batch`, { payload: { i } }));
    const data = await batch(jobs);
    assert.ok(data.every((d) => d.status === 201 && d.job), JSON.stringify(data[0]));
    assert.deepEqual(data.map((d) => d.job?.payload), jobs.map((j) => j.payload));
    const commits = writes.slice(before);
    assert.equal(commits.length, 1, `one commit, got ${commits.map((c) => c.count).join(', ')}`);
    assert.equal(commits[0]?.count, 50);
    await rx.waitFor(50, 10_000);
    const ids = new Set(data.map((d) => d.job?.id));
    assert.equal(rx.requests.filter((r) => ids.has(String(r.headers['webhook-id']))).length, 50);
  });

  it('answers each bad item with the error a single create would get, and creates the others', async () => {
    const stored = await jobCount(svc);
    const data = await batch([
      jobBody(`${rx.url}/h`, { payload: { ok: 1 }, ...LATER }),
      jobBody(`${rx.url}/h`, { payload: { ok: 2 }, retry: { max_attempts: 0 }, ...LATER }),
      jobBody(`${rx.url}/h`, { payload: { big: 'x'.repeat(2000) }, ...LATER }),
      jobBody('http://10.0.0.1/hook', { payload: { ok: 3 }, ...LATER }),
      'not an object',
      { ...jobBody(`${rx.url}/h`, LATER), surprise: true },
      jobBody(`${rx.url}/h`, { payload: { ok: 4 }, ...LATER }),
    ]);
    assert.deepEqual(data.map((d) => [d.status, d.error?.code ?? null]), [
      [201, null],
      [422, 'validation_failed'],
      [413, 'payload_too_large'],
      [422, 'destination_not_allowed'],
      [422, 'validation_failed'],
      [422, 'validation_failed'],
      [201, null],
    ]);
    assert.deepEqual(data[1]?.error?.details?.fields?.map((f) => f.field), ['body.jobs.1.retry.max_attempts']);
    assert.deepEqual(data[5]?.error?.details?.fields?.map((f) => f.field), ['body.jobs.5.surprise']);
    assert.equal(await jobCount(svc), stored + 2);
  });

  it('keeps idempotency and dedupe per item, within a batch and across batches', async () => {
    const a = jobBody(`${rx.url}/h`, { payload: { idem: 'a' }, idempotency_key: 'k-a', ...LATER });
    const first = await batch([a, a, { ...a, payload: { idem: 'other' } }, jobBody(`${rx.url}/h`, { payload: { d: 1 }, dedupe_key: 'd1', ...LATER }), jobBody(`${rx.url}/h`, { payload: { d: 2 }, dedupe_key: 'd1', ...LATER })]);
    assert.deepEqual(first.map((d) => [d.status, d.idempotent_replayed ?? d.deduplicated ?? d.error?.code ?? null]), [
      [201, null],
      [200, true],
      [422, 'idempotency_key_reused'],
      [201, null],
      [200, true],
    ]);
    assert.equal(first[1]?.job?.id, first[0]?.job?.id);
    assert.equal(first[4]?.job?.id, first[3]?.job?.id);
    const again = await batch([a]);
    assert.equal(again[0]?.status, 200);
    assert.equal(again[0]?.job?.id, first[0]?.job?.id, 'a replay in a later batch returns the original job');
  });

  it('keeps every item payload text exactly as sent', async () => {
    const raw = `{"jobs":[${JSON.stringify(jobBody(`${rx.url}/h`, { payload: 0, ...LATER })).replace('"payload":0', '"payload": { "big" : 9007199254740993 }')},${JSON.stringify(jobBody(`${rx.url}/h`, { payload: 0, ...LATER })).replace('"payload":0', '"payload":[1.50]')}]}`;
    const res = await svc.post('/v1/jobs/batch', raw, auth);
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.ok(text.includes('"payload":{"big":9007199254740993}'), text.slice(0, 400));
    assert.ok(text.includes('"payload":[1.50]'), text.slice(0, 400));
  });

  it('refuses a malformed envelope whole, storing nothing', async () => {
    const stored = await jobCount(svc);
    for (const body of [{}, { jobs: [] }, { jobs: {} }, { jobs: Array.from({ length: 1001 }, () => 1) }, { jobs: [1], extra: 1 }]) {
      await expectError(await svc.post('/v1/jobs/batch', body, auth), 422, 'validation_failed');
    }
    assert.equal(await jobCount(svc), stored);
  });

  it("refuses a tenant key's batch naming another tenant in any item, whole", async () => {
    const stored = await jobCount(svc);
    const res = await svc.post('/v1/jobs/batch', { jobs: [jobBody(`${rx.url}/h`, { tenant_id: 'acme', ...LATER }), jobBody(`${rx.url}/h`, { tenant_id: 'globex', ...LATER })] }, { authorization: `Bearer ${tenantKey}` });
    await expectError(res, 403, 'forbidden');
    assert.equal(await jobCount(svc), stored);
    const ok = await batch([jobBody(`${rx.url}/h`, { tenant_id: 'acme', payload: { t: 1 }, ...LATER })], { authorization: `Bearer ${tenantKey}` });
    assert.equal(ok[0]?.status, 201);
    await expectError(await svc.post('/v1/jobs/batch', { jobs: [jobBody(`${rx.url}/h`, LATER)] }, {}), 401, 'unauthorized');
  });

  it('takes 1,000 jobs in one request', async () => {
    const jobs = Array.from({ length: 1000 }, (_, i) => jobBody(`${rx.url}/h`, { payload: { n: i, big: true }, ...LATER }));
    const data = await batch(jobs);
    assert.equal(data.filter((d) => d.status === 201).length, 1000);
    const res = await svc.request(`/v1/jobs/${data[999]?.job?.id}`, { headers: auth });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { payload: unknown }).payload && true, true);
  });
});
