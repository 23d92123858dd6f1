// The retry policy: one pure function from (what happened, which attempt, the job's settings, now)
// to what happens next. No clock, no randomness of its own: both are passed in.

import type { DeliveryResult } from './attempt.js';
import type { RetrySettings } from './job.js';
import { boundedWait } from './time.js';

export type NextStep =
  | { status: 'success' }
  | { status: 'retrying'; next_attempt_at: number }
  | { status: 'failed' };

/**
 * Delay before attempt n+1, after attempt n (1-based) failed:
 * d = min(max_delay_ms, base_delay_ms * 2^(n-1)), jittered uniformly in [d/2, d].
 * `random` returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, retry: RetrySettings, random: () => number): number {
  const exp = retry.base_delay_ms * 2 ** Math.max(0, attempt - 1);
  const d = Math.min(retry.max_delay_ms, exp);
  return Math.round(d / 2 + random() * (d / 2));
}

export interface PolicyInput {
  result: DeliveryResult;
  /** The attempt that just finished, 1-based. */
  attempt: number;
  retry: RetrySettings;
  now: number;
  random: () => number;
  /** Cap on a Retry-After the receiver asks for (RETRY_AFTER_MAX_SECONDS). */
  retryAfterMaxMs: number;
}

export function nextStep(input: PolicyInput): NextStep {
  const { result, attempt, retry, now, random, retryAfterMaxMs } = input;
  if (result.outcome === 'success') return { status: 'success' };
  if (result.outcome === 'permanent_error') return { status: 'failed' };
  if (attempt >= retry.max_attempts) return { status: 'failed' };
  let delay = backoffDelay(attempt, retry, random);
  if (result.retry_after_ms !== null) {
    delay = Math.max(delay, Math.min(result.retry_after_ms, retryAfterMaxMs));
  }
  return { status: 'retrying', next_attempt_at: now + boundedWait(delay) };
}
