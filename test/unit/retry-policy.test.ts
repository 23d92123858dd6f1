import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeliveryResult } from '../../src/domain/attempt.js';
import { backoffDelay, nextStep } from '../../src/domain/retry-policy.js';

const retry = { max_attempts: 5, base_delay_ms: 1000, max_delay_ms: 30_000 };
const fail500: DeliveryResult = { outcome: 'retryable_error', error_kind: 'http', status_code: 500, error: 'HTTP 500', response_body: null, retry_after_ms: null };
const now = 1_000_000;

describe('retry policy', () => {
  it('doubles the delay each attempt, jittered in [d/2, d]', () => {
    for (let n = 1; n <= 5; n++) {
      const d = Math.min(30_000, 1000 * 2 ** (n - 1));
      assert.equal(backoffDelay(n, retry, () => 0), d / 2);
      assert.equal(backoffDelay(n, retry, () => 0.999999), Math.round(d / 2 + 0.999999 * (d / 2)));
      for (let i = 0; i < 50; i++) {
        const v = backoffDelay(n, retry, Math.random);
        assert.ok(v >= d / 2 && v <= d, `attempt ${n}: ${v} not in [${d / 2}, ${d}]`);
      }
    }
  });

  it('caps the delay at max_delay_ms', () => {
    assert.equal(backoffDelay(20, retry, () => 0.999999), 30_000);
    assert.equal(backoffDelay(50, { ...retry, max_attempts: 50 }, () => 0), 15_000);
  });

  it('is zero with a zero base delay', () => {
    assert.equal(backoffDelay(3, { ...retry, base_delay_ms: 0 }, Math.random), 0);
  });

  it('succeeds on a success', () => {
    assert.deepEqual(
      nextStep({ result: { outcome: 'success', status_code: 200, response_body: null }, attempt: 1, retry, now, random: () => 0, retryAfterMaxMs: 3_600_000 }),
      { status: 'success' },
    );
  });

  it('fails at once on a permanent error, attempts left or not', () => {
    const result: DeliveryResult = { outcome: 'permanent_error', error_kind: 'http', status_code: 404, error: 'HTTP 404', response_body: null };
    assert.deepEqual(nextStep({ result, attempt: 1, retry, now, random: () => 0, retryAfterMaxMs: 0 }), { status: 'failed' });
  });

  it('schedules a retry after a retryable error while attempts are left', () => {
    assert.deepEqual(nextStep({ result: fail500, attempt: 2, retry, now, random: () => 0, retryAfterMaxMs: 0 }), {
      status: 'retrying',
      next_attempt_at: now + 1000,
    });
  });

  it('moves a job to failed after max_attempts', () => {
    assert.deepEqual(nextStep({ result: fail500, attempt: 5, retry, now, random: () => 0, retryAfterMaxMs: 0 }), { status: 'failed' });
    assert.deepEqual(nextStep({ result: fail500, attempt: 1, retry: { ...retry, max_attempts: 1 }, now, random: () => 0, retryAfterMaxMs: 0 }), { status: 'failed' });
  });

  it('waits at least as long as Retry-After asks', () => {
    const result: DeliveryResult = { ...fail500, status_code: 429, retry_after_ms: 120_000 } as DeliveryResult;
    assert.deepEqual(nextStep({ result, attempt: 1, retry, now, random: () => 0, retryAfterMaxMs: 3_600_000 }), {
      status: 'retrying',
      next_attempt_at: now + 120_000,
    });
  });

  it('keeps the backoff when Retry-After asks for less', () => {
    const result: DeliveryResult = { ...fail500, status_code: 503, retry_after_ms: 10 } as DeliveryResult;
    const step = nextStep({ result, attempt: 3, retry, now, random: () => 0, retryAfterMaxMs: 3_600_000 });
    assert.deepEqual(step, { status: 'retrying', next_attempt_at: now + 2000 });
  });

  it('caps Retry-After at RETRY_AFTER_MAX_SECONDS', () => {
    const result: DeliveryResult = { ...fail500, status_code: 429, retry_after_ms: 86_400_000 } as DeliveryResult;
    const step = nextStep({ result, attempt: 1, retry, now, random: () => 0, retryAfterMaxMs: 3_600_000 });
    assert.deepEqual(step, { status: 'retrying', next_attempt_at: now + 3_600_000 });
  });
});
