// POST /v1/jobs over real HTTP against a real SQLite file: the original design's example, defaults, timing.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { assertJobShape, createJob, expectError, getJob, LATER, waitForStatus, type JobView } from './helpers.js';

describe('POST /v1/jobs creates a job', () => {
  let svc: TestService;
  let receiver: Receiver;

  before(async () => {
    receiver = await startReceiver();
    svc = await startTestService();
  });
  after(async () => {
    await svc?.cleanup();
    await receiver?.close();
  });

  it('accepts the original design example as written, answers 201 with every Job field, and delivers it', async () => {
    // ../shared/seed/000_18e6392400f6373b.txt, "Create a Job", with the destination pointed at a local receiver
    const example = `{
    "tenant_id": "demo",
    "type": "webhook.dispatch",
    "payload": {"order_id": 42, "status": "completed"},
    "destination": {
      "url": "${receiver.url}/your-unique-id",
      "method": "POST",
      "timeout_ms": 5000
    },
    "retry": {
      "max_attempts": 5,
      "base_delay_ms": 1000,
      "max_delay_ms": 30000
    },
    "rate_limit": {
      "rps": 10,
      "burst": 20
    }
  }`;
    const before = Date.now();
    const res = await svc.request('/v1/jobs', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'unique-key-123' },
      body: example,
    });
    const text = await res.text();
    assert.equal(res.status, 201, text);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const job = JSON.parse(text) as JobView;
    assertJobShape(job);
    assert.equal(res.headers.get('location'), `/v1/jobs/${job.id}`);
    assert.equal(job.tenant_id, 'demo');
    assert.equal(job.type, 'webhook.dispatch');
    assert.equal(job.status, 'queued');
    assert.deepEqual(job.payload, { order_id: 42, status: 'completed' });
    assert.deepEqual(job.destination, { url: `${receiver.url}/your-unique-id`, method: 'POST', timeout_ms: 5000, headers: {} });
    assert.deepEqual(job.retry, { max_attempts: 5, base_delay_ms: 1000, max_delay_ms: 30000 });
    assert.deepEqual(job.rate_limit, { rps: 10, burst: 20 });
    assert.equal(job.attempts, 0);
    assert.equal(job.next_attempt_at, null);
    assert.equal(job.last_error, null);
    assert.equal(job.last_status_code, null);
    assert.equal(job.idempotency_key, 'unique-key-123');
    assert.equal(job.dedupe_key, null);
    assert.equal(job.completed_at, null);
    const created = Date.parse(job.created_at);
    assert.ok(created >= before - 1000 && created <= Date.now() + 1000, 'created_at is now');
    assert.ok(Date.parse(job.run_at) <= Date.now() + 1000, 'run_at is now');

    const [got] = await receiver.waitFor(1, 10_000);
    assert.equal(got?.method, 'POST');
    assert.equal(got?.url, '/your-unique-id');
    assert.deepEqual(JSON.parse(got?.body ?? ''), { order_id: 42, status: 'completed' });

    const done = await waitForStatus(svc, job.id, 'success');
    assertJobShape(done);
    assert.equal(done.attempts, 1);
    assert.equal(done.last_status_code, 200);
    assert.ok(done.completed_at !== null);
    assert.ok(Date.parse(done.updated_at) >= Date.parse(job.updated_at));
  });

  it('applies the defaults: method POST, timeout 10000, retry 5/1000/30000, rate_limit null, headers {}', async () => {
    const job = await createJob(svc, {
      tenant_id: 'defaults',
      type: 't',
      payload: { a: 1 },
      destination: { url: `${receiver.url}/defaults` },
      ...LATER,
    });
    assertJobShape(job);
    assert.deepEqual(job.destination, { url: `${receiver.url}/defaults`, method: 'POST', timeout_ms: 10_000, headers: {} });
    assert.deepEqual(job.retry, { max_attempts: 5, base_delay_ms: 1000, max_delay_ms: 30_000 });
    assert.equal(job.rate_limit, null);
    assert.equal(job.idempotency_key, null);
    assert.equal(job.dedupe_key, null);
  });

  it('fills in the retry fields a partial retry object leaves out', async () => {
    const job = await createJob(svc, jobBody(`${receiver.url}/partial`, { tenant_id: 'partial', retry: { max_attempts: 2 }, ...LATER }));
    assert.deepEqual(job.retry, { max_attempts: 2, base_delay_ms: 1000, max_delay_ms: 30_000 });
  });

  it('keeps the method, timeout, headers and rate limit it was given', async () => {
    const job = await createJob(svc, {
      tenant_id: 'given',
      type: 't',
      payload: [1, 'two', null],
      destination: { url: `${receiver.url}/given`, method: 'PATCH', timeout_ms: 100, headers: { 'X-Trace': 'abc', Authorization: 'Bearer t' } },
      retry: { max_attempts: 50, base_delay_ms: 0, max_delay_ms: 86_400_000 },
      rate_limit: { rps: 0.5, burst: 1 },
      dedupe_key: 'd'.repeat(255),
      ...LATER,
    });
    assert.deepEqual(job.payload, [1, 'two', null]);
    assert.deepEqual(job.destination, {
      url: `${receiver.url}/given`,
      method: 'PATCH',
      timeout_ms: 100,
      headers: { 'X-Trace': 'abc', Authorization: 'Bearer t' },
    });
    assert.deepEqual(job.retry, { max_attempts: 50, base_delay_ms: 0, max_delay_ms: 86_400_000 });
    assert.deepEqual(job.rate_limit, { rps: 0.5, burst: 1 });
    assert.equal(job.dedupe_key, 'd'.repeat(255));
  });

  it('accepts any JSON as payload, null and scalars included', async () => {
    for (const [i, payload] of [null, 0, 'text', true, [], {}].entries()) {
      const job = await createJob(svc, jobBody(`${receiver.url}/p${i}`, { tenant_id: 'payloads', payload, ...LATER }));
      assert.deepEqual(job.payload, payload);
      assert.deepEqual((await getJob(svc, job.id)).payload, payload);
    }
  });

  it('schedules a job whose run_at is in the future', async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const job = await createJob(svc, jobBody(`${receiver.url}/future`, { tenant_id: 'timing', run_at: runAt }));
    assert.equal(job.status, 'scheduled');
    assert.equal(job.run_at, runAt);
    assert.equal((await getJob(svc, job.id)).status, 'scheduled');
  });

  it('reads a run_at with an offset as the same instant in UTC', async () => {
    const at = Date.now() + 7_200_000;
    const plus2 = new Date(at + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    const job = await createJob(svc, jobBody(`${receiver.url}/offset`, { tenant_id: 'timing', run_at: plus2 }));
    assert.equal(job.status, 'scheduled');
    assert.equal(job.run_at, new Date(at).toISOString());
  });

  it('queues a job whose run_at is in the past to run now', async () => {
    const before = Date.now();
    const job = await createJob(svc, jobBody(`${receiver.url}/past`, { tenant_id: 'timing', run_at: '2020-01-01T00:00:00Z' }));
    assert.equal(job.status, 'queued');
    assert.ok(Date.parse(job.run_at) >= before - 1000, `run_at ${job.run_at} is now, not 2020`);
    await waitForStatus(svc, job.id, 'success');
  });

  it('runs a job delay_ms after its creation', async () => {
    const job = await createJob(svc, jobBody(`${receiver.url}/delay`, { tenant_id: 'timing', delay_ms: 600_000 }));
    assert.equal(job.status, 'scheduled');
    // run_at is taken when the request is read, created_at when its batch commits a moment later
    const gap = Date.parse(job.run_at) - Date.parse(job.created_at);
    assert.ok(gap > 600_000 - 1000 && gap <= 600_000, `run_at is created_at + 600000 (got +${gap})`);
  });

  it('runs a job with delay_ms 0 now', async () => {
    const job = await createJob(svc, jobBody(`${receiver.url}/delay0`, { tenant_id: 'timing', delay_ms: 0 }));
    assert.equal(job.status, 'queued');
    await waitForStatus(svc, job.id, 'success');
  });

  it('delivers a short delay once it has passed', async () => {
    const job = await createJob(svc, jobBody(`${receiver.url}/short`, { tenant_id: 'timing', delay_ms: 300 }));
    assert.equal(job.status, 'scheduled');
    const done = await waitForStatus(svc, job.id, 'success', 10_000);
    assert.ok(Date.parse(done.completed_at ?? '') >= Date.parse(job.run_at), 'delivered no earlier than run_at');
  });

  it('rejects run_at and delay_ms given together with 422', async () => {
    const res = await svc.post('/v1/jobs', jobBody(`${receiver.url}/both`, { tenant_id: 'both', run_at: new Date().toISOString(), delay_ms: 10 }));
    const err = await expectError(res, 422, 'validation_failed');
    assert.ok(err.details?.fields?.some((f) => /run_at|delay_ms/.test(f.field)));
    const list = (await (await svc.get('/v1/jobs?tenant_id=both')).json()) as { data: unknown[] };
    assert.equal(list.data.length, 0);
  });

  it('returns the job it stored: GET /v1/jobs/{id} answers the same fields', async () => {
    const job = await createJob(svc, jobBody(`${receiver.url}/same`, { tenant_id: 'same', ...LATER }));
    const read = await getJob(svc, job.id);
    assertJobShape(read);
    assert.deepEqual(read, job);
  });
});

describe('POST /v1/jobs with a far-future run time', () => {
  let svc: TestService;
  before(async () => {
    // a fresh service: the far job is the earliest one its scheduler waits for
    svc = await startTestService();
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('keeps a job scheduled a year out without overflowing a timer', async () => {
    // setTimeout takes at most 2^31-1 ms (24.8 days); a longer wait must not become a 1 ms timer
    const overflows: string[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'TimeoutOverflowWarning') overflows.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      const job = await createJob(svc, jobBody('http://127.0.0.1:9/year', { tenant_id: 'far', delay_ms: 365 * 86_400_000 }));
      assert.equal(job.status, 'scheduled');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await getJob(svc, job.id)).status, 'scheduled');
      assert.deepEqual(overflows, [], 'no timer was set beyond what setTimeout can hold');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
