// Deduplication: the same (tenant, dedupe_key), or without a key the same content, within
// DEDUPE_WINDOW_SECONDS returns the original job with 200 and Deduplicated: true.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../support/fake-clock.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { assertJobShape, createJob, LATER, type JobView, type PageView } from './helpers.js';

const URL_OK = 'http://127.0.0.1:9/hook';

async function jobsOf(svc: TestService, tenant: string): Promise<JobView[]> {
  const res = await svc.get(`/v1/jobs?tenant_id=${tenant}&limit=1000`);
  assert.equal(res.status, 200);
  return ((await res.json()) as PageView).data;
}

async function expectDeduplicated(svc: TestService, body: unknown, original: JobView, headers?: Record<string, string>): Promise<void> {
  const res = await svc.post('/v1/jobs', body, headers);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(res.headers.get('deduplicated'), 'true');
  assert.equal(res.headers.get('idempotent-replayed'), null);
  const job = JSON.parse(text) as JobView;
  assertJobShape(job);
  assert.equal(job.id, original.id);
  assert.deepEqual(job, original);
}

describe('deduplication', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService();
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('returns the original job with 200 and Deduplicated: true for the same dedupe_key', async () => {
    const job = await createJob(svc, jobBody(URL_OK, { tenant_id: 'dk', dedupe_key: 'order-42-completed', ...LATER }));
    assert.equal(job.dedupe_key, 'order-42-completed');
    // the key decides, whatever else the body says
    await expectDeduplicated(svc, jobBody(URL_OK, { tenant_id: 'dk', dedupe_key: 'order-42-completed', payload: { other: true }, ...LATER }), job);
    await expectDeduplicated(svc, jobBody(`${URL_OK}/elsewhere`, { tenant_id: 'dk', dedupe_key: 'order-42-completed', type: 'x' }), job);
    assert.equal((await jobsOf(svc, 'dk')).length, 1);
  });

  it('creates a new job for a different dedupe_key', async () => {
    const a = await createJob(svc, jobBody(URL_OK, { tenant_id: 'dk2', dedupe_key: 'a', ...LATER }));
    const b = await createJob(svc, jobBody(URL_OK, { tenant_id: 'dk2', dedupe_key: 'b', ...LATER }));
    assert.notEqual(a.id, b.id);
  });

  it('deduplicates the same content sent without a dedupe_key', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'content', ...LATER });
    const job = await createJob(svc, body);
    await expectDeduplicated(svc, body, job);
    assert.equal((await jobsOf(svc, 'content')).length, 1);
  });

  it('deduplicates the same content whatever order its top-level fields come in', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'content-order', ...LATER });
    const job = await createJob(svc, body);
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    await expectDeduplicated(svc, reordered, job);
  });

  it('treats a different payload, type or destination as new content', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'content2', ...LATER });
    const job = await createJob(svc, body);
    const others = [
      { ...body, payload: { order_id: 43, status: 'completed' } },
      { ...body, type: 'another.type' },
      { ...body, destination: { url: `${URL_OK}/other` } },
      { ...body, destination: { url: URL_OK, method: 'PUT' } },
    ];
    const ids = new Set([job.id]);
    for (const other of others) ids.add((await createJob(svc, other)).id);
    assert.equal(ids.size, others.length + 1);
  });

  it('creates a new job for the same dedupe_key in another tenant', async () => {
    const a = await createJob(svc, jobBody(URL_OK, { tenant_id: 'tenant-x', dedupe_key: 'same', ...LATER }));
    const b = await createJob(svc, jobBody(URL_OK, { tenant_id: 'tenant-y', dedupe_key: 'same', ...LATER }));
    assert.notEqual(a.id, b.id);
  });

  it('creates a new job for the same content in another tenant', async () => {
    const a = await createJob(svc, jobBody(URL_OK, { tenant_id: 'tenant-p', ...LATER }));
    const b = await createJob(svc, jobBody(URL_OK, { tenant_id: 'tenant-q', ...LATER }));
    assert.notEqual(a.id, b.id);
  });

  it('deduplicates a job that has since finished', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'cancelled-dedupe', dedupe_key: 'k', ...LATER });
    const job = await createJob(svc, body);
    assert.equal((await svc.post(`/v1/jobs/${job.id}/cancel`, {})).status, 200);
    const res = await svc.post('/v1/jobs', body);
    assert.equal(res.status, 200);
    const again = (await res.json()) as JobView;
    assert.equal(again.id, job.id);
    assert.equal(again.status, 'cancelled');
  });

  it('deduplicates concurrent identical requests into one job', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'dedupe-concurrent', ...LATER });
    const answers = await Promise.all(Array.from({ length: 20 }, () => svc.post('/v1/jobs', body)));
    const jobs = (await Promise.all(answers.map((r) => r.json()))) as JobView[];
    assert.equal(answers.filter((r) => r.status === 201).length, 1);
    assert.equal(answers.filter((r) => r.status === 200 && r.headers.get('deduplicated') === 'true').length, 19);
    assert.equal(new Set(jobs.map((j) => j.id)).size, 1);
    assert.equal((await jobsOf(svc, 'dedupe-concurrent')).length, 1);
  });

  it('records an Idempotency-Key sent with a duplicate against the original job', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'both-rules', dedupe_key: 'dk', ...LATER });
    const job = await createJob(svc, body);
    // a new Idempotency-Key on a duplicate: deduplicated, and the key now points at the original
    await expectDeduplicated(svc, body, job, { 'idempotency-key': 'ik' });
    const replay = await svc.post('/v1/jobs', body, { 'idempotency-key': 'ik' });
    assert.equal(replay.status, 200);
    assert.equal(((await replay.json()) as JobView).id, job.id);
    assert.equal((await jobsOf(svc, 'both-rules')).length, 1);
  });
});

describe('deduplication switched off', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ DEDUPE_WINDOW_SECONDS: '0' });
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('creates a job per request when DEDUPE_WINDOW_SECONDS is 0, dedupe_key or not', async () => {
    const keyed = jobBody(URL_OK, { tenant_id: 'off', dedupe_key: 'k', ...LATER });
    const plain = jobBody(URL_OK, { tenant_id: 'off', ...LATER });
    const ids = new Set<string>();
    for (const body of [keyed, keyed, plain, plain]) {
      const res = await svc.post('/v1/jobs', body);
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('deduplicated'), null);
      const job = (await res.json()) as JobView;
      ids.add(job.id);
    }
    assert.equal(ids.size, 4);
    assert.equal((await jobsOf(svc, 'off')).length, 4);
  });

  it('still records the dedupe_key it was given', async () => {
    const job = await createJob(svc, jobBody(URL_OK, { tenant_id: 'off2', dedupe_key: 'kept', ...LATER }));
    assert.equal(job.dedupe_key, 'kept');
  });
});

describe('deduplication window', () => {
  let svc: TestService;
  let clock: FakeClock;
  before(async () => {
    clock = new FakeClock();
    svc = await startTestService({ DEDUPE_WINDOW_SECONDS: '60' }, { clock });
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('deduplicates a dedupe_key within DEDUPE_WINDOW_SECONDS and creates a new job after it', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'window', dedupe_key: 'w', ...LATER });
    const job = await createJob(svc, body);
    clock.advance(59_000);
    await expectDeduplicated(svc, body, job);
    clock.advance(1_001);
    const res = await svc.post('/v1/jobs', body);
    assert.equal(res.status, 201, 'the window has passed');
    const fresh = (await res.json()) as JobView;
    assert.notEqual(fresh.id, job.id);
    // the new job opens a new window
    await expectDeduplicated(svc, body, fresh);
  });

  it('deduplicates the same content within the window and creates a new job after it', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'window-content', ...LATER });
    const job = await createJob(svc, body);
    await expectDeduplicated(svc, body, job);
    clock.advance(60_001);
    const res = await svc.post('/v1/jobs', body);
    assert.equal(res.status, 201);
  });

  it('measures the window from the first job, not from the duplicates', async () => {
    const body = jobBody(URL_OK, { tenant_id: 'window-first', dedupe_key: 'f', ...LATER });
    const job = await createJob(svc, body);
    clock.advance(40_000);
    await expectDeduplicated(svc, body, job);
    clock.advance(20_001);
    assert.equal((await svc.post('/v1/jobs', body)).status, 201);
  });
});

describe('deduplication across a restart', () => {
  it('deduplicates against jobs created before the service restarted', async () => {
    const first = await startTestService();
    let second: TestService | null = null;
    try {
      const keyed = jobBody(URL_OK, { tenant_id: 'durable', dedupe_key: 'before-restart', ...LATER });
      const plain = jobBody(URL_OK, { tenant_id: 'durable', payload: { n: 1 }, ...LATER });
      const a = await createJob(first, keyed);
      const b = await createJob(first, plain);
      await first.stop(1000);

      second = await startTestService({}, {}, first.dir);
      await expectDeduplicated(second, keyed, a);
      await expectDeduplicated(second, plain, b);
      assert.equal((await jobsOf(second, 'durable')).length, 2);
    } finally {
      if (second) await second.cleanup();
      else await first.cleanup();
    }
  });
});
