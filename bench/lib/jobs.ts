// The jobs the store benchmarks write (bench/store-cost.ts, bench/store-cost-pg.ts): the same order
// payload the load generator sends, and a successful attempt's result.

import { toNewJob } from '../../src/api/new-job.js';
import type { CreateJobBody } from '../../src/api/schemas.js';
import type { NewJob } from '../../src/domain/job.js';
import type { AttemptCompletion } from '../../src/store/store.js';

const SETTINGS = { dedupeWindowMs: 3_600_000, idempotencyTtlMs: 86_400_000 };

/** n jobs created at now and due at runAt; tag goes into the payload (so dedupe tells batches apart). */
export function newJobs(n: number, now: number, runAt: number, tag?: string): NewJob[] {
  return Array.from({ length: n }, (_, i) => {
    const payload = { t: now, i, ...(tag === undefined ? {} : { tag }), order: { id: `ord_${i}`, amount_cents: 1299, currency: 'EUR', status: 'paid', customer: 'cus_4f9a2c' } };
    const body: CreateJobBody = {
      tenant_id: 'bench',
      type: 'order.paid',
      payload,
      destination: { url: 'http://127.0.0.1:9/hook', method: 'POST', timeout_ms: 10_000, headers: {} },
      delay_ms: runAt - now,
    };
    return toNewJob(body, JSON.stringify(payload), null, now, SETTINGS);
  });
}

/** A first attempt that succeeded, reported by owner at now. */
export function success(jobId: string, now: number, owner: string): AttemptCompletion {
  return {
    owner,
    next: { status: 'success' },
    attempt: { job_id: jobId, attempt: 1, started_at: now - 2, finished_at: now, duration_ms: 2, outcome: 'success', error_kind: null, status_code: 200, error: null, response_body: null },
  };
}
