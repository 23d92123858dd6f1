// Schedules ticking on a real service (SQLite file, HTTP API) driven by a fake clock: the exact UTC
// instants of the jobs across New York's DST changes, and a restart in the middle (the service
// rebuilt on the same file) catching up missed ticks once, never twice.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../support/fake-clock.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { jobBody, startTestService, type TestService } from '../support/service.js';

// engine polls and lease renewals far apart: the fake clock jumps hours at a time
const ENV = { SCHEDULER_POLL_INTERVAL_MS: '3600000', LEASE_MS: '2000' };
const iso = (ms: number) => new Date(ms).toISOString();

interface JobView {
  id: string;
  run_at: string;
  idempotency_key: string | null;
  dedupe_key: string | null;
  payload: unknown;
}

/** Steps the fake clock from one ticker wake-up to the next until `until`, letting each round finish. */
async function runUntil(svc: TestService, clock: FakeClock, until: number): Promise<void> {
  const ticker = svc.ticker;
  assert.ok(ticker);
  for (let i = 0; i < 20_000; i++) {
    await ticker.settled();
    if (clock.now() >= until) return;
    clock.set(Math.min(ticker.nextWakeAt ?? until, until));
  }
  throw new Error('the ticker did not get to the end time');
}

async function createSchedule(svc: TestService, body: Record<string, unknown>): Promise<{ id: string; next_tick_at: string | null }> {
  const res = await svc.post('/v1/schedules', body);
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as { id: string; next_tick_at: string | null };
}

/** The tick instants (from the idempotency keys) of the jobs a schedule created, oldest first, checked against run_at. */
async function ticksOf(svc: TestService, scheduleId: string): Promise<string[]> {
  const res = await svc.get('/v1/jobs?limit=1000');
  const jobs = ((await res.json()) as { data: JobView[] }).data;
  const prefix = `schedule:${scheduleId}:`;
  const mine = jobs.filter((j) => j.idempotency_key?.startsWith(prefix));
  const ticks = mine.map((j) => {
    const tick = (j.idempotency_key as string).slice(prefix.length);
    // created at its tick (the fake clock stood there), so due at it
    assert.equal(j.dedupe_key, j.idempotency_key);
    return { tick, run_at: j.run_at };
  });
  const sorted = ticks.map((t) => t.tick).sort();
  assert.equal(new Set(sorted).size, sorted.length, `a tick of ${scheduleId} has two jobs`);
  return sorted;
}

function hourlyUtc(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(from); t <= Date.parse(to); t += 3_600_000) out.push(iso(t));
  return out;
}

describe('schedule ticks with a fake clock', () => {
  let rx: Receiver;
  before(async () => {
    rx = await startReceiver();
  });
  after(async () => {
    await rx.close();
  });

  it('creates the jobs of a daily 02:30 and an hourly New York schedule at the exact UTC instants across spring forward', async () => {
    const clock = new FakeClock(Date.parse('2026-03-07T00:00:00Z'));
    const svc = await startTestService(ENV, { clock });
    try {
      const job = jobBody(`${rx.url}/hook`);
      const daily = await createSchedule(svc, { cron: '30 2 * * *', time_zone: 'America/New_York', job });
      const hourly = await createSchedule(svc, { cron: '0 * * * *', time_zone: 'America/New_York', job });
      assert.equal(daily.next_tick_at, '2026-03-07T07:30:00.000Z');
      await runUntil(svc, clock, Date.parse('2026-03-09T12:00:00Z'));
      assert.deepEqual(await ticksOf(svc, daily.id), [
        '2026-03-07T07:30:00.000Z', // 02:30 EST
        '2026-03-08T07:30:00.000Z', // 03:30 EDT: 02:30 did not exist that night
        '2026-03-09T06:30:00.000Z', // 02:30 EDT
      ]);
      // every real hour, 01:00 EST then 03:00 EDT included
      assert.deepEqual(await ticksOf(svc, hourly.id), hourlyUtc('2026-03-07T00:00:00Z', '2026-03-09T12:00:00Z'));
      const runAts = ((await (await svc.get('/v1/jobs?limit=1000')).json()) as { data: JobView[] }).data
        .filter((j) => j.idempotency_key?.startsWith(`schedule:${daily.id}:`))
        .map((j) => j.run_at)
        .sort();
      assert.deepEqual(runAts, ['2026-03-07T07:30:00.000Z', '2026-03-08T07:30:00.000Z', '2026-03-09T06:30:00.000Z']);
    } finally {
      await svc.cleanup();
    }
  });

  it('creates a daily 01:30 New York job once on the fall-back night, and an hourly one every real hour', async () => {
    const clock = new FakeClock(Date.parse('2026-10-31T00:00:00Z'));
    const svc = await startTestService(ENV, { clock });
    try {
      const job = jobBody(`${rx.url}/hook`);
      const daily = await createSchedule(svc, { cron: '30 1 * * *', time_zone: 'America/New_York', job });
      const dailyLate = await createSchedule(svc, { cron: '30 2 * * *', time_zone: 'America/New_York', job });
      const hourly = await createSchedule(svc, { cron: '0 * * * *', time_zone: 'America/New_York', job });
      await runUntil(svc, clock, Date.parse('2026-11-02T12:00:00Z'));
      assert.deepEqual(await ticksOf(svc, daily.id), [
        '2026-10-31T05:30:00.000Z', // 01:30 EDT
        '2026-11-01T05:30:00.000Z', // 01:30 EDT, and not again at 01:30 EST (06:30Z)
        '2026-11-02T06:30:00.000Z', // 01:30 EST
      ]);
      assert.deepEqual(await ticksOf(svc, dailyLate.id), ['2026-10-31T06:30:00.000Z', '2026-11-01T07:30:00.000Z', '2026-11-02T07:30:00.000Z']);
      // 25 local hours on 1 November: both 01:00s
      assert.deepEqual(await ticksOf(svc, hourly.id), hourlyUtc('2026-10-31T00:00:00Z', '2026-11-02T12:00:00Z'));
    } finally {
      await svc.cleanup();
    }
  });

  it('catches up ticks missed while the service was stopped once at start, as each schedule says, and never twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulsegate-schedules-'));
    const clock = new FakeClock(Date.parse('2026-01-01T00:00:00Z'));
    const job = jobBody(`${rx.url}/hook`);
    let svc = await startTestService(ENV, { clock }, dir);
    let ids: { two: string; skip: string; dflt: string };
    try {
      ids = {
        two: (await createSchedule(svc, { cron: '0 * * * *', job, catch_up_limit: 2 })).id,
        skip: (await createSchedule(svc, { cron: '0 * * * *', job, missed_ticks: 'skip' })).id,
        dflt: (await createSchedule(svc, { cron: '0 * * * *', job })).id,
      };
      await runUntil(svc, clock, Date.parse('2026-01-01T02:00:00Z'));
      assert.deepEqual(await ticksOf(svc, ids.two), hourlyUtc('2026-01-01T00:00:00Z', '2026-01-01T02:00:00Z'));
    } finally {
      await svc.stop(1000);
    }

    // down from 02:00 to 07:30: 03:00 .. 07:00 are missed
    clock.set(Date.parse('2026-01-01T07:30:00Z'));
    const before = hourlyUtc('2026-01-01T00:00:00Z', '2026-01-01T02:00:00Z');
    try {
      svc = await startTestService(ENV, { clock }, dir);
      await svc.ticker?.settled();
      assert.deepEqual(await ticksOf(svc, ids.two), [...before, '2026-01-01T06:00:00.000Z', '2026-01-01T07:00:00.000Z']);
      assert.deepEqual(await ticksOf(svc, ids.skip), before);
      assert.deepEqual(await ticksOf(svc, ids.dflt), [...before, '2026-01-01T07:00:00.000Z']);
      const s = (await (await svc.get(`/v1/schedules/${ids.skip}`)).json()) as { next_tick_at: string };
      assert.equal(s.next_tick_at, '2026-01-01T08:00:00.000Z');
      await svc.stop(1000);

      // a second restart at the same instant creates nothing again
      svc = await startTestService(ENV, { clock }, dir);
      await svc.ticker?.settled();
      assert.deepEqual(await ticksOf(svc, ids.two), [...before, '2026-01-01T06:00:00.000Z', '2026-01-01T07:00:00.000Z']);
      assert.deepEqual(await ticksOf(svc, ids.skip), before);

      // and ticking goes on from there
      await runUntil(svc, clock, Date.parse('2026-01-01T08:00:00Z'));
      assert.deepEqual(await ticksOf(svc, ids.skip), [...before, '2026-01-01T08:00:00.000Z']);
      assert.deepEqual(await ticksOf(svc, ids.dflt), [...before, '2026-01-01T07:00:00.000Z', '2026-01-01T08:00:00.000Z']);
    } finally {
      await svc.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replays, not duplicates, a tick whose job an instance created before dying without advancing the schedule', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T00:00:30Z'));
    const svc = await startTestService(ENV, { clock });
    try {
      const job = jobBody(`${rx.url}/hook`, { payload: { n: 1 } });
      const s = await createSchedule(svc, { cron: '* * * * *', job });
      const tick = '2026-01-01T00:01:00.000Z';
      assert.equal(s.next_tick_at, tick);
      // the "dead" instance takes the schedule at the tick and creates its job, then dies holding the lease
      clock.set(Date.parse(tick) - 1);
      await svc.ticker?.settled();
      const held = await svc.store.claimDueSchedules('dead-instance', Date.parse(tick), 2000, 10);
      assert.equal(held.length, 1);
      const key = `schedule:${s.id}:${tick}`;
      const body = { ...job, dedupe_key: key, run_at: tick };
      const res = await svc.post('/v1/jobs', body, { 'idempotency-key': key });
      assert.equal(res.status, 201, await res.clone().text());
      const first = (await res.json()) as { id: string };

      // the lease runs out; this instance takes over and meets the job already there
      const outcomes: string[] = [];
      svc.events.on((e) => {
        if (e.type === 'schedule.tick') outcomes.push(`${iso(e.tick_at)} ${e.outcome} ${e.job_id}`);
      });
      await runUntil(svc, clock, Date.parse(tick) + 2500);
      assert.deepEqual(outcomes, [`${tick} replayed ${first.id}`]);
      assert.deepEqual(await ticksOf(svc, s.id), [tick]);
      const after = (await (await svc.get(`/v1/schedules/${s.id}`)).json()) as { next_tick_at: string; last_job_id: string };
      assert.equal(after.next_tick_at, '2026-01-01T00:02:00.000Z');
      assert.equal(after.last_job_id, first.id);
    } finally {
      await svc.cleanup();
    }
  });
});
