// The engine on its own thread (ENGINE_THREAD, on by default; see DESIGN "Two threads"): jobs
// created one by one and in batches are delivered once each; cancel, retry, destinations, metrics
// and the drain on stop reach across the thread, in process and in a real process.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService, type TestService } from '../support/service.js';
import { createJob, waitForStatus } from '../support/jobs.js';
import { spawnService } from '../support/process.js';
import { ENGINE_SEMI_SPACE_MB } from '../../src/engine/thread/engine-thread.js';

describe('the engine on its own thread', () => {
  let svc: TestService;
  let rx: Receiver;
  const held: ServerResponse[] = [];
  let seq = 0;
  const body = (path: string, extra: Record<string, unknown> = {}) => jobBody(`${rx.url}${path}`, { payload: { n: seq++ }, ...extra });
  const hits = (id: string) => rx.requests.filter((r) => r.headers['webhook-id'] === id).length;
  const metric = async (name: string) => {
    const text = await (await svc.get('/metrics')).text();
    return text.split('\n').filter((l) => l.startsWith(name)).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  };

  before(async () => {
    // /hold… is never answered (until the end), /fail… is refused for good, the rest succeed
    rx = await startReceiver((req, res) => void (req.url.startsWith('/hold') ? held.push(res) : res.writeHead(req.url.startsWith('/fail') ? 400 : 200).end()));
    svc = await startTestService({ ENGINE_THREAD: 'true', SIGNING_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}` });
  });
  after(() => Promise.all([svc.cleanup(), rx.close(), ...held.map((r) => r.destroy())]));

  it('runs the engine off the main thread, holding the jobs it creates under its own lease', async () => {
    const job = await createJob(svc, body('/ok', { delay_ms: 1500 }));
    const db = new Database(svc.dbPath, { readonly: true });
    try {
      const row = db.prepare('SELECT lease_owner FROM jobs WHERE id = ?').get(job.id) as { lease_owner: string };
      assert.equal(row.lease_owner, svc.engine.owner, 'written already held by the engine thread');
    } finally {
      db.close();
    }
    // the two connections share SQLITE_CACHE_MB (4): the main thread's has half
    assert.equal((svc.store as unknown as { settings(): { cache_size: number } }).settings().cache_size, -2048);
    await eventually(async () => svc.engine.stats().ahead === 1, 2000);
    await waitForStatus(svc, job.id, 'success');
    assert.equal(hits(job.id), 1);
    const sent = rx.requests.find((r) => r.headers['webhook-id'] === job.id);
    assert.match(String(sent?.headers['webhook-signature']), /^v1,/, 'signed on the engine thread with the configured secret');
  });

  it('delivers jobs created one by one and in a batch exactly once each, and counts them in /metrics', async () => {
    const before = await metric('pulsegate_attempts_total');
    const singles = await Promise.all(Array.from({ length: 20 }, () => createJob(svc, body('/ok'))));
    const res = await svc.post('/v1/jobs/batch', { jobs: Array.from({ length: 200 }, () => body('/ok')) });
    assert.equal(res.status, 200);
    const batch = ((await res.json()) as { data: { job?: { id: string } }[] }).data.map((r) => r.job?.id as string);
    assert.equal(batch.length, 200);
    const ids = [...singles.map((j) => j.id), ...batch];
    await eventually(async () => ids.every((id) => hits(id) >= 1), 15_000);
    for (const id of ids) assert.equal(hits(id), 1, `${id} delivered once`);
    await eventually(async () => (await metric('pulsegate_attempts_total')) - before === ids.length, 5000);
    await eventually(async () => svc.engine.stats().queued === 0 && svc.engine.stats().inFlight === 0, 5000);
    // the engine isolate's heap, in /metrics beside the main thread's (that its young generation is
    // held to ENGINE_SEMI_SPACE_MB is shown by test/unit/spawn-worker.test.ts, where a worker
    // without it grows larger; this light load need not grow one)
    const heap = async (kind: string) => metric(`pulsegate_engine_thread_heap_bytes{kind="${kind}"}`);
    const [committed, used, young] = [await heap('committed'), await heap('used'), await heap('young')];
    assert.ok(used > 1e6 && used <= committed, `engine heap: ${used} used of ${committed} committed`);
    // (two semi-spaces; Node 24's V8 may count one more 256 KiB page, as spawn-worker.test.ts saw)
    assert.ok(young > 0 && young <= 2 * ENGINE_SEMI_SPACE_MB * 2 ** 20 + 2 ** 18, `young generation ${young} bytes`);
  });

  it('cancels a job waiting in memory for a rate-limit token, and retries a failed one', async () => {
    const limit = { rate_limit: { rps: 0.5, burst: 1 } };
    const first = await createJob(svc, body('/ok', limit));
    const second = await createJob(svc, body('/ok', limit));
    await waitForStatus(svc, first.id, 'success');
    await eventually(async () => svc.engine.stats().parked === 1, 2000);
    assert.equal(((await (await svc.post(`/v1/jobs/${second.id}/cancel`, {})).json()) as { status: string }).status, 'cancelled');
    await eventually(async () => svc.engine.stats().queued === 0, 2000);
    assert.equal(hits(second.id), 0);

    const failing = await createJob(svc, body('/fail'));
    await waitForStatus(svc, failing.id, 'failed');
    assert.equal((await svc.post(`/v1/jobs/${failing.id}/retry`, {})).status, 200);
    await eventually(async () => hits(failing.id) === 2, 5000);
  });

  it('lists destinations from the engine thread and resets one by hand', async () => {
    const list = (await (await svc.get('/v1/destinations')).json()) as { data: { id: string; origin: string }[] };
    const lane = list.data.find((d) => d.origin === rx.url);
    assert.ok(lane, 'the receiver is a known destination');
    assert.equal((await svc.post(`/v1/destinations/${lane.id}/reset`, {})).status, 200);
    assert.equal((await svc.post('/v1/destinations/dW5rbm93bg/reset', {})).status, 404);
    assert.equal(await metric('pulsegate_circuits_open'), 0);
  });

  it('gives an attempt still in flight back to the store when the drain times out', async () => {
    const job = await createJob(svc, body('/hold'));
    await eventually(async () => hits(job.id) === 1, 5000);
    await svc.stop(200);
    const db = new Database(svc.dbPath, { readonly: true });
    try {
      const row = db.prepare('SELECT status, lease_owner FROM jobs WHERE id = ?').get(job.id) as { status: string; lease_owner: string | null };
      assert.equal(row.lease_owner, null, 'released, to be delivered again');
      assert.equal(row.status, 'queued');
    } finally {
      db.close();
    }
    assert.equal(svc.lifecycle.phase, 'stopped');
  });
});

describe('the engine thread in a real process (npm start with ENGINE_THREAD=true)', () => {
  it('logs one whole JSON line per attempt, written by the main thread between its own lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulsegate-thread-'));
    const rx = await startReceiver();
    const svc = await spawnService({ DATABASE_PATH: join(dir, 'p.db'), ENGINE_THREAD: 'true' });
    try {
      const created = await Promise.all(
        Array.from({ length: 100 }, async (_, n) => {
          const res = await fetch(`${svc.url}/v1/jobs`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(jobBody(`${rx.url}/ok`, { payload: { n } })),
          });
          assert.equal(res.status, 201);
          return ((await res.json()) as { id: string }).id;
        }),
      );
      const finished = () => new Set(svc.logs.filter((l) => l.msg === 'attempt finished').map((l) => l.job_id));
      await eventually(async () => created.every((id) => finished().has(id)), 15_000);
      assert.equal(svc.logs.filter((l) => l.msg === 'attempt finished').length, 100, 'one line per attempt, none torn');
    } finally {
      svc.child.kill('SIGTERM');
      await svc.exited;
      await rx.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
