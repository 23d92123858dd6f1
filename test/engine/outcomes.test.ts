// Every outcome class of a delivery, over real HTTP to a real receiver.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';
import { attemptsOf, createJob, waitForStatus } from '../support/jobs.js';

describe('delivery outcomes', () => {
  let svc: TestService;
  let rx: Receiver;

  before(async () => {
    rx = await startReceiver((req, res) => {
      const m = /\/status\/(\d+)/.exec(req.url);
      const code = m ? Number(m[1]) : 200;
      if (code >= 300 && code < 400) res.setHeader('location', `${rx.url}/redirected`);
      if (req.url.includes('big')) {
        res.writeHead(code);
        res.end('x'.repeat(20_000));
        return;
      }
      if (req.url.includes('hang')) return; // never answers
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(`answer ${code}`);
    });
    // every job here goes to one receiver that fails on purpose: the circuit (tested in circuit tests) stays out of the way
    svc = await startTestService({ CIRCUIT_FAILURE_THRESHOLD: '1000' });
  });
  after(async () => {
    await svc.cleanup();
    await rx.close();
  });

  const noRetry = { retry: { max_attempts: 1, base_delay_ms: 0 } };

  it('marks a job success on any 2xx and keeps the response body', async () => {
    for (const code of [200, 201, 202, 204, 299]) {
      const job = await createJob(svc, jobBody(`${rx.url}/status/${code}`, noRetry));
      const done = await waitForStatus(svc, job.id, 'success');
      assert.equal(done.last_status_code, code);
      assert.equal(done.attempts, 1);
      assert.ok(done.completed_at);
      const [a] = await attemptsOf(svc, job.id);
      assert.equal(a?.outcome, 'success');
      assert.equal(a?.error_kind, null);
      assert.equal(a?.response_body, code === 204 ? null : `answer ${code}`);
    }
  });

  it('sends the payload, method, content type, user agent, custom headers and a stable webhook-id', async () => {
    const before = rx.requests.length;
    const job = await createJob(
      svc,
      jobBody(`${rx.url}/status/200?echo`, {
        payload: { a: [1, 2, { b: 'ü' }] },
        destination: { url: `${rx.url}/status/200?echo`, method: 'PUT', headers: { 'X-Custom': 'yes', Authorization: 'Bearer abc' } },
      }),
    );
    await waitForStatus(svc, job.id, 'success');
    const req = rx.requests.slice(before).find((r) => r.headers['webhook-id'] === job.id);
    assert.ok(req, 'the receiver got the job');
    assert.equal(req.method, 'PUT');
    assert.deepEqual(JSON.parse(req.body), { a: [1, 2, { b: 'ü' }] });
    assert.equal(req.headers['content-type'], 'application/json');
    assert.match(String(req.headers['user-agent']), /^PulseGate\/\d+\.\d+\.\d+/);
    assert.equal(req.headers['x-custom'], 'yes');
    assert.equal(req.headers.authorization, 'Bearer abc');
    assert.match(String(req.headers['webhook-timestamp']), /^\d{10}$/);
  });

  it('fails permanently on a 4xx other than 408, 425 and 429, without retrying', async () => {
    for (const code of [400, 401, 404, 410, 422]) {
      const job = await createJob(svc, jobBody(`${rx.url}/status/${code}`, { retry: { max_attempts: 5, base_delay_ms: 0 } }));
      const done = await waitForStatus(svc, job.id, 'failed');
      assert.equal(done.attempts, 1, `HTTP ${code} must not be retried`);
      assert.equal(done.last_status_code, code);
      const [a] = await attemptsOf(svc, job.id);
      assert.equal(a?.outcome, 'permanent_error');
      assert.equal(a?.error_kind, 'http');
    }
  });

  it('retries 408, 425, 429 and 5xx until attempts run out, then parks the job in the DLQ', async () => {
    for (const code of [408, 425, 429, 500, 502, 503]) {
      const job = await createJob(svc, jobBody(`${rx.url}/status/${code}`, { retry: { max_attempts: 3, base_delay_ms: 0, max_delay_ms: 0 } }));
      const done = await waitForStatus(svc, job.id, 'failed');
      assert.equal(done.attempts, 3, `HTTP ${code} is retried`);
      assert.equal(done.last_status_code, code);
      const attempts = await attemptsOf(svc, job.id);
      assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3]);
      assert.ok(attempts.every((a) => a.outcome === 'retryable_error'));
      const dlq = (await (await svc.get('/v1/dlq?limit=1000')).json()) as { data: { id: string }[] };
      assert.ok(dlq.data.some((j) => j.id === job.id), 'failed job is in the DLQ');
    }
  });

  it('never follows a redirect: 3xx is a permanent error', async () => {
    const before = rx.requests.filter((r) => r.url === '/redirected').length;
    const job = await createJob(svc, jobBody(`${rx.url}/status/302`, { retry: { max_attempts: 3, base_delay_ms: 0 } }));
    const done = await waitForStatus(svc, job.id, 'failed');
    assert.equal(done.attempts, 1);
    assert.equal(done.last_status_code, 302);
    assert.equal(rx.requests.filter((r) => r.url === '/redirected').length, before, 'redirect target never hit');
  });

  it('keeps only the first 4 KiB of a response body', async () => {
    const job = await createJob(svc, jobBody(`${rx.url}/status/500/big`, noRetry));
    await waitForStatus(svc, job.id, 'failed');
    const [a] = await attemptsOf(svc, job.id);
    assert.equal((a?.response_body as string).length, 4096);
  });

  it('times out a receiver that never answers, as a retryable timeout', async () => {
    const job = await createJob(svc, jobBody(`${rx.url}/hang`, { ...noRetry, destination: { url: `${rx.url}/hang`, timeout_ms: 300 } }));
    const done = await waitForStatus(svc, job.id, 'failed', 5000);
    const [a] = await attemptsOf(svc, job.id);
    assert.equal(a?.outcome, 'retryable_error');
    assert.equal(a?.error_kind, 'timeout');
    assert.ok((a?.duration_ms as number) >= 250 && (a?.duration_ms as number) < 3000, `duration ${a?.duration_ms}`);
    assert.equal(done.last_status_code, null);
  });

  it('records a refused connection as a retryable connect error', async () => {
    const closed = await startReceiver();
    const url = closed.url;
    await closed.close();
    const job = await createJob(svc, jobBody(url, noRetry));
    await waitForStatus(svc, job.id, 'failed');
    const [a] = await attemptsOf(svc, job.id);
    assert.equal(a?.outcome, 'retryable_error');
    assert.equal(a?.error_kind, 'connect');
  });
});
