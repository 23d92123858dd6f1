// Retention: terminal jobs older than JOB_RETENTION_DAYS are pruned with their attempts; others stay.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeClock } from '../support/fake-clock.js';
import { startReceiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService } from '../support/service.js';
import { createJob, waitForStatus } from '../support/jobs.js';

describe('retention', () => {
  it('prunes terminal jobs past JOB_RETENTION_DAYS and keeps the rest', async () => {
    const rx = await startReceiver();
    const clock = new FakeClock(Date.parse('2026-03-01T00:00:00Z'));
    const svc = await startTestService({ JOB_RETENTION_DAYS: '30' }, { clock });
    try {
      const done = await createJob(svc, jobBody(`${rx.url}/a`, { payload: { n: 1 } }));
      await waitForStatus(svc, done.id, 'success');
      const later = await createJob(svc, jobBody(`${rx.url}/b`, { payload: { n: 2 }, delay_ms: 90 * 86_400_000 }));
      clock.advance(30 * 86_400_000 + 1000);
      await sleep(50);
      clock.advance(60_000);
      await eventually(async () => (await svc.get(`/v1/jobs/${done.id}`)).status === 404, 5000);
      assert.equal((await svc.get(`/v1/jobs/${done.id}/attempts`)).status, 404);
      const kept = await svc.get(`/v1/jobs/${later.id}`);
      assert.equal(kept.status, 200, 'a job that is not terminal is never pruned');
    } finally {
      await svc.cleanup();
      await rx.close();
    }
  });
});
