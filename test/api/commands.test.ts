// Commands and the delivery record: cancel, retry, attempts, and the dead-letter queue.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type ReceivedRequest, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import {
  assertJobShape,
  createJob,
  expectError,
  getJob,
  LATER,
  RFC3339_UTC,
  waitForStatus,
  walk,
  type JobView,
  type PageView,
} from './helpers.js';

const UNKNOWN_ID = '01900000-0000-7000-8000-000000000000';

interface AttemptView {
  attempt: number;
  started_at: string;
  finished_at: string;
  duration_ms: number;
  outcome: string;
  error_kind: string | null;
  status_code: number | null;
  error: string | null;
  response_body: string | null;
}

/** A receiver whose answer depends on the path: /ok, /bad (400), /flaky (500 twice, then 200), /big, /hang. */
async function scriptedReceiver(): Promise<Receiver & { release(): void; count(path: string): number }> {
  const hits = new Map<string, number>();
  let held: ServerResponse[] = [];
  const receiver = await startReceiver((req: ReceivedRequest, res: ServerResponse) => {
    const path = req.url.split('?')[0] ?? '';
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    const kind = path.split('/')[1];
    if (kind === 'bad') return void res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request: no such order');
    if (kind === 'flaky') {
      if (n <= 2) return void res.writeHead(500, { 'content-type': 'text/plain' }).end(`boom ${n}`);
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end('fine now');
    }
    if (kind === 'big') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('z'.repeat(10_000));
    if (kind === 'hang') return void held.push(res);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  return Object.assign(receiver, {
    release() {
      for (const res of held) if (!res.writableEnded) res.writeHead(500).end('released');
      held = [];
    },
    count: (path: string) => hits.get(path) ?? 0,
  });
}

async function attemptsOf(svc: TestService, id: string): Promise<AttemptView[]> {
  const res = await svc.get(`/v1/jobs/${id}/attempts`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { data: AttemptView[] };
  assert.deepEqual(Object.keys(body), ['data']);
  return body.data;
}

function assertAttemptShape(a: AttemptView): void {
  assert.deepEqual(
    Object.keys(a).sort(),
    ['attempt', 'duration_ms', 'error', 'error_kind', 'finished_at', 'outcome', 'response_body', 'started_at', 'status_code'],
  );
  assert.ok(Number.isInteger(a.attempt) && a.attempt >= 1);
  assert.match(a.started_at, RFC3339_UTC);
  assert.match(a.finished_at, RFC3339_UTC);
  assert.ok(Date.parse(a.finished_at) >= Date.parse(a.started_at));
  assert.ok(Number.isInteger(a.duration_ms) && a.duration_ms >= 0);
  assert.ok(['success', 'retryable_error', 'permanent_error'].includes(a.outcome));
  assert.ok(a.error_kind === null || ['timeout', 'connect', 'dns', 'tls', 'http', 'blocked'].includes(a.error_kind));
  assert.ok(a.status_code === null || Number.isInteger(a.status_code));
  assert.ok(a.error === null || typeof a.error === 'string');
  assert.ok(a.response_body === null || typeof a.response_body === 'string');
}

describe('commands and attempts', () => {
  let svc: TestService;
  let receiver: Awaited<ReturnType<typeof scriptedReceiver>>;
  before(async () => {
    receiver = await scriptedReceiver();
    svc = await startTestService();
  });
  after(async () => {
    receiver?.release();
    await svc?.cleanup();
    await receiver?.close();
  });

  /** A job that fails for good: one attempt against a receiver answering 400. */
  async function failedJob(tenant: string, path: string): Promise<JobView> {
    const job = await createJob(svc, jobBody(`${receiver.url}/bad/${path}`, { tenant_id: tenant, retry: { max_attempts: 1 } }));
    return waitForStatus(svc, job.id, 'failed');
  }

  describe('GET /v1/jobs/{id}/attempts', () => {
    it('lists every attempt oldest first with every attempt field', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/flaky/a`, {
        tenant_id: 'attempts',
        retry: { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 20 },
      }));
      const done = await waitForStatus(svc, job.id, 'success');
      assert.equal(done.attempts, 3);
      assert.equal(done.last_status_code, 200);

      const attempts = await attemptsOf(svc, job.id);
      assert.equal(attempts.length, 3);
      attempts.forEach(assertAttemptShape);
      assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3]);
      assert.deepEqual(attempts.map((a) => a.outcome), ['retryable_error', 'retryable_error', 'success']);
      assert.deepEqual(attempts.map((a) => a.status_code), [500, 500, 200]);
      assert.deepEqual(attempts.map((a) => a.error_kind), ['http', 'http', null]);
      assert.deepEqual(attempts.map((a) => a.response_body), ['boom 1', 'boom 2', 'fine now']);
      assert.ok(attempts[0]?.error && attempts[1]?.error, 'failed attempts say why');
      assert.equal(attempts[2]?.error, null);
      for (let i = 1; i < attempts.length; i++) {
        assert.ok(Date.parse(attempts[i]!.started_at) >= Date.parse(attempts[i - 1]!.finished_at), 'oldest first');
      }
    });

    it('records a connection failure with no status code and no response body', async () => {
      // port 1 on loopback: nothing listens there
      const job = await createJob(svc, jobBody('http://127.0.0.1:1/closed', { tenant_id: 'attempts-connect', retry: { max_attempts: 1 } }));
      const failed = await waitForStatus(svc, job.id, 'failed');
      assert.equal(failed.last_status_code, null);
      assert.ok(failed.last_error);
      const [a] = await attemptsOf(svc, job.id);
      assert.ok(a);
      assertAttemptShape(a);
      assert.equal(a.outcome, 'retryable_error');
      assert.equal(a.error_kind, 'connect');
      assert.equal(a.status_code, null);
      assert.equal(a.response_body, null);
    });

    it('keeps the first 4 KiB of a response body', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/big/1`, { tenant_id: 'attempts-big', retry: { max_attempts: 1 } }));
      await waitForStatus(svc, job.id, 'failed');
      const [a] = await attemptsOf(svc, job.id);
      assert.ok(a?.response_body);
      assert.ok(Buffer.byteLength(a.response_body) <= 4096, `${Buffer.byteLength(a.response_body)} bytes kept`);
      assert.ok(a.response_body.startsWith('zzzz'));
    });

    it('answers an empty list for a job not attempted yet', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/ok/none`, { tenant_id: 'attempts-none', ...LATER }));
      assert.deepEqual(await attemptsOf(svc, job.id), []);
    });

    it('answers 404 not_found for an unknown job', async () => {
      await expectError(await svc.get(`/v1/jobs/${UNKNOWN_ID}/attempts`), 404, 'not_found');
      await expectError(await svc.get('/v1/jobs/..%2F..%2Fetc%2Fpasswd/attempts'), 404, 'not_found');
      await expectError(await svc.get('/v1/jobs/nope/attempts'), 404, 'not_found');
    });
  });

  describe('POST /v1/jobs/{id}/cancel', () => {
    it('cancels a scheduled job with 200', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/ok/cancel`, { tenant_id: 'cancel', ...LATER }));
      const res = await svc.post(`/v1/jobs/${job.id}/cancel`, {});
      assert.equal(res.status, 200);
      const cancelled = (await res.json()) as JobView;
      assertJobShape(cancelled);
      assert.equal(cancelled.id, job.id);
      assert.equal(cancelled.status, 'cancelled');
      assert.ok(cancelled.completed_at !== null);
      assert.equal((await getJob(svc, job.id)).status, 'cancelled');
    });

    it('cancels without a request body', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/ok/cancel-nobody`, { tenant_id: 'cancel', ...LATER }));
      const res = await svc.request(`/v1/jobs/${job.id}/cancel`, { method: 'POST' });
      assert.equal(res.status, 200);
    });

    it('answers 409 conflict when the job is already cancelled', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/ok/cancel2`, { tenant_id: 'cancel', ...LATER }));
      assert.equal((await svc.post(`/v1/jobs/${job.id}/cancel`, {})).status, 200);
      const err = await expectError(await svc.post(`/v1/jobs/${job.id}/cancel`, {}), 409, 'conflict');
      assert.equal(err.details?.status, 'cancelled');
    });

    it('answers 409 conflict for a job that succeeded or failed', async () => {
      const ok = await createJob(svc, jobBody(`${receiver.url}/ok/done`, { tenant_id: 'cancel' }));
      await waitForStatus(svc, ok.id, 'success');
      await expectError(await svc.post(`/v1/jobs/${ok.id}/cancel`, {}), 409, 'conflict');
      const failed = await failedJob('cancel', 'cancel-failed');
      await expectError(await svc.post(`/v1/jobs/${failed.id}/cancel`, {}), 409, 'conflict');
      assert.equal((await getJob(svc, failed.id)).status, 'failed');
    });

    it('answers 404 not_found for an unknown job', async () => {
      await expectError(await svc.post(`/v1/jobs/${UNKNOWN_ID}/cancel`, {}), 404, 'not_found');
      await expectError(await svc.post('/v1/jobs/..%2F..%2Fetc%2Fpasswd/cancel', {}), 404, 'not_found');
      await expectError(await svc.post('/v1/jobs/not-a-uuid/cancel', {}), 404, 'not_found');
    });
  });

  describe('POST /v1/jobs/{id}/retry', () => {
    it('queues a cancelled job again with 200, then delivers it', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/ok/retry-cancelled`, { tenant_id: 'retry', ...LATER }));
      assert.equal((await svc.post(`/v1/jobs/${job.id}/cancel`, {})).status, 200);
      const res = await svc.post(`/v1/jobs/${job.id}/retry`, {});
      assert.equal(res.status, 200);
      const queued = (await res.json()) as JobView;
      assertJobShape(queued);
      assert.equal(queued.status, 'queued');
      assert.equal(queued.attempts, 0);
      assert.equal(queued.completed_at, null);
      // it was due a day from now; retried, it is due at once
      const done = await waitForStatus(svc, job.id, 'success', 5000);
      assert.equal(done.attempts, 1);
      assert.equal(receiver.count('/ok/retry-cancelled'), 1);
    });

    it('queues a failed job again with a fresh attempt budget, keeping its old attempts', async () => {
      const failed = await failedJob('retry', 'retry-failed');
      assert.equal(failed.attempts, 1);
      assert.equal(failed.last_status_code, 400);
      assert.ok(failed.last_error);
      assert.equal((await attemptsOf(svc, failed.id)).length, 1);

      const res = await svc.post(`/v1/jobs/${failed.id}/retry`, {});
      assert.equal(res.status, 200);
      const queued = (await res.json()) as JobView;
      assert.equal(queued.status, 'queued');
      assert.equal(queued.attempts, 0, 'attempts reset');
      assert.equal(queued.completed_at, null);
      const kept = await attemptsOf(svc, failed.id);
      assert.ok(kept.length >= 1, 'the old attempt is kept');
      assert.equal(kept[0]?.status_code, 400);

      // still answering 400: one more attempt (the fresh budget of 1), failed again, both attempts on record
      const again = await waitForStatus(svc, failed.id, 'failed');
      assert.equal(again.attempts, 1);
      const all = await attemptsOf(svc, failed.id);
      assert.equal(all.length, 2);
      all.forEach(assertAttemptShape);
      assert.ok(Date.parse(all[1]!.started_at) >= Date.parse(all[0]!.finished_at), 'oldest first');
      assert.equal(receiver.count('/bad/retry-failed'), 2);
    });

    it('answers 409 conflict for a scheduled job', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/ok/retry-scheduled`, { tenant_id: 'retry', ...LATER }));
      const err = await expectError(await svc.post(`/v1/jobs/${job.id}/retry`, {}), 409, 'conflict');
      assert.equal(err.details?.status, 'scheduled');
    });

    it('answers 409 conflict for a job that succeeded', async () => {
      const job = await createJob(svc, jobBody(`${receiver.url}/ok/retry-success`, { tenant_id: 'retry' }));
      await waitForStatus(svc, job.id, 'success');
      await expectError(await svc.post(`/v1/jobs/${job.id}/retry`, {}), 409, 'conflict');
    });

    it('answers 404 not_found for an unknown job', async () => {
      await expectError(await svc.post(`/v1/jobs/${UNKNOWN_ID}/retry`, {}), 404, 'not_found');
      await expectError(await svc.post('/v1/jobs/..%2F..%2Fetc%2Fpasswd/retry', {}), 404, 'not_found');
    });
  });
});

describe('commands on jobs in flight', () => {
  let svc: TestService;
  let receiver: Awaited<ReturnType<typeof scriptedReceiver>>;
  before(async () => {
    receiver = await scriptedReceiver();
    // one worker: while it waits on /hang, the next job stays queued
    svc = await startTestService({ WORKER_CONCURRENCY: '1' });
  });
  after(async () => {
    receiver?.release();
    await svc?.cleanup();
    await receiver?.close();
  });

  it('answers 409 to retrying a running or queued job, and cancels both', async () => {
    const running = await createJob(svc, jobBody(`${receiver.url}/hang/1`, { tenant_id: 'inflight', retry: { max_attempts: 3 } }));
    await receiver.waitFor(1, 5000);
    const runningNow = await waitForStatus(svc, running.id, 'running', 5000);
    assert.equal(runningNow.status, 'running');
    const queued = await createJob(svc, jobBody(`${receiver.url}/ok/behind`, { tenant_id: 'inflight' }));
    assert.equal((await getJob(svc, queued.id)).status, 'queued');

    const errQueued = await expectError(await svc.post(`/v1/jobs/${queued.id}/retry`, {}), 409, 'conflict');
    assert.equal(errQueued.details?.status, 'queued');
    const errRunning = await expectError(await svc.post(`/v1/jobs/${running.id}/retry`, {}), 409, 'conflict');
    assert.equal(errRunning.details?.status, 'running');

    // cancelling the queued job keeps it from ever being sent
    const cq = await svc.post(`/v1/jobs/${queued.id}/cancel`, {});
    assert.equal(cq.status, 200);
    assert.equal(((await cq.json()) as JobView).status, 'cancelled');
    // cancelling the running one: its attempt finishes, no other follows
    const cr = await svc.post(`/v1/jobs/${running.id}/cancel`, {});
    assert.equal(cr.status, 200);
    assert.equal(((await cr.json()) as JobView).status, 'cancelled');

    receiver.release(); // answers 500: would be retried, were it not cancelled
    await eventually(async () => (await svc.get(`/v1/jobs/${running.id}/attempts`)).ok && (await getJob(svc, running.id)).attempts === 1, 5000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await getJob(svc, running.id)).status, 'cancelled');
    assert.equal((await getJob(svc, queued.id)).status, 'cancelled');
    assert.equal(receiver.count('/hang/1'), 1, 'no attempt after the cancel');
    assert.equal(receiver.count('/ok/behind'), 0, 'the cancelled queued job was never sent');
  });
});

describe('GET /v1/dlq', () => {
  let svc: TestService;
  let receiver: Awaited<ReturnType<typeof scriptedReceiver>>;
  const failed: { id: string; tenant: string }[] = [];
  before(async () => {
    receiver = await scriptedReceiver();
    svc = await startTestService();
    for (const [i, tenant] of ['d1', 'd2', 'd1', 'd2', 'd1'].entries()) {
      const job = await createJob(svc, jobBody(`${receiver.url}/bad/dlq${i}`, { tenant_id: tenant, retry: { max_attempts: 1 } }));
      await waitForStatus(svc, job.id, 'failed');
      failed.push({ id: job.id, tenant });
    }
    // jobs that are not failed: none of them belongs in the DLQ
    const ok = await createJob(svc, jobBody(`${receiver.url}/ok/dlq`, { tenant_id: 'd1' }));
    await waitForStatus(svc, ok.id, 'success');
    await createJob(svc, jobBody(`${receiver.url}/ok/dlq-later`, { tenant_id: 'd1', ...LATER }));
    const cancelled = await createJob(svc, jobBody(`${receiver.url}/ok/dlq-cancel`, { tenant_id: 'd2', ...LATER }));
    assert.equal((await svc.post(`/v1/jobs/${cancelled.id}/cancel`, {})).status, 200);
  });
  after(async () => {
    await svc?.cleanup();
    await receiver?.close();
  });

  const newestFirst = (tenant?: string) => failed.filter((f) => !tenant || f.tenant === tenant).map((f) => f.id).reverse();

  it('lists the failed jobs only, newest first', async () => {
    const res = await svc.get('/v1/dlq');
    assert.equal(res.status, 200);
    const page = (await res.json()) as PageView;
    assert.deepEqual(Object.keys(page).sort(), ['data', 'next_cursor']);
    assert.deepEqual(page.data.map((j) => j.id), newestFirst());
    assert.equal(page.next_cursor, null);
    for (const j of page.data) {
      assertJobShape(j);
      assert.equal(j.status, 'failed');
    }
  });

  it('filters the DLQ by tenant_id', async () => {
    for (const tenant of ['d1', 'd2']) {
      const page = (await (await svc.get(`/v1/dlq?tenant_id=${tenant}`)).json()) as PageView;
      assert.deepEqual(page.data.map((j) => j.id), newestFirst(tenant));
    }
    assert.deepEqual(((await (await svc.get('/v1/dlq?tenant_id=nobody')).json()) as PageView).data, []);
  });

  it('walks the DLQ exactly once with a cursor', async () => {
    const pages = await walk(svc, '/v1/dlq', 2);
    assert.equal(pages.length, 3);
    assert.deepEqual(pages.flatMap((p) => p.data.map((j) => j.id)), newestFirst());
    const d1 = await walk(svc, '/v1/dlq?tenant_id=d1', 1);
    assert.deepEqual(d1.flatMap((p) => p.data.map((j) => j.id)), newestFirst('d1'));
  });

  it('rejects a bad limit or an unknown parameter with 400 validation_failed', async () => {
    await expectError(await svc.get('/v1/dlq?limit=0'), 400, 'validation_failed');
    await expectError(await svc.get('/v1/dlq?limit=1001'), 400, 'validation_failed');
    await expectError(await svc.get('/v1/dlq?status=success'), 400, 'validation_failed');
    await expectError(await svc.get('/v1/dlq?tenant_id=bad%20tenant'), 400, 'validation_failed');
  });

  it('lets a retried job leave the DLQ', async () => {
    const last = failed[failed.length - 1]!;
    assert.equal((await svc.post(`/v1/jobs/${last.id}/retry`, {})).status, 200);
    const page = (await (await svc.get('/v1/dlq')).json()) as PageView;
    assert.ok(!page.data.some((j) => j.id === last.id));
    // it fails again against the same receiver and comes back
    await waitForStatus(svc, last.id, 'failed');
    const back = (await (await svc.get('/v1/dlq')).json()) as PageView;
    assert.ok(back.data.some((j) => j.id === last.id));
  });
});
