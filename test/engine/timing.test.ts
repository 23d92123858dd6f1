// Timing rules, driven by a fake clock: a job runs at its time (not at the next poll), each
// backoff is what the policy says, and Retry-After is honoured.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeClock } from '../support/fake-clock.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { attemptsOf, createJob, getJob, waitForStatus } from '../support/jobs.js';
import Database from 'better-sqlite3';
import { HOLD_AHEAD_MS } from '../../src/engine/handle.js';
import type { Store } from '../../src/store/store.js';

/** Counts calls to one store method from now on; returns the reader. */
function countCalls(store: Store, method: 'claimDue'): () => number {
  let n = 0;
  const original = store[method].bind(store);
  store[method] = ((...args: Parameters<Store['claimDue']>) => {
    n++;
    return original(...args);
  }) as Store['claimDue'];
  return () => n;
}

/** The job's row as the database holds it, read through a second connection. */
function storeRow(svc: TestService, id: string): { lease_owner: string | null; status: string; due_at: number } {
  const db = new Database(svc.dbPath, { readonly: true });
  try {
    return db.prepare('SELECT lease_owner, status, due_at FROM jobs WHERE id = ?').get(id) as { lease_owner: string | null; status: string; due_at: number };
  } finally {
    db.close();
  }
}

describe('timing with a fake clock', () => {
  let svc: TestService;
  let rx: Receiver;
  let clock: FakeClock;
  const hits = (id: string) => rx.requests.filter((r) => r.headers['webhook-id'] === id).length;

  before(async () => {
    rx = await startReceiver((req, res) => {
      if (req.url.startsWith('/fail')) {
        res.writeHead(500);
        res.end('no');
      } else if (req.url.startsWith('/slowdown')) {
        res.writeHead(429, { 'retry-after': '120' });
        res.end();
      } else if (req.url.startsWith('/unavailable-date')) {
        // an HTTP date from the service's clock (the fake one): a date from the real clock would
        // be months away from it and hit the cap whatever the receiver asked for
        res.writeHead(503, { 'retry-after': new Date(clock.now() + 7_200_000).toUTCString() });
        res.end();
      } else if (req.url.startsWith('/unavailable-soon')) {
        res.writeHead(503, { 'retry-after': new Date(clock.now() + 600_000).toUTCString() });
        res.end();
      } else {
        res.writeHead(200);
        res.end('ok');
      }
    });
    clock = new FakeClock(Date.parse('2026-06-01T12:00:00.000Z'));
    // the poll interval is an hour: anything that runs on time here was woken by the scheduler
    svc = await startTestService({ SCHEDULER_POLL_INTERVAL_MS: '3600000' }, { clock, random: () => 0.5 });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  it('runs a job at its run_at, not before and not at the next poll', async () => {
    const runAt = new Date(clock.now() + 60_000).toISOString();
    const job = await createJob(svc, jobBody(`${rx.url}/ok`, { run_at: runAt }));
    assert.equal(job.status, 'scheduled');
    assert.equal(job.run_at, runAt);
    clock.advance(59_999);
    await sleep(150);
    assert.equal(hits(job.id), 0, 'not delivered before run_at');
    assert.equal((await getJob(svc, job.id)).status, 'scheduled');
    clock.advance(1);
    await eventually(async () => hits(job.id) === 1, 3000);
    await waitForStatus(svc, job.id, 'success');
  });

  it('runs a job with delay_ms after that delay', async () => {
    const job = await createJob(svc, jobBody(`${rx.url}/ok`, { delay_ms: 5000, payload: { n: 2 } }));
    assert.equal(job.status, 'scheduled');
    assert.equal(Date.parse(job.run_at as string), clock.now() + 5000);
    clock.advance(4999);
    await sleep(100);
    assert.equal(hits(job.id), 0);
    clock.advance(1);
    await eventually(async () => hits(job.id) === 1, 3000);
  });

  it('holds a job due within HOLD_AHEAD_MS in memory and runs it at its time, with no claim', async () => {
    const claims = countCalls(svc.store, 'claimDue');
    const job = await createJob(svc, jobBody(`${rx.url}/ok`, { delay_ms: HOLD_AHEAD_MS - 500, payload: { n: 'ahead' } }));
    assert.equal(job.status, 'scheduled');
    assert.equal(svc.engine.stats().ahead, 1, 'held ahead by the engine that created it');
    assert.equal(storeRow(svc, job.id).lease_owner, svc.engine.owner, 'written already held');
    clock.advance(HOLD_AHEAD_MS - 501);
    await sleep(100);
    assert.equal(hits(job.id), 0, 'not delivered before run_at');
    assert.equal((await getJob(svc, job.id)).status, 'scheduled');
    clock.advance(1);
    await eventually(async () => hits(job.id) === 1, 3000);
    await waitForStatus(svc, job.id, 'success');
    assert.equal(svc.engine.stats().ahead, 0);
    assert.equal(claims(), 0, 'no claim statement ran for it');
  });

  it('never delivers a job held ahead once it is cancelled', async () => {
    const job = await createJob(svc, jobBody(`${rx.url}/ok`, { delay_ms: 1000, payload: { n: 'cancel-ahead' } }));
    assert.equal(svc.engine.stats().ahead, 1);
    const res = await svc.post(`/v1/jobs/${job.id}/cancel`, {});
    assert.equal(res.status, 200);
    assert.equal(svc.engine.stats().ahead, 0, 'dropped from memory');
    clock.advance(2000);
    await sleep(200);
    assert.equal(hits(job.id), 0);
    assert.equal((await getJob(svc, job.id)).status, 'cancelled');
  });

  it('leaves a job due beyond HOLD_AHEAD_MS to the store', async () => {
    const job = await createJob(svc, jobBody(`${rx.url}/ok`, { delay_ms: HOLD_AHEAD_MS + 1, payload: { n: 'beyond' } }));
    assert.equal(svc.engine.stats().ahead, 0);
    assert.equal(storeRow(svc, job.id).lease_owner, null);
    clock.advance(HOLD_AHEAD_MS + 1);
    await eventually(async () => hits(job.id) === 1, 3000);
  });

  it('waits out each backoff exactly as the retry policy computes it', async () => {
    const t0 = clock.now();
    const job = await createJob(svc, jobBody(`${rx.url}/fail`, { retry: { max_attempts: 4, base_delay_ms: 1000, max_delay_ms: 3000 } }));
    // with random() = 0.5 the delay after attempt n is 0.75 * min(3000, 1000 * 2^(n-1))
    const expected = [750, 1500, 2250];
    let at = t0;
    for (let n = 1; n <= 3; n++) {
      // attempt n's result is written by the engine's write batcher a few real milliseconds after
      // the receiver got it; until then the job still shows attempt n - 1's retry
      const j = await eventually(async () => {
        const v = await getJob(svc, job.id);
        return v.status === 'retrying' && v.attempts >= n ? v : null;
      }, 3000);
      assert.equal(j.attempts, n);
      assert.equal(Date.parse(j.next_attempt_at as string), at + (expected[n - 1] as number), `backoff after attempt ${n}`);
      clock.advance((expected[n - 1] as number) - 1);
      await sleep(100);
      assert.equal(hits(job.id), n, `attempt ${n + 1} not before its time`);
      clock.advance(1);
      at = clock.now();
      await eventually(async () => hits(job.id) === n + 1, 3000);
    }
    const done = await waitForStatus(svc, job.id, 'failed', 3000);
    assert.equal(done.attempts, 4);
    assert.equal(done.next_attempt_at, null);
    const attempts = await attemptsOf(svc, job.id);
    assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3, 4]);
  });

  it('honours Retry-After in seconds on a 429', async () => {
    const t0 = clock.now();
    const job = await createJob(svc, jobBody(`${rx.url}/slowdown`, { retry: { max_attempts: 2, base_delay_ms: 10 } }));
    const j = await waitForStatus(svc, job.id, 'retrying', 3000);
    assert.equal(Date.parse(j.next_attempt_at as string), t0 + 120_000);
    clock.advance(119_000);
    await sleep(100);
    assert.equal(hits(job.id), 1);
    clock.advance(1000);
    await eventually(async () => hits(job.id) === 2, 3000);
  });

  it('honours Retry-After as an HTTP date on a 503, capped at RETRY_AFTER_MAX_SECONDS', async () => {
    const t0 = clock.now();
    const job = await createJob(svc, jobBody(`${rx.url}/unavailable-date`, { retry: { max_attempts: 2, base_delay_ms: 10 } }));
    const j = await waitForStatus(svc, job.id, 'retrying', 3000);
    // the date asks for ~2 h; the default cap is 3600 s
    assert.equal(Date.parse(j.next_attempt_at as string), t0 + 3_600_000);
  });

  it('honours Retry-After as an HTTP date below the cap, to the millisecond', async () => {
    // HTTP dates have whole seconds: start on one, so the date the receiver sends is exact
    clock.set(Math.ceil(clock.now() / 1000) * 1000 + 1000);
    const t0 = clock.now();
    const job = await createJob(svc, jobBody(`${rx.url}/unavailable-soon`, { retry: { max_attempts: 2, base_delay_ms: 10 } }));
    const j = await waitForStatus(svc, job.id, 'retrying', 3000);
    assert.equal(Date.parse(j.next_attempt_at as string), t0 + 600_000);
    clock.advance(599_999);
    await sleep(100);
    assert.equal(hits(job.id), 1, 'not a millisecond early');
    clock.advance(1);
    await eventually(async () => hits(job.id) === 2, 3000);
  });
});

describe('a job held ahead at shutdown', () => {
  it('goes back to the store with its run_at, and the next start runs it then', async () => {
    const rx = await startReceiver((_req, res) => {
      res.writeHead(200);
      res.end('ok');
    });
    const first = await startTestService();
    let second: TestService | null = null;
    try {
      const job = await createJob(first, jobBody(`${rx.url}/ok`, { delay_ms: 1500 }));
      assert.equal(first.engine.stats().ahead, 1);
      const runAt = Date.parse(job.run_at as string);
      await first.stop(1000);
      const row = storeRow(first, job.id);
      assert.deepEqual(row, { lease_owner: null, status: 'scheduled', due_at: runAt }, 'released, still due at its run_at');
      second = await startTestService({}, {}, first.dir);
      await eventually(async () => rx.requests.some((r) => r.headers['webhook-id'] === job.id), 5000);
      const delivered = rx.requests.find((r) => r.headers['webhook-id'] === job.id);
      assert.ok(delivered);
      assert.ok(delivered.at >= runAt, `delivered at ${delivered.at}, before its run_at ${runAt}`);
    } finally {
      await second?.cleanup();
      await first.cleanup();
      await rx.close();
    }
  });
});
