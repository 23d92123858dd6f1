// The ticker on its own: a real SQLite store in memory, the fake clock, and a stub in place of the
// intake. It sleeps until the next tick (one timer, no polling), wakes sooner when told, creates each
// tick once, and stops.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { EventBus } from '../../src/observability/events.js';
import { Ticker, type TickJobOutcome } from '../../src/schedules/ticker.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { FakeClock } from '../support/fake-clock.js';
import { newSchedule } from '../store/schedule-contract.js';

const MINUTE = 60_000;

describe('the schedule ticker', () => {
  let store: SqliteStore;
  let clock: FakeClock;
  let made: { id: string; tick: string }[];
  let ticker: Ticker;
  let outcome: (tick: number) => TickJobOutcome;

  beforeEach(async () => {
    store = openSqliteStore({ path: ':memory:' });
    await store.migrate();
    clock = new FakeClock(Date.parse('2026-01-01T00:00:30Z'));
    made = [];
    outcome = (tick) => ({ kind: 'created', job_id: `job-${new Date(tick).toISOString()}` });
    ticker = new Ticker({
      store,
      clock,
      events: new EventBus(),
      owner: 'me',
      leaseMs: 30_000,
      missedAfterMs: MINUTE,
      pollMs: null,
      createJob: async (s, tick) => {
        made.push({ id: s.id, tick: new Date(tick).toISOString() });
        return outcome(tick);
      },
    });
  });
  afterEach(async () => {
    await ticker.stop();
    await store.close();
  });

  it('sleeps on one timer until the earliest next tick, and creates each tick once', async () => {
    const s = await store.createSchedule(newSchedule(clock.now(), { next_tick_at: Date.parse('2026-01-01T00:01:00Z') }));
    ticker.start();
    await ticker.settled();
    assert.equal(ticker.nextWakeAt, Date.parse('2026-01-01T00:01:00Z'));
    assert.equal(clock.pendingTimers(), 1);
    clock.set(Date.parse('2026-01-01T00:00:59.999Z'));
    await ticker.settled();
    assert.deepEqual(made, []);
    clock.advance(1);
    await ticker.settled();
    assert.deepEqual(made, [{ id: s.id, tick: '2026-01-01T00:01:00.000Z' }]);
    assert.equal(ticker.nextWakeAt, Date.parse('2026-01-01T00:02:00Z'));
    assert.equal((await store.getSchedule(s.id))?.last_job_id, 'job-2026-01-01T00:01:00.000Z');
  });

  it('wakes sooner when told of a schedule that ticks before its timer', async () => {
    await store.createSchedule(newSchedule(clock.now(), { next_tick_at: Date.parse('2026-01-01T01:00:00Z') }));
    ticker.start();
    await ticker.settled();
    assert.equal(ticker.nextWakeAt, Date.parse('2026-01-01T01:00:00Z'));
    const soon = await store.createSchedule(newSchedule(clock.now(), { next_tick_at: Date.parse('2026-01-01T00:01:00Z') }));
    ticker.notify(soon.next_tick_at);
    assert.equal(ticker.nextWakeAt, Date.parse('2026-01-01T00:01:00Z'));
    ticker.notify(Date.parse('2026-01-01T00:30:00Z'));
    assert.equal(ticker.nextWakeAt, Date.parse('2026-01-01T00:01:00Z'));
  });

  it('skips a tick a rule refuses, and goes on to the next', async () => {
    const s = await store.createSchedule(newSchedule(clock.now(), { next_tick_at: Date.parse('2026-01-01T00:01:00Z') }));
    outcome = () => ({ kind: 'refused', reason: 'destination not allowed' });
    ticker.start();
    await ticker.settled();
    clock.set(Date.parse('2026-01-01T00:01:00Z'));
    await ticker.settled();
    const after = await store.getSchedule(s.id);
    assert.equal(after?.next_tick_at, Date.parse('2026-01-01T00:02:00Z'));
    assert.equal(after?.last_job_id, null);
  });

  it('stops: its timer is cancelled and no tick is created after', async () => {
    await store.createSchedule(newSchedule(clock.now(), { next_tick_at: Date.parse('2026-01-01T00:01:00Z') }));
    ticker.start();
    await ticker.settled();
    await ticker.stop();
    assert.equal(clock.pendingTimers(), 0);
    clock.set(Date.parse('2026-01-01T00:05:00Z'));
    await ticker.settled();
    assert.deepEqual(made, []);
  });
});
