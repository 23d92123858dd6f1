// Per-destination rate limits: paced to the limit, no attempt spent waiting, and no head-of-line
// blocking: a throttled destination never delays the others.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { createJob, getJob } from '../support/jobs.js';

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

  it('paces 40 jobs at rps 10 / burst 5 while another destination is served within a second', async () => {
    const t0 = Date.now();
    const aJobs = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        createJob(svc, jobBody(`${a.url}/hook`, { payload: { i }, rate_limit: { rps: 10, burst: 5 } })),
      ),
    );
    const bJobs = await Promise.all(
      Array.from({ length: 10 }, (_, i) => createJob(svc, jobBody(`${b.url}/hook`, { payload: { i } }))),
    );
    const bCreated = Date.now();
    await b.waitFor(10, 1000);
    assert.ok(Date.now() - bCreated < 1000, 'the other destination is served within a second');
    assert.ok(a.requests.length < 40, 'the throttled destination is still being paced');

    await a.waitFor(40, 10_000);
    const times = a.requests.map((r) => r.at - t0).sort((x, y) => x - y);
    // burst 5 then 10/s: the 40th cannot come before (40 - 5) / 10 s
    assert.ok((times[39] as number) >= 3400, `40th delivery at ${times[39]} ms`);
    // a token bucket allows at most burst + rps * t deliveries in any window of t seconds
    // (one more allowed for the jitter between a send and its arrival at the receiver)
    for (let i = 0; i < times.length; i++) {
      for (let j = i + 1; j < times.length; j++) {
        const count = j - i + 1;
        const seconds = ((times[j] as number) - (times[i] as number)) / 1000;
        assert.ok(count <= 5 + 10 * seconds + 1, `${count} deliveries within ${seconds} s`);
      }
    }
    for (const j of aJobs) {
      const done = await getJob(svc, j.id);
      assert.equal(done.status, 'success');
      assert.equal(done.attempts, 1, 'waiting for a token costs no attempt');
    }
    for (const j of bJobs) assert.equal((await getJob(svc, j.id)).status, 'success');
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
