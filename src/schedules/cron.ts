// Cron expressions read in an IANA time zone, through cron-parser (luxon does the zone arithmetic).
// What it does at DST changes, pinned by test/schedules/cron.test.ts:
//   spring forward: a wall time that does not exist (02:30 in New York) runs at the same offset
//     after the jump (03:30 local); an hourly schedule fires every real hour.
//   fall back: a wall time that happens twice (01:30) runs once, the first time; an hourly
//     schedule still fires every real hour (both 01:00s).
// Everything here is pure: instants in, instants out.

import { createRequire } from 'node:module';
import type { CronExpressionParser as Parser } from 'cron-parser';

// cron-parser and luxon (~1 MB of heap) load with the first expression compiled, not at start: a
// service without schedules never needs them. Resolved here so a missing package fails at start.
const require = createRequire(import.meta.url);
require.resolve('cron-parser');
// (require caches the module; compileCron runs once per expression, the ticker keeps what it compiles)
const cronParser = (): typeof Parser => (require('cron-parser') as { CronExpressionParser: typeof Parser }).CronExpressionParser;

export type CronError = { code: 'invalid_cron_expression' | 'unknown_time_zone'; message: string };

/** A compiled expression: the instants it ticks at, in epoch ms. */
export interface CronSpec {
  /** The first tick strictly after t, or null when there is none. */
  after(t: number): number | null;
  /** The last tick strictly before t, or null. */
  before(t: number): number | null;
}

const IANA_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+){0,2}$/;

/** Whether zone is an IANA time zone name this runtime knows (Intl's tz database). */
export function isTimeZone(zone: string): boolean {
  if (!IANA_NAME.test(zone)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export function compileCron(expr: string, zone: string): CronSpec | CronError {
  if (!isTimeZone(zone)) return { code: 'unknown_time_zone', message: `time_zone ${JSON.stringify(zone)} is not an IANA time zone name (e.g. Europe/Berlin, America/New_York, UTC)` };
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return { code: 'invalid_cron_expression', message: `cron has ${fields.length} fields; give 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)` };
  }
  let it: ReturnType<typeof Parser.parse>;
  try {
    it = cronParser().parse(fields.join(' '), { tz: zone, currentDate: new Date(0) });
    it.next();
  } catch (err) {
    return { code: 'invalid_cron_expression', message: `cron ${JSON.stringify(expr)} is not valid: ${(err as Error).message}` };
  }
  // one parsed expression, moved to each starting point (parsing it per step cost ~10x the step)
  const step = (from: number, dir: 'next' | 'prev'): number | null => {
    try {
      it.reset(new Date(from));
      return (dir === 'next' ? it.next() : it.prev()).getTime();
    } catch {
      return null; // no tick within the parser's search range (an expression that almost never fires)
    }
  };
  return { after: (t) => step(t, 'next'), before: (t) => step(t, 'prev') };
}

export function isCronError(x: CronSpec | CronError): x is CronError {
  return 'code' in x;
}

/** The first tick at or after t (ticks fall on whole seconds). */
export function firstTickFrom(spec: CronSpec, t: number): number | null {
  return spec.after(t - 1);
}

export interface TickPlan {
  /** The ticks to create now, oldest first. */
  create: number[];
  /** Due ticks not created: missed beyond the catch-up limit, or skipped by policy (counted up to MAX_WALK). */
  skipped: number;
  /** The first tick after now (within end_at), or null: the schedule has ended. */
  next: number | null;
}

export interface PlanInput {
  next_tick_at: number;
  end_at: number | null;
  missed_ticks: 'catch_up' | 'skip';
  catch_up_limit: number;
}

/** Late ticks created at most in one plan (a seconds schedule with a long missedAfterMs). */
export const MAX_LATE_TICKS = 1000;
/** Due ticks walked one by one at most; past it the plan jumps to the end (see planTicks). */
const MAX_WALK = 500;

/**
 * Which due ticks to turn into jobs at `now`. A tick no older than missedAfterMs is late, not
 * missed: it is always created. Older ones were missed (the service was down, or stalled): the
 * newest catch_up_limit of them are created under catch_up, none under skip.
 *
 * The ticks are one chain walked forward from next_tick_at (itself a tick): cron-parser finds the
 * spring-forward tick (02:30 run at 03:30) only when its search starts before the gap, and its
 * backward walk disagrees with its forward one at DST changes. Only past MAX_WALK due ticks (a
 * seconds schedule down for hours) does the plan jump: the newest missed ticks are then found
 * walking back from the end, where a DST change could shift one of them.
 */
export function planTicks(spec: CronSpec, s: PlanInput, now: number, missedAfterMs: number): TickPlan {
  const upto = s.end_at === null ? now : Math.min(now, s.end_at);
  const missedBefore = now - missedAfterMs;
  const keep = s.missed_ticks === 'catch_up' ? s.catch_up_limit : 0;
  let missed: number[] = [];
  let late: number[] = [];
  let skipped = 0;
  let t: number | null = s.next_tick_at;
  let walked = 0;
  for (; t !== null && t <= upto && walked < MAX_WALK; t = spec.after(t), walked++) {
    if (t >= missedBefore) {
      if (late.length < MAX_LATE_TICKS) late.push(t);
      continue;
    }
    missed.push(t);
    if (missed.length > keep) {
      missed.shift();
      skipped++;
    }
  }
  if (t !== null && t <= upto) {
    // more due ticks than MAX_WALK: the newest of them, found from the end
    const from = Math.max(s.next_tick_at, missedBefore);
    late = [];
    for (let x = spec.after(from - 1); x !== null && x <= upto && late.length < MAX_LATE_TICKS; x = spec.after(x)) late.push(x);
    const back: number[] = [];
    for (let x = spec.before(from); x !== null && x >= s.next_tick_at && back.length < keep; x = spec.before(x)) back.push(x);
    missed = back.reverse();
    skipped = MAX_WALK;
    t = spec.after(upto);
  }
  const next = t === null || (s.end_at !== null && t > s.end_at) ? null : t;
  return { create: [...missed, ...late], skipped, next };
}
