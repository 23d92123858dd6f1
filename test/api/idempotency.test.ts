// The Idempotency-Key header: a replay returns the original job; a reuse with another body is refused;
// concurrent requests with one key make one job; keys survive a restart and expire after their TTL.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { FakeClock } from '../support/fake-clock.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { assertJobShape, createJob, expectError, LATER, waitForStatus, type JobView, type PageView } from './helpers.js';

async function jobsOf(svc: TestService, tenant: string): Promise<JobView[]> {
  const res = await svc.get(`/v1/jobs?tenant_id=${tenant}&limit=1000`);
  assert.equal(res.status, 200);
  return ((await res.json()) as PageView).data;
}

describe('Idempotency-Key', () => {
  let svc: TestService;
  let receiver: Receiver;
  before(async () => {
    receiver = await startReceiver();
    // dedupe off, so only the key can make two requests one job
    svc = await startTestService({ DEDUPE_WINDOW_SECONDS: '0' });
  });
  after(async () => {
    await svc?.cleanup();
    await receiver?.close();
  });

  it('returns the original job with 200 and Idempotent-Replayed: true on a replay', async () => {
    const body = jobBody(`${receiver.url}/replay`, { tenant_id: 'replay', ...LATER });
    const first = await svc.post('/v1/jobs', body, { 'idempotency-key': 'order-42' });
    assert.equal(first.status, 201);
    assert.equal(first.headers.get('idempotent-replayed'), null);
    const job = (await first.json()) as JobView;
    assert.equal(job.idempotency_key, 'order-42');

    const again = await svc.post('/v1/jobs', body, { 'idempotency-key': 'order-42' });
    assert.equal(again.status, 200);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.headers.get('deduplicated'), null);
    const replayed = (await again.json()) as JobView;
    assertJobShape(replayed);
    assert.deepEqual(replayed, job);
    assert.equal((await jobsOf(svc, 'replay')).length, 1);
  });

  it('replays the job as it is now, not as it was created', async () => {
    const body = jobBody(`${receiver.url}/now`, { tenant_id: 'replay-now' });
    const job = await createJob(svc, body, { 'idempotency-key': 'k-now' });
    await waitForStatus(svc, job.id, 'success');
    const again = await svc.post('/v1/jobs', body, { 'idempotency-key': 'k-now' });
    assert.equal(again.status, 200);
    const replayed = (await again.json()) as JobView;
    assert.equal(replayed.id, job.id);
    assert.equal(replayed.status, 'success');
    assert.equal(receiver.requests.filter((r) => r.url === '/now').length, 1, 'delivered once');
  });

  it('treats a replay that spells out the defaults as the same request', async () => {
    const body = jobBody(`${receiver.url}/defaults`, { tenant_id: 'replay-defaults', ...LATER });
    const job = await createJob(svc, body, { 'idempotency-key': 'k-defaults' });
    const spelled = {
      ...body,
      destination: { ...(body.destination as object), headers: {} },
      retry: { max_attempts: 5, base_delay_ms: 1000, max_delay_ms: 30_000 },
    };
    const again = await svc.post('/v1/jobs', spelled, { 'idempotency-key': 'k-defaults' });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as JobView).id, job.id);
  });

  it('treats a replay whose run_at names the same instant in another offset as the same request', async () => {
    const at = Date.now() + 86_400_000;
    const utc = new Date(at).toISOString();
    const plus1 = new Date(at + 3_600_000).toISOString().replace('Z', '+01:00');
    const body = jobBody(`${receiver.url}/offset`, { tenant_id: 'replay-offset', run_at: utc });
    const job = await createJob(svc, body, { 'idempotency-key': 'k-offset' });
    const again = await svc.post('/v1/jobs', { ...body, run_at: plus1 }, { 'idempotency-key': 'k-offset' });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as JobView).id, job.id);
  });

  it('answers 422 idempotency_key_reused when the same key comes with a different body', async () => {
    const body = jobBody(`${receiver.url}/reuse`, { tenant_id: 'reuse', ...LATER });
    const job = await createJob(svc, body, { 'idempotency-key': 'k-reuse' });
    for (const other of [
      { ...body, payload: { order_id: 43 } },
      { ...body, type: 'other.type' },
      { ...body, destination: { url: `${receiver.url}/elsewhere` } },
      { ...body, retry: { max_attempts: 2 } },
      { ...body, delay_ms: 1 },
    ]) {
      const err = await expectError(await svc.post('/v1/jobs', other, { 'idempotency-key': 'k-reuse' }), 422, 'idempotency_key_reused');
      assert.ok(err.message.length > 0);
    }
    const jobs = await jobsOf(svc, 'reuse');
    assert.deepEqual(jobs.map((j) => j.id), [job.id], 'no second job was written');
  });

  it('scopes a key to its tenant', async () => {
    const a = await createJob(svc, jobBody(`${receiver.url}/ta`, { tenant_id: 'tenant-a', ...LATER }), { 'idempotency-key': 'shared' });
    const res = await svc.post('/v1/jobs', jobBody(`${receiver.url}/tb`, { tenant_id: 'tenant-b', ...LATER }), { 'idempotency-key': 'shared' });
    assert.equal(res.status, 201);
    const b = (await res.json()) as JobView;
    assert.notEqual(a.id, b.id);
  });

  it('creates one job from 20 concurrent requests with one key, and every answer carries its id', async () => {
    const body = jobBody(`${receiver.url}/concurrent`, { tenant_id: 'concurrent', ...LATER });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => svc.post('/v1/jobs', body, { 'idempotency-key': 'k-concurrent' })),
    );
    const statuses = answers.map((r) => r.status).sort((a, b) => a - b);
    const jobs = (await Promise.all(answers.map((r) => r.json()))) as JobView[];
    assert.deepEqual(statuses, [...Array<number>(19).fill(200), 201], 'one 201, then replays');
    assert.equal(new Set(jobs.map((j) => j.id)).size, 1, 'every answer names the same job');
    for (const r of answers.filter((a) => a.status === 200)) assert.equal(r.headers.get('idempotent-replayed'), 'true');
    const stored = await jobsOf(svc, 'concurrent');
    assert.deepEqual(stored.map((j) => j.id), [jobs[0]?.id]);
  });

  it('creates one job from concurrent requests with one key even when they arrive on separate ticks', async () => {
    const body = jobBody(`${receiver.url}/staggered`, { tenant_id: 'staggered', ...LATER });
    const answers: Promise<Response>[] = [];
    for (let i = 0; i < 20; i++) {
      answers.push(svc.post('/v1/jobs', body, { 'idempotency-key': 'k-staggered' }));
      await new Promise((r) => setImmediate(r));
    }
    const jobs = (await Promise.all((await Promise.all(answers)).map((r) => r.json()))) as JobView[];
    assert.equal(new Set(jobs.map((j) => j.id)).size, 1);
    assert.equal((await jobsOf(svc, 'staggered')).length, 1);
  });

  it('delivers a job created under a key once, however often the request is replayed', async () => {
    const body = jobBody(`${receiver.url}/once`, { tenant_id: 'once' });
    const job = await createJob(svc, body, { 'idempotency-key': 'k-once' });
    for (let i = 0; i < 5; i++) assert.equal((await svc.post('/v1/jobs', body, { 'idempotency-key': 'k-once' })).status, 200);
    await waitForStatus(svc, job.id, 'success');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(receiver.requests.filter((r) => r.url === '/once').length, 1);
  });
});

describe('Idempotency-Key across a restart', () => {
  it('replays a key recorded before the service restarted', async () => {
    const first = await startTestService({ DEDUPE_WINDOW_SECONDS: '0' });
    let second: TestService | null = null;
    try {
      const body = jobBody('http://127.0.0.1:9/restart', { tenant_id: 'restart', ...LATER });
      const job = await createJob(first, body, { 'idempotency-key': 'k-restart' });
      await first.stop(1000);

      second = await startTestService({ DEDUPE_WINDOW_SECONDS: '0' }, {}, first.dir);
      const again = await second.post('/v1/jobs', body, { 'idempotency-key': 'k-restart' });
      assert.equal(again.status, 200);
      assert.equal(again.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual((await again.json()) as JobView, job);

      const other = await second.post('/v1/jobs', { ...body, type: 'changed' }, { 'idempotency-key': 'k-restart' });
      await expectError(other, 422, 'idempotency_key_reused');
      assert.equal((await jobsOf(second, 'restart')).length, 1);
    } finally {
      if (second) await second.cleanup();
      else await first.cleanup();
    }
  });
});

describe('Idempotency-Key expiry', () => {
  let svc: TestService;
  let clock: FakeClock;
  before(async () => {
    clock = new FakeClock();
    svc = await startTestService({ IDEMPOTENCY_TTL_SECONDS: '60', DEDUPE_WINDOW_SECONDS: '0' }, { clock });
  });
  after(async () => {
    await svc?.cleanup();
  });

  it('replays a key until IDEMPOTENCY_TTL_SECONDS have passed, then creates a new job', async () => {
    const body = jobBody('http://127.0.0.1:9/ttl', { tenant_id: 'ttl', ...LATER });
    const job = await createJob(svc, body, { 'idempotency-key': 'k-ttl' });

    clock.advance(59_000);
    const within = await svc.post('/v1/jobs', body, { 'idempotency-key': 'k-ttl' });
    assert.equal(within.status, 200);
    assert.equal(((await within.json()) as JobView).id, job.id);

    clock.advance(1_001);
    const afterTtl = await svc.post('/v1/jobs', body, { 'idempotency-key': 'k-ttl' });
    assert.equal(afterTtl.status, 201, 'the expired key makes a new job');
    assert.equal(afterTtl.headers.get('idempotent-replayed'), null);
    const fresh = (await afterTtl.json()) as JobView;
    assert.notEqual(fresh.id, job.id);

    // the new job now owns the key for a fresh TTL
    const replay = await svc.post('/v1/jobs', body, { 'idempotency-key': 'k-ttl' });
    assert.equal(replay.status, 200);
    assert.equal(((await replay.json()) as JobView).id, fresh.id);
  });

  it('accepts an expired key with a different body', async () => {
    const body = jobBody('http://127.0.0.1:9/ttl2', { tenant_id: 'ttl2', ...LATER });
    await createJob(svc, body, { 'idempotency-key': 'k-ttl2' });
    await expectError(await svc.post('/v1/jobs', { ...body, type: 'x' }, { 'idempotency-key': 'k-ttl2' }), 422, 'idempotency_key_reused');
    clock.advance(60_001);
    const res = await svc.post('/v1/jobs', { ...body, type: 'x' }, { 'idempotency-key': 'k-ttl2' });
    assert.equal(res.status, 201);
  });
});
