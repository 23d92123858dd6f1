// The lanes with a fake clock and no store: pacing per (tenant, origin) by slots, tokens and the
// circuit, and the order tenants and destinations are served in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeliveryResult } from '../../src/domain/attempt.js';
import type { CircuitState } from '../../src/engine/circuit.js';
import { held, type Held } from '../../src/engine/held.js';
import { Lanes, type LanesOptions } from '../../src/engine/lanes.js';
import { claimedJob } from '../support/claimed.js';
import { FakeClock } from '../support/fake-clock.js';

const OK: DeliveryResult = { outcome: 'success', status_code: 200, response_body: null };
const DOWN: DeliveryResult = { outcome: 'retryable_error', error_kind: 'connect', status_code: null, error: 'ECONNREFUSED', response_body: null, retry_after_ms: null };

function setup(o: Partial<LanesOptions> = {}) {
  const clock = new FakeClock(0);
  let ready = 0;
  const circuits: { key: string; from: CircuitState; to: CircuitState; released: Held[] }[] = [];
  const lanes = new Lanes({
    clock,
    defaultMaxInFlight: 2,
    circuit: { failureThreshold: 2, cooldownMs: 1000, cooldownMaxMs: 8000 },
    maxParkMs: 2000,
    onReady: () => ready++,
    onCircuit: (lane, from, to, released) => circuits.push({ key: lane.key, from, to, released }),
    ...o,
  });
  const add = (tenant: string, url: string, extra: Parameters<typeof claimedJob>[0] = {}) => {
    const h = held(claimedJob({ tenant, url, ...extra }));
    return { h, outcome: lanes.add(h) };
  };
  const takeAll = () => {
    const out: Held[] = [];
    for (let h = lanes.take(); h; h = lanes.take()) out.push(h);
    return out;
  };
  return { clock, lanes, add, takeAll, circuits, readyCount: () => ready };
}

describe('lanes', () => {
  it('keeps at most max_in_flight attempts out per destination; a finish frees a slot', () => {
    const { lanes, add, takeAll } = setup();
    const jobs = Array.from({ length: 5 }, () => add('a', 'http://slow.test/x').h);
    const first = takeAll();
    assert.deepEqual(first, jobs.slice(0, 2), 'two slots, in order');
    lanes.finished(first[0] as Held, OK, 10);
    assert.deepEqual(takeAll(), [jobs[2]]);
  });

  it('a job may carry its own cap in rate_limit.max_in_flight', () => {
    const { add, takeAll } = setup();
    for (let i = 0; i < 5; i++) add('a', 'http://slow.test/x', { rate_limit: { rps: 1000, burst: 1000, max_in_flight: 4 } });
    assert.equal(takeAll().length, 4);
  });

  it('a full destination never delays another one', () => {
    const { add, takeAll } = setup();
    for (let i = 0; i < 10; i++) add('a', 'http://dead.test/x');
    const other = add('a', 'http://fine.test/y').h;
    const out = takeAll();
    assert.equal(out.length, 3);
    assert.ok(out.includes(other));
  });

  it('serves tenants in turn, then destinations within a tenant in turn', () => {
    const { add, lanes } = setup({ defaultMaxInFlight: 100 });
    for (let i = 0; i < 6; i++) add('big', `http://d${i % 2}.test/x`);
    add('small', 'http://d0.test/x');
    add('small', 'http://d0.test/x');
    const order: string[] = [];
    for (let h = lanes.take(); h; h = lanes.take()) order.push(`${h.job.tenant_id}:${new URL(h.job.destination.url).host}`);
    assert.deepEqual(order.slice(0, 4), ['big:d0.test', 'small:d0.test', 'big:d1.test', 'small:d0.test']);
    assert.equal(order.length, 8);
  });

  it('takes a tenant at its tenant cap out of turn until one of its attempts finishes', () => {
    const { lanes, add, takeAll } = setup({ defaultMaxInFlight: 100, tenantMaxInFlight: 3 });
    for (let i = 0; i < 10; i++) add('big', `http://d${i % 3}.test/x`);
    const first = takeAll();
    assert.equal(first.length, 3, 'the tenant cap');
    const small = add('small', 'http://d0.test/x').h;
    assert.deepEqual(takeAll(), [small], 'another tenant still gets a slot');
    lanes.finished(first[0] as Held, OK, 5);
    assert.equal(takeAll().length, 1, 'a finished attempt frees one of the tenant’s slots');
  });

  it('paces by tokens without spending them on waiting jobs, and wakes when a token is due', () => {
    const { clock, add, takeAll, readyCount } = setup({ defaultMaxInFlight: 100 });
    for (let i = 0; i < 4; i++) add('a', 'http://r.test/x', { rate_limit: { rps: 10, burst: 2 } });
    assert.equal(takeAll().length, 2, 'the burst');
    clock.advance(99);
    assert.equal(takeAll().length, 0);
    const woke = readyCount();
    clock.advance(1);
    assert.equal(readyCount(), woke + 1, 'the lane timer fired through the clock');
    assert.equal(takeAll().length, 1);
  });

  it('sends a job back to the store when its wait would pass maxParkMs, due at its turn', () => {
    const { add } = setup();
    add('a', 'http://r.test/x', { rate_limit: { rps: 1, burst: 1 } });
    add('a', 'http://r.test/x', { rate_limit: { rps: 1, burst: 1 } });
    add('a', 'http://r.test/x', { rate_limit: { rps: 1, burst: 1 } });
    const { outcome } = add('a', 'http://r.test/x', { rate_limit: { rps: 1, burst: 1 } });
    assert.equal(outcome.kind, 'release');
    assert.equal(outcome.kind === 'release' && outcome.dueAt, 3000);
  });

  it('gives a job behind a tiny rate a finite due time', () => {
    const { add } = setup();
    add('a', 'http://r.test/x', { rate_limit: { rps: 1e-12, burst: 1 } });
    const { outcome } = add('a', 'http://r.test/x', { rate_limit: { rps: 1e-12, burst: 1 } });
    assert.equal(outcome.kind, 'release');
    assert.ok(outcome.kind === 'release' && Number.isSafeInteger(outcome.dueAt), 'a due time the store can hold');
  });

  it('opens the circuit after consecutive failures: no attempt during the cool-down, one probe after it, then the backlog flows', () => {
    const { clock, lanes, add, takeAll, circuits } = setup();
    for (let i = 0; i < 6; i++) add('a', 'http://down.test/x');
    const [x, y] = takeAll();
    lanes.finished(x as Held, DOWN, 5);
    lanes.finished(y as Held, DOWN, 5);
    assert.deepEqual(circuits.map((c) => c.to), ['open']);
    assert.equal(takeAll().length, 0, 'nothing goes out while open');
    clock.advance(999);
    assert.equal(takeAll().length, 0);
    clock.advance(1);
    const probe = takeAll();
    assert.equal(probe.length, 1, 'one probe');
    assert.equal(probe[0]?.probe, true);
    lanes.finished(probe[0] as Held, DOWN, 5);
    clock.advance(1999);
    assert.equal(takeAll().length, 0, 'the cool-down doubled');
    clock.advance(1);
    const probe2 = takeAll();
    assert.equal(probe2.length, 1);
    lanes.finished(probe2[0] as Held, OK, 5);
    assert.equal(circuits.at(-1)?.to, 'closed');
    assert.equal(takeAll().length, 2, 'the backlog flows again, at its cap');
  });

  it('gives back the waiting jobs of a circuit that opens for longer than maxParkMs', () => {
    const { lanes, add, takeAll, circuits } = setup({ circuit: { failureThreshold: 1, cooldownMs: 5000, cooldownMaxMs: 5000 } });
    for (let i = 0; i < 5; i++) add('a', 'http://down.test/x');
    const [x] = takeAll();
    lanes.finished(x as Held, DOWN, 5);
    const opened = circuits.find((c) => c.to === 'open');
    assert.equal(opened?.released.length, 3);
    assert.equal(add('a', 'http://down.test/x').outcome.kind, 'release', 'a new job waits in the store too');
  });

  it('closes a circuit by hand', () => {
    const { lanes, add, takeAll } = setup({ circuit: { failureThreshold: 1, cooldownMs: 1000, cooldownMaxMs: 1000 } });
    for (let i = 0; i < 3; i++) add('a', 'http://down.test/x');
    const [x] = takeAll();
    lanes.finished(x as Held, DOWN, 5);
    assert.equal(takeAll().length, 0);
    const key = lanes.keyOf('a', 'http://down.test/x');
    assert.equal(lanes.reset(key), true);
    assert.equal(takeAll().length, 1);
    assert.equal(lanes.reset('nobody http://x.test'), false);
  });

  it('skips a job dropped while waiting', () => {
    const { lanes, add, takeAll } = setup();
    const { h } = add('a', 'http://r.test/x');
    const other = add('a', 'http://r.test/x').h;
    h.state = 'gone';
    lanes.dropped(h);
    assert.deepEqual(takeAll(), [other]);
    assert.equal(lanes.get(lanes.keyOf('a', 'http://r.test/'))?.waiting, 0);
  });
});

// A destination handed from one instance to another (PostgreSQL, src/engine/lane-leases.ts): the
// next holder's lane starts from the state the last one left, never from a fresh one.
describe('lanes: hand-over', () => {
  const rate = { rps: 10, burst: 5 };

  it('carries the bucket level: the next holder gets no fresh burst, only what refilled since', () => {
    const first = setup({ defaultMaxInFlight: 100 });
    for (let i = 0; i < 5; i++) first.add('a', 'http://r.test/x', { rate_limit: rate });
    assert.equal(first.takeAll().length, 5, 'the burst');
    first.clock.advance(100);
    const left = { tenant_id: 'a', origin: 'http://r.test', ...(first.lanes.get(first.lanes.keyOf('a', 'http://r.test/'))!.lease(first.clock.now())) };
    assert.ok(Math.abs((left.tokens ?? 0) - 1) < 1e-9, `one token refilled in 100 ms: ${left.tokens}`);

    const next = setup({ defaultMaxInFlight: 100 });
    next.clock.advance(100); // the same moment on the next holder's clock
    next.lanes.restore(left);
    for (let i = 0; i < 5; i++) next.add('a', 'http://r.test/y', { rate_limit: rate });
    assert.equal(next.takeAll().length, 1, 'the token left, not a fresh burst of 5');
    next.clock.advance(100);
    assert.equal(next.takeAll().length, 1, 'then one per 100 ms');
  });

  it('carries an open circuit: the next holder waits for the probe time, then probes once', () => {
    const first = setup();
    first.add('a', 'http://r.test/x');
    first.add('a', 'http://r.test/x');
    for (const h of first.takeAll()) first.lanes.finished(h, DOWN, 5);
    const lane = first.lanes.get(first.lanes.keyOf('a', 'http://r.test/'))!;
    assert.equal(lane.circuit.state, 'open');
    const left = { tenant_id: 'a', origin: 'http://r.test', ...lane.lease(first.clock.now()) };
    assert.equal(left.open_until, 1000);

    const next = setup();
    next.lanes.restore(left);
    next.add('a', 'http://r.test/y');
    next.add('a', 'http://r.test/y');
    assert.deepEqual(next.takeAll(), [], 'no attempt during the cool-down the last holder started');
    next.clock.advance(1000);
    const probe = next.takeAll();
    assert.equal(probe.length, 1, 'one probe at the probe time');
    next.lanes.finished(probe[0]!, OK, 5);
    assert.equal(next.takeAll().length, 1, 'the probe closed it: the rest flows');
    assert.deepEqual(next.circuits.map((c) => c.to), ['half_open', 'closed'], 'restoring itself is no transition');
  });
});
