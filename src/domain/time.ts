// Bounds on the times the engine computes. Every due time it writes is `now + wait`, and a wait comes
// from arithmetic on job settings (a rate, a backoff) or on what a receiver answers (Retry-After).
// Whatever those hold, a wait is a whole number of milliseconds between 0 and a year: the store's
// due_at is an INTEGER column, and a job scheduled past a year is a bug or hostile input, not a plan.

/** The furthest ahead the engine schedules anything. */
export const MAX_WAIT_MS = 366 * 86_400_000;

/** The slowest rate a job may ask for (`rate_limit.rps`): one request per 1,000 s. */
export const MIN_RPS = 0.001;

/** A wait as a whole number of ms in [0, MAX_WAIT_MS]: NaN and +Infinity become the maximum. */
export function boundedWait(ms: number): number {
  if (Number.isNaN(ms) || ms >= MAX_WAIT_MS) return MAX_WAIT_MS;
  if (ms <= 0) return 0;
  return Math.ceil(ms);
}
