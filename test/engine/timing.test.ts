// Timing rules, driven by a fake clock: a job runs at its time (not at the next poll), each
// backoff is what the policy says, and Retry-After is honoured.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeClock } from '../support/fake-clock.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { attemptsOf, createJob, getJob, waitForStatus } from '../support/jobs.js';

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
        res.writeHead(503, { 'retry-after': new Date(Date.now() + 7_200_000).toUTCString() });
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

  it('waits out each backoff exactly as the retry policy computes it', async () => {
    const t0 = clock.now();
    const job = await createJob(svc, jobBody(`${rx.url}/fail`, { retry: { max_attempts: 4, base_delay_ms: 1000, max_delay_ms: 3000 } }));
    // with random() = 0.5 the delay after attempt n is 0.75 * min(3000, 1000 * 2^(n-1))
    const expected = [750, 1500, 2250];
    let at = t0;
    for (let n = 1; n <= 3; n++) {
      const j = await waitForStatus(svc, job.id, 'retrying', 3000);
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
});
