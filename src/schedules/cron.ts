// Cron expressions read in an IANA time zone, through cron-parser (luxon does the zone arithmetic).
// What it does at DST changes, pinned by test/schedules/cron.test.ts:
//   spring forward: a wall time that does not exist (02:30 in New York) runs at the same offset
//     after the jump (03:30 local); an hourly schedule fires every real hour.
//   fall back: a wall time that happens twice (01:30) runs once, the first time; an hourly
//     schedule still fires every real hour (both 01:00s).
// Everything here is pure: instants in, instants out.

import { CronExpressionParser } from 'cron-parser';

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
  const text = fields.join(' ');
  const iterate = (from: number) => CronExpressionParser.parse(text, { tz: zone, currentDate: new Date(from) });
  try {
    iterate(0).next();
  } catch (err) {
    return { code: 'invalid_cron_expression', message: `cron ${JSON.stringify(expr)} is not valid: ${(err as Error).message}` };
  }
  const step = (from: number, dir: 'next' | 'prev'): number | null => {
    try {
      const it = iterate(from);
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
/** Missed ticks walked one by one at most; past it the walk jumps near its end (see planTicks). */
const MAX_WALK = 2000;

/** Ticks in [from, to], oldest first, at most max of them. */
function ticksBetween(spec: CronSpec, from: number, to: number, max: number): number[] {
  const out: number[] = [];
  for (let t = firstTickFrom(spec, from); t !== null && t <= to && out.length < max; t = spec.after(t)) out.push(t);
  return out;
}

/**
 * Which due ticks to turn into jobs at `now`. A tick no older than missedAfterMs is late, not
 * missed: it is always created. Older ones were missed (the service was down, or stalled): the
 * newest catch_up_limit of them are created under catch_up, none under skip.
 *
 * Ticks are found walking forward (spec.after) only: cron-parser's backward walk disagrees with its
 * forward one at DST changes (it skips the spring-forward tick and picks the second 01:30 at fall
 * back). Only after MAX_WALK missed ticks (a seconds schedule down for hours) does it jump back from
 * the end with spec.before, where a DST change could shift one caught-up tick.
 */
export function planTicks(spec: CronSpec, s: PlanInput, now: number, missedAfterMs: number): TickPlan {
  const upto = s.end_at === null ? now : Math.min(now, s.end_at);
  const lateFrom = Math.max(s.next_tick_at, now - missedAfterMs);
  const late = ticksBetween(spec, lateFrom, upto, MAX_LATE_TICKS);
  const missedTo = Math.min(lateFrom - 1, upto);
  let missed: number[] = [];
  let skipped = 0;
  if (s.missed_ticks === 'skip' || s.catch_up_limit === 0) {
    skipped = ticksBetween(spec, s.next_tick_at, missedTo, MAX_WALK).length;
  } else {
    const walked = ticksBetween(spec, s.next_tick_at, missedTo, MAX_WALK);
    if (walked.length < MAX_WALK) {
      missed = walked.slice(-s.catch_up_limit);
      skipped = walked.length - missed.length;
    } else {
      let anchor = missedTo + 1;
      for (let i = 0; i < s.catch_up_limit; i++) anchor = spec.before(anchor) ?? anchor;
      missed = ticksBetween(spec, Math.max(anchor, s.next_tick_at), missedTo, s.catch_up_limit);
      skipped = MAX_WALK;
    }
  }
  let next = spec.after(Math.max(now, s.next_tick_at - 1));
  if (next !== null && s.end_at !== null && next > s.end_at) next = null;
  return { create: [...missed, ...late], skipped, next };
}
