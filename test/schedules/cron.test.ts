// Cron expressions in a time zone, and which due ticks become jobs: pure rules, no clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCron, firstTickFrom, isCronError, planTicks, type CronSpec } from '../../src/schedules/cron.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const at = (s: string) => Date.parse(s);

function spec(expr: string, zone: string): CronSpec {
  const s = compileCron(expr, zone);
  if (isCronError(s)) throw new Error(s.message);
  return s;
}

function ticks(s: CronSpec, from: string, n: number): string[] {
  const out: string[] = [];
  let t: number | null = at(from);
  for (let i = 0; i < n && t !== null; i++) {
    t = s.after(t);
    out.push(iso(t) as string);
  }
  return out;
}

describe('cron expressions', () => {
  it('refuses an expression of other than 5 or 6 fields, or one the parser refuses, as invalid_cron_expression', () => {
    for (const bad of ['* * * *', '* * * * * * *', '61 * * * *', 'hello world * * *', '0 0 31 2 *', '']) {
      const r = compileCron(bad, 'UTC');
      assert.ok(isCronError(r), bad);
      assert.equal(r.code, 'invalid_cron_expression', bad);
    }
  });

  it('refuses a time zone that is not an IANA name as unknown_time_zone', () => {
    for (const bad of ['Mars/Olympus_Mons', '+05:00', 'EST 5', '../etc/passwd', 'Europe/Berlin/Mitte/X']) {
      const r = compileCron('0 * * * *', bad);
      assert.ok(isCronError(r), bad);
      assert.equal(r.code, 'unknown_time_zone', bad);
    }
    assert.ok(!isCronError(compileCron('0 * * * *', 'America/New_York')));
    assert.ok(!isCronError(compileCron('0 * * * *', 'UTC')));
  });

  it('reads a sixth, leading field as seconds', () => {
    assert.deepEqual(ticks(spec('*/20 * * * * *', 'UTC'), '2026-01-01T00:00:00Z', 3), [
      '2026-01-01T00:00:20.000Z',
      '2026-01-01T00:00:40.000Z',
      '2026-01-01T00:01:00.000Z',
    ]);
  });

  it('runs a daily 02:30 in New York at 03:30 EDT on the spring-forward day, when 02:30 does not exist', () => {
    assert.deepEqual(ticks(spec('30 2 * * *', 'America/New_York'), '2026-03-07T00:00:00Z', 3), [
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:30:00.000Z', // 03:30 EDT: the clocks jumped from 02:00 to 03:00
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
    ]);
  });

  it('runs a daily 01:30 in New York once on the fall-back day, the first time 01:30 comes', () => {
    assert.deepEqual(ticks(spec('30 1 * * *', 'America/New_York'), '2026-10-31T00:00:00Z', 3), [
      '2026-10-31T05:30:00.000Z', // 01:30 EDT
      '2026-11-01T05:30:00.000Z', // 01:30 EDT; not again at 01:30 EST (06:30Z)
      '2026-11-02T06:30:00.000Z', // 01:30 EST
    ]);
  });

  it('runs an hourly schedule every real hour across both DST changes', () => {
    const hourly = spec('0 * * * *', 'America/New_York');
    assert.deepEqual(ticks(hourly, '2026-03-08T05:30:00Z', 4), [
      '2026-03-08T06:00:00.000Z', // 01:00 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT (02:00 does not exist)
      '2026-03-08T08:00:00.000Z',
      '2026-03-08T09:00:00.000Z',
    ]);
    assert.deepEqual(ticks(hourly, '2026-11-01T03:30:00Z', 5), [
      '2026-11-01T04:00:00.000Z', // 00:00 EDT
      '2026-11-01T05:00:00.000Z', // 01:00 EDT
      '2026-11-01T06:00:00.000Z', // 01:00 EST
      '2026-11-01T07:00:00.000Z', // 02:00 EST
      '2026-11-01T08:00:00.000Z',
    ]);
  });

  it('finds the first tick at or after an instant', () => {
    const s = spec('0 * * * *', 'UTC');
    assert.equal(iso(firstTickFrom(s, at('2026-01-01T01:00:00Z'))), '2026-01-01T01:00:00.000Z');
    assert.equal(iso(firstTickFrom(s, at('2026-01-01T01:00:00.001Z'))), '2026-01-01T02:00:00.000Z');
  });
});

describe('planning due ticks', () => {
  const hourly = spec('0 * * * *', 'UTC');
  const MIN = 60_000;
  const base = { end_at: null, missed_ticks: 'catch_up' as const, catch_up_limit: 2 };

  it('creates the tick that is due now and points at the next one', () => {
    const p = planTicks(hourly, { ...base, next_tick_at: at('2026-01-01T05:00:00Z') }, at('2026-01-01T05:00:00Z'), MIN);
    assert.deepEqual(p.create.map(iso), ['2026-01-01T05:00:00.000Z']);
    assert.equal(p.skipped, 0);
    assert.equal(iso(p.next), '2026-01-01T06:00:00.000Z');
  });

  it('catches up the newest catch_up_limit missed ticks, plus the late one, and counts the rest skipped', () => {
    const p = planTicks(hourly, { ...base, next_tick_at: at('2026-01-01T01:00:00Z') }, at('2026-01-01T06:00:30Z'), MIN);
    // 06:00 is 30 s late (within the minute): created; 01:00..05:00 were missed: the newest two created
    assert.deepEqual(p.create.map(iso), ['2026-01-01T04:00:00.000Z', '2026-01-01T05:00:00.000Z', '2026-01-01T06:00:00.000Z']);
    assert.equal(p.skipped, 3);
    assert.equal(iso(p.next), '2026-01-01T07:00:00.000Z');
  });

  it('creates no missed tick under skip', () => {
    const p = planTicks(hourly, { ...base, missed_ticks: 'skip', next_tick_at: at('2026-01-01T01:00:00Z') }, at('2026-01-01T05:30:00Z'), MIN);
    assert.deepEqual(p.create, []);
    assert.equal(p.skipped, 5);
    assert.equal(iso(p.next), '2026-01-01T06:00:00.000Z');
  });

  it('creates no tick after end_at and has no next one past it', () => {
    const p = planTicks(hourly, { ...base, end_at: at('2026-01-01T02:00:00Z'), next_tick_at: at('2026-01-01T02:00:00Z') }, at('2026-01-01T02:10:00Z'), 3_600_000);
    assert.deepEqual(p.create.map(iso), ['2026-01-01T02:00:00.000Z']);
    assert.equal(p.next, null);
  });

  it('bounds the work of a seconds schedule down for a day by the ticks it creates', () => {
    const everySecond = spec('* * * * * *', 'UTC');
    const now = at('2026-01-02T00:00:00Z');
    const p = planTicks(everySecond, { ...base, catch_up_limit: 3, next_tick_at: at('2026-01-01T00:00:00Z') }, now, 2000);
    assert.deepEqual(p.create.map(iso), [
      '2026-01-01T23:59:55.000Z',
      '2026-01-01T23:59:56.000Z',
      '2026-01-01T23:59:57.000Z',
      '2026-01-01T23:59:58.000Z',
      '2026-01-01T23:59:59.000Z',
      '2026-01-02T00:00:00.000Z',
    ]);
    assert.ok(p.skipped > 0);
  });

  it('catches up the spring-forward tick of a daily 02:30 in New York', () => {
    const daily = spec('30 2 * * *', 'America/New_York');
    const p = planTicks(daily, { ...base, catch_up_limit: 5, next_tick_at: at('2026-03-07T07:30:00Z') }, at('2026-03-09T12:00:00Z'), MIN);
    assert.deepEqual(p.create.map(iso), ['2026-03-07T07:30:00.000Z', '2026-03-08T07:30:00.000Z', '2026-03-09T06:30:00.000Z']);
  });
});
