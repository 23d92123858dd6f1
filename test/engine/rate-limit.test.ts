// Per-destination rate limits: paced to the limit (by a fake clock), no attempt spent waiting, and
// no head-of-line blocking: a throttled destination never delays the others.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { createJob, getJob } from '../support/jobs.js';
import { FakeClock } from '../support/fake-clock.js';

describe('rate limiting', () => {
  let svc: TestService;
  let a: Receiver;
  let b: Receiver;

  before(async () => {
    a = await startReceiver();
    b = await startReceiver();
    // two workers only: if a job waiting for a token held a worker, B would starve
    svc = await startTestService({ WORKER_CONCURRENCY: '2' });
  });
  after(async () => {
    await svc.cleanup();
    await a.close();
    await b.close();
  });

  it('paces 40 jobs at rps 10 / burst 5 by the clock, while another destination is served with no time passing', async () => {
    // the fake clock drives the pacing: a stalled event loop on a slow machine cannot squeeze or
    // stretch the windows, and each start is stamped with the engine's own time
    const clock = new FakeClock(Date.parse('2026-06-01T12:00:00.000Z'));
    const paced = await startTestService({ WORKER_CONCURRENCY: '2', SCHEDULER_POLL_INTERVAL_MS: '3600000' }, { clock });
    try {
      const starts = new Map<string, number>();
      paced.events.on((e) => {
        if (e.type === 'attempt.started') starts.set(e.job_id, clock.now());
      });
      const t0 = clock.now();
      const aJobs = await Promise.all(
        Array.from({ length: 40 }, (_, i) => createJob(paced, jobBody(`${a.url}/paced`, { payload: { i }, rate_limit: { rps: 10, burst: 5 } }))),
      );
      const bJobs = await Promise.all(Array.from({ length: 10 }, (_, i) => createJob(paced, jobBody(`${b.url}/paced`, { payload: { i } }))));
      const bIds = new Set(bJobs.map((j) => j.id));
      await eventually(async () => bJobs.every((j) => starts.has(j.id)), 5000);
      assert.equal(clock.now(), t0, 'the other destination was served without the clock moving');
      assert.equal([...starts.keys()].filter((id) => !bIds.has(id)).length, 5, 'the throttled one got its burst only');

      // move time 50 ms at a time (the engine's timers fire in order) until every job has started
      const aIds = aJobs.map((j) => j.id);
      for (let step = 0; step < 200 && !aIds.every((id) => starts.has(id)); step++) {
        clock.advance(50);
        await new Promise((r) => setTimeout(r, 5));
      }
      await eventually(async () => aIds.every((id) => starts.has(id)), 5000);
      const times = aIds.map((id) => (starts.get(id) as number) - t0).sort((x, y) => x - y);
      assert.ok((times[39] as number) >= 3500, `40th start at ${times[39]} ms: (40 - 5) / 10 s at the earliest`);
      // a token bucket allows at most burst + rps * t starts in any window of t seconds: exactly, on this clock
      for (let i = 0; i < times.length; i++) {
        for (let j = i + 1; j < times.length; j++) {
          const count = j - i + 1;
          const seconds = ((times[j] as number) - (times[i] as number)) / 1000;
          assert.ok(count <= 5 + 10 * seconds + 1e-9, `${count} starts within ${seconds} s`);
        }
      }
      await eventually(async () => {
        for (const j of aJobs) {
          const done = await getJob(paced, j.id);
          if (done.status !== 'success') return false;
          assert.equal(done.attempts, 1, 'waiting for a token costs no attempt');
        }
        return true;
      }, 5000);
    } finally {
      await paced.cleanup();
    }
  });

  it('keeps separate budgets per tenant for the same destination', async () => {
    const before = a.requests.length;
    const t0 = Date.now();
    await Promise.all(
      ['t1', 't2', 't3'].flatMap((tenant) =>
        Array.from({ length: 3 }, (_, i) =>
          createJob(svc, jobBody(`${a.url}/tenants`, { tenant_id: tenant, payload: { i, tenant }, rate_limit: { rps: 1, burst: 3 } })),
        ),
      ),
    );
    await a.waitFor(before + 9, 3000);
    assert.ok(Date.now() - t0 < 3000, 'each tenant has its own burst of 3');
  });
});
