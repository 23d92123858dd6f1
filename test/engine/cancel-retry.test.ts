// Cancel and retry in every state.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerResponse } from 'node:http';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { attemptsOf, createJob, getJob, waitForStatus } from '../support/jobs.js';

describe('cancel and retry', () => {
  let svc: TestService;
  let rx: Receiver;
  const held: ServerResponse[] = [];
  let seq = 0;
  const body = (path: string, extra: Record<string, unknown> = {}) => jobBody(`${rx.url}${path}`, { payload: { n: seq++ }, ...extra });
  const hits = (id: string) => rx.requests.filter((r) => r.headers['webhook-id'] === id).length;
  const cancel = (id: string) => svc.post(`/v1/jobs/${id}/cancel`, {});
  const retry = (id: string) => svc.post(`/v1/jobs/${id}/retry`, {});

  before(async () => {
    rx = await startReceiver((req, res) => {
      if (req.url.startsWith('/hold')) return void held.push(res);
      const code = req.url.startsWith('/fail') ? 500 : req.url.startsWith('/reject') ? 400 : 200;
      res.writeHead(code);
      res.end();
    });
    svc = await startTestService();
  });
  after(async () => {
    for (const r of held) r.destroy();
    await svc.cleanup();
    await rx.close();
  });

  it('cancels a scheduled job at once and never delivers it', async () => {
    const job = await createJob(svc, body('/ok', { delay_ms: 300 }));
    const res = await cancel(job.id);
    assert.equal(res.status, 200);
    const j = (await res.json()) as { status: string; completed_at: string | null };
    assert.equal(j.status, 'cancelled');
    assert.ok(j.completed_at);
    await sleep(600);
    assert.equal(hits(job.id), 0);
    assert.equal((await getJob(svc, job.id)).status, 'cancelled');
  });

  it('cancels a queued job waiting in memory for a rate-limit token and drops it', async () => {
    const limit = { rate_limit: { rps: 0.5, burst: 1 } };
    const first = await createJob(svc, body('/ok', limit));
    const second = await createJob(svc, body('/ok', limit));
    await waitForStatus(svc, first.id, 'success');
    await sleep(100);
    assert.equal(svc.engine.stats().parked, 1, 'the second job waits in memory for a token');
    assert.equal((await (await cancel(second.id)).json() as { status: string }).status, 'cancelled');
    assert.equal(svc.engine.stats().queued, 0, 'and is dropped from memory');
    await sleep(2300);
    assert.equal(hits(second.id), 0);
  });

  it('cancels a retrying job so it gets no further attempt', async () => {
    const job = await createJob(svc, body('/fail', { retry: { max_attempts: 5, base_delay_ms: 400, max_delay_ms: 400 } }));
    await waitForStatus(svc, job.id, 'retrying');
    assert.equal((await cancel(job.id)).status, 200);
    await sleep(600);
    assert.equal(hits(job.id), 1);
    const j = await getJob(svc, job.id);
    assert.equal(j.status, 'cancelled');
    assert.equal(j.next_attempt_at, null);
  });

  it('lets a running attempt finish after a cancel, records it, and makes no further attempt', async () => {
    const job = await createJob(svc, body('/hold', { retry: { max_attempts: 3, base_delay_ms: 0 } }));
    await waitForStatus(svc, job.id, 'running');
    const res = await cancel(job.id);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { status: string }).status, 'cancelled');
    const r = held.pop() as ServerResponse;
    r.writeHead(500);
    r.end('failed after cancel');
    await eventually(async () => (await getJob(svc, job.id)).attempts === 1);
    await sleep(200);
    const j = await getJob(svc, job.id);
    assert.equal(j.status, 'cancelled', 'stays cancelled although the attempt asked for a retry');
    assert.equal(hits(job.id), 1);
    const attempts = await attemptsOf(svc, job.id);
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]?.status_code, 500);
  });

  it('answers 409 when cancelling a job that is already terminal', async () => {
    const ok = await createJob(svc, body('/ok'));
    await waitForStatus(svc, ok.id, 'success');
    const failed = await createJob(svc, body('/reject'));
    await waitForStatus(svc, failed.id, 'failed');
    const cancelled = await createJob(svc, body('/ok', { delay_ms: 60_000 }));
    await cancel(cancelled.id);
    for (const id of [ok.id, failed.id, cancelled.id]) {
      const res = await cancel(id);
      assert.equal(res.status, 409);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'conflict');
    }
  });

  it('retries a failed job with a fresh attempt budget, keeping its history', async () => {
    const job = await createJob(svc, body('/reject', { retry: { max_attempts: 2, base_delay_ms: 0 } }));
    await waitForStatus(svc, job.id, 'failed');
    rx.setHandler((req, res) => {
      if (req.url.startsWith('/hold')) return void held.push(res);
      res.writeHead(req.url.startsWith('/fail') ? 500 : 200);
      res.end();
    });
    const res = await retry(job.id);
    assert.equal(res.status, 200);
    const j = (await res.json()) as { status: string; attempts: number; completed_at: string | null };
    assert.equal(j.status, 'queued');
    assert.equal(j.attempts, 0);
    assert.equal(j.completed_at, null);
    const done = await waitForStatus(svc, job.id, 'success');
    assert.equal(done.attempts, 1);
    const attempts = await attemptsOf(svc, job.id);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.status_code]), [[1, 400], [1, 200]]);
  });

  it('retries a cancelled job and delivers it', async () => {
    const job = await createJob(svc, body('/ok', { delay_ms: 60_000 }));
    await cancel(job.id);
    const res = await retry(job.id);
    assert.equal(res.status, 200);
    const queued = (await res.json()) as { run_at: string };
    assert.ok(Date.parse(queued.run_at) <= Date.now(), 'run_at no longer lies in the future');
    await waitForStatus(svc, job.id, 'success');
    assert.equal(hits(job.id), 1);
  });

  it('answers 409 when retrying a job that is not failed or cancelled', async () => {
    const scheduled = await createJob(svc, body('/ok', { delay_ms: 60_000 }));
    const retrying = await createJob(svc, body('/fail', { retry: { max_attempts: 5, base_delay_ms: 60_000 } }));
    await waitForStatus(svc, retrying.id, 'retrying');
    const running = await createJob(svc, body('/hold'));
    await waitForStatus(svc, running.id, 'running');
    const success = await createJob(svc, body('/ok'));
    await waitForStatus(svc, success.id, 'success');
    for (const id of [scheduled.id, retrying.id, running.id, success.id]) {
      const res = await retry(id);
      assert.equal(res.status, 409, `retry of ${(await getJob(svc, id)).status}`);
    }
    (held.pop() as ServerResponse).end();
  });

  it('answers 404 for cancel and retry of an unknown job', async () => {
    assert.equal((await cancel('01900000-0000-7000-8000-000000000000')).status, 404);
    assert.equal((await retry('01900000-0000-7000-8000-000000000000')).status, 404);
  });
});

describe('bounded memory', () => {
  it('holds at most QUEUE_CAPACITY jobs in memory however large the backlog', async () => {
    const rx = await startReceiver(async (_req, res) => {
      await sleep(5);
      res.writeHead(200);
      res.end();
    });
    const svc = await startTestService({ QUEUE_CAPACITY: '20', WORKER_CONCURRENCY: '4' });
    try {
      let maxQueued = 0;
      let sawBacklogInStore = false;
      const sampler = setInterval(() => {
        maxQueued = Math.max(maxQueued, svc.engine.stats().queued);
      }, 2);
      const created = [];
      for (let i = 0; i < 300; i += 50) {
        created.push(...(await Promise.all(Array.from({ length: 50 }, (_, k) => createJob(svc, jobBody(`${rx.url}/x`, { payload: { i: i + k } }))))));
      }
      const counts = await svc.store.countByStatus();
      sawBacklogInStore = counts.queued > 20;
      await rx.waitFor(300, 20_000);
      clearInterval(sampler);
      assert.ok(maxQueued <= 20, `memory queue reached ${maxQueued}`);
      assert.ok(maxQueued > 0);
      assert.ok(sawBacklogInStore, 'the backlog waits in the store');
      await eventually(async () => (await svc.store.countByStatus()).success === 300);
    } finally {
      await svc.cleanup();
      await rx.close();
    }
  });
});
