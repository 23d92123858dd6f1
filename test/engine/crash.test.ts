// Crash safety and graceful shutdown, with PulseGate as a real child process and a real SQLite file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { spawnService } from '../support/process.js';
import { eventually, jobBody } from '../support/service.js';

async function createMany(url: string, target: string, n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, async (_, k) => {
        const res = await fetch(`${url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(jobBody(`${target}/hook`, { payload: { tag, i: i + k }, retry: { max_attempts: 10, base_delay_ms: 50, max_delay_ms: 200 } })),
        });
        assert.equal(res.status, 201);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    ids.push(...batch);
  }
  return ids;
}

describe('crash safety', () => {
  let dir: string;
  let rx: Receiver;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pulsegate-crash-'));
    rx = await startReceiver(async (_req, res) => {
      await sleep(2);
      res.writeHead(200);
      res.end();
    });
  });
  after(async () => {
    await rx.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every accepted job at least once after a SIGKILL in the middle of 500 deliveries', async () => {
    const env = { DATABASE_PATH: join(dir, 'kill.db'), WORKER_CONCURRENCY: '8', SQLITE_SYNCHRONOUS: 'FULL' };
    const first = await spawnService(env);
    const ids = await createMany(first.url, rx.url, 500, 'kill');
    // kill it while deliveries are in progress
    await eventually(async () => rx.requests.length >= 100, 15_000, 1);
    first.child.kill('SIGKILL');
    const { signal } = await first.exited;
    assert.equal(signal, 'SIGKILL');
    const deliveredBeforeKill = new Set(rx.requests.map((r) => r.headers['webhook-id']));
    assert.ok(deliveredBeforeKill.size < 500, `the kill came mid-way (${deliveredBeforeKill.size} delivered)`);

    const second = await spawnService(env);
    try {
      await eventually(async () => {
        const seen = new Set(rx.requests.map((r) => r.headers['webhook-id']));
        return ids.every((id) => seen.has(id));
      }, 30_000, 50);
      // and the store agrees: every job ends in success
      await eventually(async () => {
        const res = await fetch(`${second.url}/v1/jobs?tenant_id=demo&status=success&limit=1000`);
        const page = (await res.json()) as { data: unknown[] };
        return page.data.length === 500;
      }, 15_000);
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  it('on SIGTERM refuses new jobs, finishes in-flight attempts, exits 0 and loses nothing', async () => {
    const slow = await startReceiver(async (_req, res) => {
      await sleep(300);
      res.writeHead(200);
      res.end();
    });
    const env = { DATABASE_PATH: join(dir, 'term.db'), WORKER_CONCURRENCY: '5', SHUTDOWN_TIMEOUT_MS: '10000' };
    try {
      const svc = await spawnService(env);
      const ids = await createMany(svc.url, slow.url, 40, 'term');
      await eventually(async () => slow.requests.length >= 1, 5000, 5);
      svc.child.kill('SIGTERM');
      // while draining: not ready, and new jobs are refused with 503 overloaded
      const ready = await eventually(async () => {
        const r = await fetch(`${svc.url}/readyz`);
        return r.status === 503 ? r : null;
      }, 3000, 5);
      assert.equal(ready.status, 503);
      const refused = await fetch(`${svc.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(jobBody(`${slow.url}/late`)),
      });
      assert.equal(refused.status, 503);
      assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'overloaded');
      const { code } = await svc.exited;
      assert.equal(code, 0, 'clean exit');
      const inFlightFinished = svc.logs.find((l) => l.msg === 'drained') as { abandoned: number } | undefined;
      assert.equal(inFlightFinished?.abandoned, 0, 'in-flight attempts finished within the timeout');

      // restart: whatever was not delivered before the stop is delivered now
      const again = await spawnService(env);
      try {
        await eventually(async () => {
          const seen = new Set(slow.requests.map((r) => r.headers['webhook-id']));
          return ids.every((id) => seen.has(id));
        }, 30_000, 50);
        const res = await fetch(`${again.url}/v1/jobs?tenant_id=demo&limit=1000`);
        const page = (await res.json()) as { data: { status: string }[] };
        assert.equal(page.data.length, 40);
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
    } finally {
      await slow.close();
    }
  });

  it('on SIGTERM with attempts outlasting SHUTDOWN_TIMEOUT_MS: abandons them, exits 0, and the next start delivers them again', async () => {
    // the first attempt of each job hangs; later ones are answered
    const firstSeen = new Set<string>();
    const stuck = await startReceiver(async (req, res) => {
      const id = String(req.headers['webhook-id']);
      if (!firstSeen.has(id)) {
        firstSeen.add(id);
        return; // never answered: the drain gives up on it
      }
      res.writeHead(200);
      res.end();
    });
    const env = { DATABASE_PATH: join(dir, 'drain.db'), SHUTDOWN_TIMEOUT_MS: '300' };
    try {
      const svc = await spawnService(env);
      const ids = await createMany(svc.url, stuck.url, 3, 'drain');
      await eventually(async () => stuck.requests.length >= 3, 5000, 5);
      svc.child.kill('SIGTERM');
      const { code } = await svc.exited;
      assert.equal(code, 0, 'clean exit even with attempts still out');
      const drained = svc.logs.find((l) => l.msg === 'drained') as { abandoned: number; released: number } | undefined;
      assert.equal(drained?.abandoned, 3, 'the three hung attempts were abandoned at the timeout');

      const again = await spawnService(env);
      try {
        await eventually(async () => {
          const res = await fetch(`${again.url}/v1/jobs?tenant_id=demo&status=success&limit=100`);
          const page = (await res.json()) as { data: { id: string; attempts: number }[] };
          return ids.every((id) => page.data.some((j) => j.id === id));
        }, 15_000, 50);
        for (const id of ids) {
          assert.equal(stuck.requests.filter((r) => r.headers['webhook-id'] === id).length, 2, 'delivered again after the restart');
          const attempts = (await (await fetch(`${again.url}/v1/jobs/${id}/attempts`)).json()) as { data: unknown[] };
          assert.equal(attempts.data.length, 1, 'an abandoned attempt leaves no result: only the one that succeeded is recorded');
        }
      } finally {
        again.child.kill('SIGTERM');
        await again.exited;
      }
    } finally {
      await stuck.close();
    }
  });

  it('keeps every 201 across a SIGKILL during concurrent creates: each job is there and its Idempotency-Key still replays', async () => {
    const env = { DATABASE_PATH: join(dir, 'creates.db'), SQLITE_SYNCHRONOUS: 'FULL' };
    const svc = await spawnService(env);
    const acked = new Map<string, string>(); // idempotency key -> job id
    let stop = false;
    const clients = Array.from({ length: 16 }, async (_, c) => {
      for (let i = 0; !stop && i < 2000; i++) {
        const key = `k-${c}-${i}`;
        try {
          const res = await fetch(`${svc.url}/v1/jobs`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            body: JSON.stringify(jobBody('http://127.0.0.1:9/never', { payload: { c, i }, delay_ms: 3_600_000 })),
          });
          if (res.status === 201) acked.set(key, ((await res.json()) as { id: string }).id);
        } catch {
          return; // the process is gone
        }
      }
    });
    await eventually(async () => acked.size >= 300, 15_000, 5);
    svc.child.kill('SIGKILL');
    stop = true;
    await Promise.all(clients);
    await svc.exited;

    const again = await spawnService(env);
    try {
      for (const [key, id] of acked) {
        const got = await fetch(`${again.url}/v1/jobs/${id}`);
        assert.equal(got.status, 200, `acknowledged job ${id} survived`);
        const [c, i] = key.split('-').slice(1).map(Number);
        const replay = await fetch(`${again.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify(jobBody('http://127.0.0.1:9/never', { payload: { c, i }, delay_ms: 3_600_000 })),
        });
        assert.equal(replay.status, 200, 'replayed, not created again');
        assert.equal(((await replay.json()) as { id: string }).id, id);
        // the same content without the key is deduplicated to it as well
        const dup = await fetch(`${again.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(jobBody('http://127.0.0.1:9/never', { payload: { c, i }, delay_ms: 3_600_000 })),
        });
        assert.equal(dup.status, 200);
        assert.equal(dup.headers.get('deduplicated'), 'true');
      }
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  });
});
