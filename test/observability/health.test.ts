// /healthz and /readyz over HTTP: live while the process lives, ready only while it can do work.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { startReceiver } from '../support/receiver.js';
import { eventually, jobBody, startTestService } from '../support/service.js';
import { gate } from './scrape.js';

interface Health {
  status: string;
  checks?: Record<string, string>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function health(url: string, path: string): Promise<{ code: number; body: Health }> {
  const res = await fetch(url + path);
  return { code: res.status, body: (await res.json()) as Health };
}

describe('health checks', () => {
  it('answers /healthz 200 and /readyz 200 once the store is open and the engine runs', async () => {
    const svc = await startTestService();
    cleanups.push(() => svc.cleanup());
    assert.deepEqual(await health(svc.url, '/healthz'), { code: 200, body: { status: 'ok' } });
    const ready = await health(svc.url, '/readyz');
    assert.equal(ready.code, 200);
    assert.deepEqual(ready.body, { status: 'ready', checks: { phase: 'ready', engine: 'running', store: 'ok' } });
  });

  it('turns /readyz 503 as soon as shutdown starts, while an attempt is still in flight, and keeps /healthz 200', async () => {
    const held = gate();
    const rx = await startReceiver(async (_req, res) => {
      await held.wait;
      res.writeHead(200);
      res.end();
    });
    cleanups.push(async () => {
      held.open();
      await rx.close();
    });
    const svc = await startTestService();
    cleanups.push(() => svc.cleanup());
    assert.equal((await svc.post('/v1/jobs', jobBody(`${rx.url}/slow`))).status, 201);
    await rx.waitFor(1);

    const stopped = svc.stop(10_000);
    const during = await eventually(async () => {
      const r = await health(svc.url, '/readyz');
      return r.code === 503 ? r : null;
    }, 5000, 10);
    assert.equal(during.body.status, 'not_ready');
    assert.equal(during.body.checks?.phase, 'draining');
    assert.equal(during.body.checks?.engine, 'stopped');
    assert.equal((await health(svc.url, '/healthz')).code, 200, 'still alive while draining');
    // new work is refused meanwhile
    assert.equal((await svc.post('/v1/jobs', jobBody(`${rx.url}/late`, { payload: { late: true } }))).status, 503);

    held.open();
    await stopped;
    assert.equal(svc.lifecycle.phase, 'stopped');
    assert.equal(rx.requests.length, 1, 'the attempt in flight finished; nothing was sent after');
  });

  it('turns /readyz 503 when the store fails its check', async () => {
    const svc = await startTestService();
    cleanups.push(() => svc.cleanup());
    await svc.store.close();
    const r = await health(svc.url, '/readyz');
    assert.equal(r.code, 503);
    assert.match(r.body.checks?.store ?? '', /^failing: /);
    assert.equal((await health(svc.url, '/healthz')).code, 200);
  });
});
