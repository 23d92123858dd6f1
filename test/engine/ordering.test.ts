// Ordering keys over real HTTP, one process on SQLite with many workers (issue 16): 50 keys × 40
// jobs against a receiver failing 20% at random arrive in creation order per key, one at a time,
// while jobs without a key flow meanwhile.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { orderingLoad, type OrderingLoad } from '../support/ordering-load.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';

describe('ordering keys over HTTP (SQLite, one process)', () => {
  let svc: TestService;
  let load: OrderingLoad;

  before(async () => {
    load = await orderingLoad();
    svc = await startTestService({ WORKER_CONCURRENCY: '32' });
  });
  after(async () => {
    await svc?.cleanup();
    await load?.close();
  });

  it('delivers each key in creation order, one at a time, while jobs without a key flow', async () => {
    await load.run([svc.url], 120_000);
    load.check();
  });

  it("shows a job's key and whether it waits for it, and lists a key's jobs", async () => {
    const hook = `${load.rx.url}/hook`;
    // the head is scheduled an hour out: the job behind it waits for its key
    const first = await (await svc.post('/v1/jobs', jobBody(hook, { ordering_key: 'invoice-7', delay_ms: 3_600_000, payload: { key: null, n: -1 } }))).json() as Record<string, unknown>;
    const second = await (await svc.post('/v1/jobs', jobBody(hook, { ordering_key: 'invoice-7', payload: { key: null, n: -2 } }))).json() as Record<string, unknown>;
    assert.equal(first.ordering_key, 'invoice-7');
    assert.equal(first.waiting_for_key, false);
    assert.equal(second.waiting_for_key, true);
    const page = await (await svc.get('/v1/jobs?ordering_key=invoice-7')).json() as { data: Record<string, unknown>[] };
    assert.deepEqual(page.data.map((j) => j.id), [second.id, first.id]);
    const cancelled = await svc.post(`/v1/jobs/${String(first.id)}/cancel`, {});
    assert.equal(cancelled.status, 200);
    const got = await (await svc.get(`/v1/jobs/${String(second.id)}`)).json() as Record<string, unknown>;
    assert.equal(got.waiting_for_key, false, 'the key moved on when its head was cancelled');
  });

  it('refuses (422) an ordering key that is empty or longer than 255 characters', async () => {
    for (const key of ['', 'k'.repeat(256)]) {
      const res = await svc.post('/v1/jobs', jobBody('http://127.0.0.1:9/x', { ordering_key: key }));
      assert.equal(res.status, 422);
      const body = (await res.json()) as { error: { code: string; details: { fields: { field: string }[] } } };
      assert.equal(body.error.code, 'validation_failed');
      assert.ok(body.error.details.fields.some((f) => f.field === 'body.ordering_key'), JSON.stringify(body));
    }
    const batch = await svc.post('/v1/jobs/batch', { jobs: [jobBody('http://127.0.0.1:9/x', { ordering_key: '' })] });
    const items = (await batch.json()) as { data: { status: number }[] };
    assert.equal(items.data[0]?.status, 422);
  });
});
