// The whole service with SQLITE_THREAD=true: jobs are created, delivered, retried and recorded the same way.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startReceiver } from '../support/receiver.js';
import { jobBody, startTestService } from '../support/service.js';
import { attemptsOf, createJob, waitForStatus } from '../support/jobs.js';

describe('service with the store on a worker thread', () => {
  it('delivers, retries and records attempts as with the store inline', async () => {
    let calls = 0;
    const rx = await startReceiver((_req, res) => {
      res.writeHead(++calls === 1 ? 503 : 200);
      res.end();
    });
    const svc = await startTestService({ SQLITE_THREAD: 'true' });
    try {
      const job = await createJob(svc, jobBody(`${rx.url}/hook`, { retry: { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 10 } }));
      const done = await waitForStatus(svc, job.id, 'success');
      assert.equal(done.attempts, 2);
      const attempts = await attemptsOf(svc, job.id);
      assert.deepEqual(attempts.map((a) => a.status_code), [503, 200]);
      const again = await svc.post('/v1/jobs', jobBody(`${rx.url}/hook`, { retry: { max_attempts: 3, base_delay_ms: 10, max_delay_ms: 10 } }));
      assert.equal(again.status, 200, 'the durable dedupe index answers through the thread too');
      assert.equal((await svc.get('/readyz')).status, 200);
    } finally {
      await svc.cleanup();
      await rx.close();
    }
  });
});
