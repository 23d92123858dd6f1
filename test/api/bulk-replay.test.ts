// Replaying the dead-letter queue with one call, over real HTTP: 500 jobs failed while their
// receiver was down (written to the SQLite file as the engine writes them, so the test does not
// spend 20 s failing them at the rate limit), the receiver comes back, one request retries them
// all, every one is delivered at the destination's rate limit, and the same request repeated with
// its Idempotency-Key replays nothing twice. The service runs as its own process, so the
// receiver's clock (the one the pacing is judged by) is not held up by the service's event loop.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { spawnService, type ServiceProcess } from '../support/process.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually } from '../support/service.js';
import { newJob } from '../store/store-contract.js';
import type { BulkView } from './helpers.js';
import { expectError, type JobView, type PageView } from './helpers.js';

const JOBS = 500;
const RPS = 50;
const BURST = 5;


describe('bulk replay of the dead-letter queue', () => {
  let svc: ServiceProcess;
  let dir: string;
  let rx: Receiver;

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(svc.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  /** Every job of the tenant (at most 1000: one page). */
  const jobs = async (): Promise<JobView[]> => {
    const res = await fetch(`${svc.url}/v1/jobs?tenant_id=demo&limit=1000`);
    assert.equal(res.status, 200);
    const page = (await res.json()) as PageView;
    assert.equal(page.next_cursor, null);
    return page.data;
  };
  const countIn = async (status: string) => (await jobs()).filter((j) => j.status === status).length;

  before(async () => {
    rx = await startReceiver();
    dir = mkdtempSync(join(tmpdir(), 'pulsegate-replay-'));
    const path = join(dir, 'pulsegate.db');
    const store = openSqliteStore({ path, synchronous: 'NORMAL' });
    await store.migrate();
    const now = Date.now();
    const jobs = Array.from({ length: JOBS }, (_, n) =>
      newJob(now, {
        tenant_id: 'demo',
        payload_json: JSON.stringify({ n }),
        destination: { url: `${rx.url}/hook`, method: 'POST', timeout_ms: 5000, headers: {} },
        retry: { max_attempts: 1, base_delay_ms: 1000, max_delay_ms: 30_000 },
        rate_limit: { rps: RPS, burst: BURST },
      }),
    );
    await store.createJobs(jobs, now);
    const claimed = await store.claimDue('seed', now, 30_000, 1000);
    assert.equal(claimed.length, JOBS);
    await store.completeAttempts(
      claimed.map((j) => ({
        owner: 'seed',
        next: { status: 'failed' as const },
        attempt: {
          job_id: j.id, attempt: 1, started_at: now, finished_at: now, duration_ms: 1, outcome: 'retryable_error' as const,
          error_kind: 'connect' as const, status_code: null, error: 'connect ECONNREFUSED', response_body: null,
        },
      })),
      now,
    );
    await store.close();
    svc = await spawnService({ DATABASE_PATH: path, WORKER_CONCURRENCY: '1', LOG_LEVEL: 'info', SQLITE_SYNCHRONOUS: 'NORMAL' });
    assert.equal(await countIn('failed'), JOBS);
  });

  /**
   * Another tenant's jobs (a bucket of their own) to the same origin, so the service's connections
   * to the receiver are open and its code warm when the replay starts: a first burst sent over new
   * connections from a cold process arrives late and bunched with the next deliveries, which the
   * receiver's clock would count as a burst the service never sent.
   */
  async function warmUp(): Promise<void> {
    const before = rx.requests.length;
    await Promise.all(
      Array.from({ length: 16 }, async (_, n) => {
        const res = await post('/v1/jobs', {
          tenant_id: 'warm-up', type: 'warm-up', payload: { n }, destination: { url: `${rx.url}/warm-up` },
        });
        assert.equal(res.status, 201);
      }),
    );
    await rx.waitFor(before + 16, 10_000);
  }
  after(async () => {
    svc.child.kill('SIGTERM');
    await svc.exited;
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const replay = (body: unknown, key?: string) => post('/v1/dlq/retry', body, key ? { 'idempotency-key': key } : {});
  const filter = () => ({ tenant_id: 'demo', destination_origin: rx.url });

  it('answers a dry run with the count and destinations, changing nothing', async () => {
    const res = await replay({ ...filter(), dry_run: true });
    assert.equal(res.status, 200);
    const body = (await res.json()) as BulkView;
    assert.deepEqual(body, { action: 'retry', dry_run: true, jobs: JOBS, destinations: [{ origin: rx.url, jobs: JOBS }], destinations_truncated: false });
    assert.equal(await countIn('failed'), JOBS);
  });

  it('retries every failed job with one call and the receiver gets each once, never faster than its rate limit', async () => {
    await warmUp();
    const already = rx.requests.length;
    const res = await replay(filter(), 'replay-1');
    const text = await res.text();
    assert.equal(res.status, 200, text);
    assert.equal(res.headers.get('idempotent-replayed'), null);
    const body = JSON.parse(text) as BulkView;
    assert.deepEqual(body, { action: 'retry', dry_run: false, jobs: JOBS, destinations: [{ origin: rx.url, jobs: JOBS }], destinations_truncated: false });

    await rx.waitFor(already + JOBS, 90_000);
    await eventually(async () => (await countIn('success')) === JOBS, 10_000, 200);
    const replayed = rx.requests.slice(already);
    assert.equal(replayed.length, JOBS, 'nothing beyond the replay arrived');
    assert.equal(new Set(replayed.map((r) => r.headers['webhook-id'])).size, JOBS, 'each job arrived once');

    // a token bucket allows at most burst + rps * t deliveries in any window of t seconds, and one
    // more for the jitter between a send and its arrival: one worker, so a pause of either process
    // holds back one delivery at most, which then arrives with the ones the refilled bucket allows.
    // Timestamps are taken at the receiver.
    const times = replayed.map((r) => r.at).sort((a, b) => a - b);
    for (let i = 0; i < times.length; i++) {
      for (let j = i + 1; j < times.length; j++) {
        const count = j - i + 1;
        const seconds = ((times[j] as number) - (times[i] as number)) / 1000;
        if (count > BURST + RPS * seconds + 1) assert.fail(`${count} deliveries within ${seconds} s`);
      }
    }
  });

  it('answers the same call with its key with the first result and replays nothing again', async () => {
    const before = await jobs();
    const already = rx.requests.length;
    const res = await replay(filter(), 'replay-1');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('idempotent-replayed'), 'true');
    assert.equal(((await res.json()) as BulkView).jobs, JOBS);
    // a retry would have queued them before the answer: nothing changed, nothing was sent
    assert.deepEqual(await jobs(), before);
    assert.equal(rx.requests.length, already);
  });

  it('refuses the same key with another request: 422 idempotency_key_reused', async () => {
    await expectError(await replay({ ...filter(), limit: 10 }, 'replay-1'), 422, 'idempotency_key_reused');
  });
});
