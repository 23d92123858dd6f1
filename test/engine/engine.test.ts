// The engine's loop (fill → take → start → finish) with a fake clock, a stub deliver and a real
// SQLite file: isolation between destinations and tenants, and the circuit, without sleeping.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { DeliveryResult } from '../../src/domain/attempt.js';
import type { DeliveryRequest } from '../../src/delivery/dispatcher.js';
import { Engine, type EngineOptions } from '../../src/engine/engine.js';
import { EventBus, type PulseEvent } from '../../src/observability/events.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { FakeClock } from '../support/fake-clock.js';
import { newJob } from '../store/store-contract.js';

const OK: DeliveryResult = { outcome: 'success', status_code: 200, response_body: null };
const REFUSED: DeliveryResult = { outcome: 'retryable_error', error_kind: 'connect', status_code: null, error: 'ECONNREFUSED', response_body: null, retry_after_ms: null };

interface Call {
  req: DeliveryRequest;
  answer: (r: DeliveryResult) => void;
}

/** A deliver whose calls wait until the test answers them (or `auto` answers at once). */
function stubDeliver(auto?: (req: DeliveryRequest) => DeliveryResult | null) {
  const calls: Call[] = [];
  const deliver = (req: DeliveryRequest) =>
    new Promise<DeliveryResult>((resolve) => {
      const now = auto?.(req) ?? null;
      if (now) resolve(now);
      calls.push({ req, answer: resolve });
    });
  return { calls, deliver };
}

const turns = async (n = 20) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('engine (fake clock, stub deliver)', () => {
  let dir = '';
  let store: Store | null = null;
  let engine: Engine | null = null;
  let clock: FakeClock | null = null;

  /** Drains with a timeout of 0 on the fake clock (its timer fires only when the clock moves). */
  async function drainNow(e: Engine) {
    let done = false;
    const p = e.drain(0).then((r) => ((done = true), r));
    for (let i = 0; i < 100 && !done; i++) {
      clock?.advance(1);
      await turns(2);
    }
    return p;
  }

  afterEach(async () => {
    if (engine) await drainNow(engine);
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    engine = null;
    store = null;
  });

  async function setup(deliver: EngineOptions['deliver'], o: Partial<EngineOptions> = {}) {
    dir = mkdtempSync(join(tmpdir(), 'pulsegate-engine-'));
    clock = new FakeClock(Date.parse('2026-03-01T00:00:00Z'));
    const c = clock;
    store = openSqliteStore({ path: join(dir, 'e.db'), synchronous: 'NORMAL', cacheSizeMb: 8 });
    await store.migrate();
    const events = new EventBus();
    const seen: PulseEvent[] = [];
    events.on((e) => seen.push(e));
    engine = new Engine({
      store,
      clock,
      events,
      deliver,
      capacity: 1000,
      concurrency: 8,
      destinationMaxInFlight: 2,
      circuit: { failureThreshold: 3, cooldownMs: 1000, cooldownMaxMs: 4000 },
      leaseMs: 30_000,
      pollIntervalMs: 60_000,
      retryAfterMaxMs: 60_000,
      recoverAllOnStart: true,
      ...o,
    });
    await engine.start();
    const create = async (n: number, tenant: string, url: string, over = {}) => {
      const jobs = Array.from({ length: n }, () => newJob(c.now(), { tenant_id: tenant, destination: { url, method: 'POST', timeout_ms: 1000, headers: {} }, ...over }));
      await (store as Store).createJobs(jobs, c.now());
      (engine as Engine).notifyDue(c.now());
      await turns();
      return jobs.map((j) => j.id);
    };
    return { clock: c, store, engine, create, seen };
  }

  it('a destination at its cap holds no worker: another destination starts at once, and waiting spends no attempt', async () => {
    const { calls, deliver } = stubDeliver();
    const { create, engine, store } = await setup(deliver);
    const dead = await create(10, 'acme', 'http://dead.test/hook');
    await create(1, 'acme', 'http://fine.test/hook');
    const to = (host: string) => calls.filter((c) => new URL(c.req.destination.url).host === host).length;
    assert.equal(to('dead.test'), 2, 'DESTINATION_MAX_IN_FLIGHT');
    assert.equal(to('fine.test'), 1, 'served at once');
    assert.equal(engine.stats().inFlight, 3);
    assert.equal(engine.stats().parked, 8);
    const waiting = await store.getJob(dead[9] as string);
    assert.equal(waiting?.attempts, 0);
  });

  it('serves a small tenant in turn when a big one fills the pool', async () => {
    const { calls, deliver } = stubDeliver();
    const { create } = await setup(deliver, { concurrency: 2, destinationMaxInFlight: 100 });
    await create(200, 'big', 'http://a.test/hook');
    await create(1, 'small', 'http://a.test/hook');
    assert.equal(calls.length, 2);
    calls[0]?.answer(OK);
    calls[1]?.answer(OK);
    await turns();
    assert.equal(calls.length, 4);
    assert.ok(
      calls.slice(2).some((c) => c.req.tenant_id === 'small'),
      'tenants take turns: behind 198 jobs of another tenant, one of the next two workers goes to it',
    );
  });

  it('opens the circuit on consecutive failures; waits without attempts; one probe closes it and the backlog flows', async () => {
    let up = false;
    const { calls, deliver } = stubDeliver(() => (up ? OK : REFUSED));
    const { create, clock, store, seen, engine } = await setup(deliver, { destinationMaxInFlight: 1 });
    const ids = await create(8, 'acme', 'http://down.test/hook', { retry: { max_attempts: 10, base_delay_ms: 60_000, max_delay_ms: 60_000 } });
    await turns(60);
    assert.equal(calls.length, 3, 'three failures open it');
    assert.deepEqual(seen.filter((e) => e.type === 'circuit.changed').map((e) => e.type === 'circuit.changed' && e.to), ['open']);
    clock.advance(999);
    await turns();
    assert.equal(calls.length, 3, 'nothing during the cool-down');
    const waiting = await store.getJob(ids[7] as string);
    assert.equal(waiting?.attempts, 0, 'a waiting job spends no attempt');
    clock.advance(1);
    await turns();
    assert.equal(calls.length, 4, 'one probe');
    clock.advance(1999);
    await turns();
    assert.equal(calls.length, 4, 'the cool-down doubled after the failed probe');
    up = true;
    clock.advance(1);
    await turns(60);
    assert.equal(calls.length, 8, 'the probe closed it and the three waiting jobs went');
    assert.deepEqual(
      seen.filter((e) => e.type === 'circuit.changed').map((e) => e.type === 'circuit.changed' && e.to),
      ['open', 'half_open', 'open', 'half_open', 'closed'],
    );
    const dest = engine.destinations('acme')[0];
    assert.equal(dest?.circuit, 'closed');
    assert.equal(dest?.last_error, 'ECONNREFUSED');
  });

  it('gives waiting jobs back at drain and abandons attempts still in flight after the timeout', async () => {
    const { calls, deliver } = stubDeliver();
    const { create, store, engine: e } = await setup(deliver, { destinationMaxInFlight: 1 });
    const ids = await create(3, 'acme', 'http://slow.test/hook');
    assert.equal(calls.length, 1);
    const out = await drainNow(e);
    assert.deepEqual(out, { released: 2, abandoned: 1 });
    for (const id of ids) {
      const j = await store.getJob(id);
      assert.equal(j?.attempts, 0);
      assert.equal(j?.status, 'queued', 'given back, to be delivered again');
    }
    calls[0]?.answer(OK);
    await turns();
    assert.equal((await store.getJob(ids[0] as string))?.attempts, 0, 'the late result of an abandoned attempt is ignored');
    engine = null;
  });
});
